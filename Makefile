# The two set-up commands of the README:
#   make lab    install the workbook and open it in JupyterLab
#   make test   install everything the tests need and run every test (what CI runs)
# Both work from a clean clone with no GPU; nothing but the package registries is reached.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The PyTorch release the workbook is tested with. If torch is already importable
# in the environment (say a CUDA build you installed), it is kept as it is.
TORCH  ?= torch==2.13.0

.PHONY: lab test install install-test browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps make a second `make lab` / `make test` start at once; they are redone when
# pyproject.toml changes. The test extras include the lab's, so they stamp both.
$(VENV)/.lab-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[lab]"
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.lab-installed

install: $(VENV)/.lab-installed
install-test: $(VENV)/.test-installed

# Headless Chromium for the browser tests, from Debian's packages (never a browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	    else echo "browser tests need Chromium: sudo apt-get install chromium (they are skipped without it)"; fi; }

# Extra arguments for JupyterLab, e.g. JUPYTER_ARGS="--no-browser --port=8899".
JUPYTER_ARGS ?=

lab: install
	$(BIN)/jupyter lab notebooks/ $(JUPYTER_ARGS)

# Two test processes (one per core of a small CI machine), one thread each: the workbook's
# models are tiny, and oversubscribed threads are far slower than one. A notebook's cells
# stay together on one process (--dist loadfile).
test: install-test browser
	OMP_NUM_THREADS=1 MTLKIT_QUICK=1 $(BIN)/python -m pytest -n 2 --dist loadfile

clean:
	rm -rf $(VENV) data/*.pt screenshots test-artifacts

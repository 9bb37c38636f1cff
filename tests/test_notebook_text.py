"""What every committed notebook under notebooks/ must look like as a file, before it runs.

* A markdown heading is a title, not a paragraph. A line that starts with ``#`` renders
  as a heading, so a sentence written after a stray ``# `` shows in large bold type. A
  heading line is too long for a title when its text has more than 80 characters or
  more than 12 words (a word: a run of non-space characters with a letter or digit in
  it, so ``·`` does not count). The workbook's longest real titles have 79 characters
  and 11 words.
* The workbook's notebooks are committed without outputs and execution counts.
  The assignments' source notebooks are checked for that by
  tests/test_assignments.py, so this file leaves them out of that check.

Fenced code blocks in markdown are skipped (a ``#`` there is a comment). Folders that
Jupyter or nbgrader write next to the notebooks (checkpoints, student versions,
submissions) are not the repository's and are skipped too.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
ASSIGNMENTS = NOTEBOOK_DIR / "assignments"
NOT_OURS = {".ipynb_checkpoints", "release", "submitted", "autograded", "feedback", "downloaded"}
MAX_TITLE_CHARS = 80
MAX_TITLE_WORDS = 12
HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+|$)(.*)$")  # an ATX heading, as CommonMark reads it
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")

NOTEBOOKS = sorted(p for p in NOTEBOOK_DIR.rglob("*.ipynb") if not NOT_OURS & set(p.relative_to(NOTEBOOK_DIR).parts))


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def heading_lines(markdown: str) -> list[str]:
    """The heading texts of a markdown cell (without the #s), leaving out fenced code blocks."""
    headings, fence = [], None
    for line in markdown.splitlines():
        opening = FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)
        elif fence is not None:
            if line.strip().startswith(fence):
                fence = None
        elif match := HEADING.match(line):
            headings.append(re.sub(r"[ \t]+#+[ \t]*$", "", match.group(2)).strip())  # closing #s are not text
    return headings


def too_long_for_a_title(text: str) -> bool:
    words = [w for w in text.split() if re.search(r"\w", w)]
    return len(text) > MAX_TITLE_CHARS or len(words) > MAX_TITLE_WORDS


def long_headings(cells: list[dict]) -> list[str]:
    """'cell i: line' for every heading line of a markdown cell that is longer than a title."""
    return [f"cell {i}: {text}" for i, cell in enumerate(cells) if cell["cell_type"] == "markdown"
            for text in heading_lines(_source(cell)) if too_long_for_a_title(text)]


def test_the_check_tells_titles_from_paragraphs():
    title = "# 03 · Conditional and learned architectures: experts, attention, learned sharing"
    prose = "# The same update, driven from Python, to check the plot follows the slider:"
    code = "```python\n# a comment in a fenced block of code is not a heading, however long it is\n```"
    cells = [{"cell_type": "markdown", "source": f"{title}\n\n{code}"},
             {"cell_type": "code", "source": prose},
             {"cell_type": "markdown", "source": ["Text.\n", prose]}]
    assert long_headings(cells) == [f"cell 2: {prose[2:]}"]
    assert heading_lines("## Summary ##\n#hashtag\n    # indented code") == ["Summary"]


def test_every_notebook_is_found():
    names = {_name(p) for p in NOTEBOOKS}
    assert "notebooks/00_start_here.ipynb" in names and len([p for p in NOTEBOOKS if p.parent == NOTEBOOK_DIR]) >= 11
    assert {p.stem for p in NOTEBOOKS if ASSIGNMENTS / "source" in p.parents} >= {"pcgrad", "uncertainty"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_name)
def test_markdown_headings_are_titles_not_paragraphs(path):
    found = long_headings(_cells(path))
    assert not found, (f"{_name(path)}: heading lines longer than a title ({MAX_TITLE_CHARS} characters or "
                       f"{MAX_TITLE_WORDS} words); remove the '#' from a paragraph or shorten the title:\n"
                       + "\n".join(found))


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if ASSIGNMENTS not in p.parents], ids=_name)
def test_notebook_is_committed_without_outputs(path):
    dirty = [f"cell {i}" for i, cell in enumerate(_cells(path))
             if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not dirty, (f"{_name(path)} has outputs or execution counts in {', '.join(dirty)}; "
                       "clear them (e.g. jupyter nbconvert --clear-output --inplace) before committing")

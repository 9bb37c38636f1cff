"""Build the assignment notebooks, with their nbgrader cell metadata, from reviewable text.

Text form (one file per assignment, nbsrc/<assignment>.txt): cells separated by a
header line; markdown lines are written as they are.

    # %% [markdown]                 read-only instructions (locked)
    # %% [readonly ID]              read-only code, e.g. imports and given data (locked)
    # %% [answer ID]                autograded answer: the student's code, solution inside
                                    ### BEGIN SOLUTION / ### END SOLUTION
    # %% [tests ID POINTS]          autograded tests worth POINTS (locked); hidden ones inside
                                    ### BEGIN HIDDEN TESTS / ### END HIDDEN TESTS
    # %%                            a plain code cell the student may change (not graded)

Usage (from the repository root):
    python notebooks/assignments/build.py            # rebuild every source/<a>/<a>.ipynb
    python notebooks/assignments/build.py pcgrad     # rebuild one
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
TEXT = HERE / "nbsrc"
SOURCE = HERE / "source"


def _nbgrader(grade_id: str, *, grade=False, solution=False, locked=False, points=None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return meta


def _cell(header: str, text: str, index: int, name: str) -> nbformat.NotebookNode:
    words = header.removeprefix("# %%").strip().strip("[]").split()
    kind, args = (words[0], words[1:]) if words else ("code", [])
    if kind == "markdown":
        cell = nbformat.v4.new_markdown_cell(text)
        cell.metadata["nbgrader"] = _nbgrader(f"{name}-md-{index:02d}", locked=True)
    elif kind == "readonly":
        cell = nbformat.v4.new_code_cell(text)
        cell.metadata["nbgrader"] = _nbgrader(args[0], locked=True)
    elif kind == "answer":
        cell = nbformat.v4.new_code_cell(text)
        cell.metadata["nbgrader"] = _nbgrader(args[0], solution=True)
    elif kind == "tests":
        cell = nbformat.v4.new_code_cell(text)
        cell.metadata["nbgrader"] = _nbgrader(args[0], grade=True, locked=True, points=int(args[1]))
    elif kind == "code":
        cell = nbformat.v4.new_code_cell(text)
    else:
        raise ValueError(f"{name}: unknown cell header {header!r}; expected markdown, readonly, answer, tests or code")
    cell["id"] = f"cell-{index:02d}"
    return cell


def build(name: str) -> nbformat.NotebookNode:
    """The notebook for assignment ``name`` from nbsrc/<name>.txt."""
    nb = nbformat.v4.new_notebook()
    nb.metadata.update({"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                        "language_info": {"name": "python"}})
    header, lines = None, []
    for line in (TEXT / f"{name}.txt").read_text().splitlines() + ["# %% [end]"]:
        if line.startswith("# %%"):
            if header is not None:
                nb.cells.append(_cell(header, "\n".join(lines).strip("\n"), len(nb.cells), name))
            header, lines = line, []
        else:
            lines.append(line)
    return nb


def assignments() -> list[str]:
    return sorted(p.stem for p in TEXT.glob("*.txt"))


def main(names: list[str]) -> None:
    for name in names or assignments():
        out = SOURCE / name / f"{name}.ipynb"
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(build(name), out)
        print(f"wrote {out.relative_to(HERE.parent.parent)}")


if __name__ == "__main__":
    main(sys.argv[1:])

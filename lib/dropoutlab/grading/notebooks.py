"""Student notebooks from the solution notebooks, and what a notebook holds.

The committed notebooks in ``hands_on/`` hold the solutions between
``# BEGIN SOLUTION`` and ``# END SOLUTION`` lines, inside the body of the
function the learner writes (the otter-grader / nbgrader convention). The
student version replaces each such block by a stub that raises
``NotImplementedError`` naming the function, drops the cells tagged
``solution-only`` (the book's download link, the asserts that the solutions
pass), unfolds the cells the book folds (``hide-input``) and clears outputs.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

BEGIN = "# BEGIN SOLUTION"
END = "# END SOLUTION"
SOLUTION_ONLY_TAG = "solution-only"
BOOK_ONLY_TAGS = ("hide-input", "hide-cell", "hide-output")

_DEF = re.compile(r"^(\s*)(?:async\s+)?def\s+([A-Za-z_]\w*)\s*\(")


def exercise_ids_of(nb) -> list[str]:
    """The exercise ids a notebook holds: its ``dropoutlab.exercises`` metadata,
    else every ``check("id", ...)`` call in its code cells."""
    listed = nb.metadata.get("dropoutlab", {}).get("exercises")
    if isinstance(listed, list) and all(isinstance(i, str) for i in listed) and listed:
        return list(listed)
    found: dict[str, None] = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            for m in re.finditer(r"""\bcheck\(\s*["']([A-Za-z_]\w*)["']""", cell.source):
                found.setdefault(m.group(1), None)
    return list(found)


def _stub_source(source: str, where: str, fallback_name: str) -> str:
    """Replace every BEGIN/END SOLUTION block of one cell's source by a stub."""
    lines = source.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == END:
            raise ValueError(f"{where}: '{END}' on line {i + 1} without a '{BEGIN}' before it")
        if line.strip() != BEGIN:
            out.append(line)
            i += 1
            continue
        indent = line[: len(line) - len(line.lstrip())]
        name = fallback_name
        for previous in reversed(out):
            m = _DEF.match(previous)
            if m and len(m.group(1)) < len(indent):
                name = m.group(2)
                break
        j = i + 1
        while j < len(lines) and lines[j].strip() != END:
            if lines[j].strip() == BEGIN:
                raise ValueError(f"{where}: '{BEGIN}' on line {j + 1} inside another solution block")
            j += 1
        if j == len(lines):
            raise ValueError(f"{where}: '{BEGIN}' on line {i + 1} has no '{END}'")
        out.append(f'{indent}raise NotImplementedError("{name}: not implemented yet")')
        i = j + 1
    return "\n".join(out)


def student_version(nb, name: str = "notebook"):
    """Return a new notebook: ``nb`` with its solutions replaced by stubs.

    Args:
        nb: a solution notebook (an ``nbformat`` node); it is not modified.
        name: how to call it in error messages.

    Raises:
        ValueError: unbalanced solution markers, or no solution block at all.
    """
    student = nbformat.from_dict(nbformat.v4.new_notebook())
    student.metadata = nbformat.from_dict(dict(nb.metadata))
    meta = dict(student.metadata.get("dropoutlab", {}))
    meta["exercises"] = exercise_ids_of(nb)
    meta["student_version"] = True
    student.metadata["dropoutlab"] = meta
    blocks = 0
    for index, cell in enumerate(nb.cells):
        tags = list(cell.get("metadata", {}).get("tags", []))
        if SOLUTION_ONLY_TAG in tags:
            continue
        new = nbformat.from_dict(dict(cell))
        new.metadata = nbformat.from_dict(dict(cell.get("metadata", {})))
        kept_tags = [t for t in tags if t not in BOOK_ONLY_TAGS]
        if kept_tags:
            new.metadata["tags"] = kept_tags
        else:
            new.metadata.pop("tags", None)
        if cell.cell_type == "code":
            blocks += cell.source.count(BEGIN)
            new.source = _stub_source(cell.source, f"{name}, cell {index}", name)
            new.outputs = []
            new.execution_count = None
        student.cells.append(new)
    if blocks == 0:
        raise ValueError(f"{name}: no '{BEGIN}' block found; is it a solution notebook?")
    nbformat.validate(student)
    return student


def assign(source_dir: str | Path = "hands_on", out_dir: str | Path = "_build/exercises") -> list[Path]:
    """Write the student version of every exercise notebook of ``source_dir`` to ``out_dir``.

    A notebook is an exercise notebook when it holds ``dropoutlab.exercises``
    metadata or a ``# BEGIN SOLUTION`` line. Returns the paths written.

    Raises:
        FileNotFoundError: ``source_dir`` does not exist.
        ValueError: a notebook has unbalanced solution markers.
    """
    source_dir, out_dir = Path(source_dir), Path(out_dir)
    if not source_dir.is_dir():
        raise FileNotFoundError(f"source_dir must be a folder of solution notebooks, got {str(source_dir)!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(source_dir.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        is_exercise = "exercises" in nb.metadata.get("dropoutlab", {}) or any(
            c.cell_type == "code" and BEGIN in c.source for c in nb.cells
        )
        if not is_exercise:
            continue
        target = out_dir / path.name
        nbformat.write(student_version(nb, path.name), target)
        written.append(target)
    return written

"""The batch grader: right answers get every point, student versions fail cleanly,
and hostile submissions get 0 for what they break, with the reason, while the
batch goes on and no submission's bytes change."""

import csv
import hashlib
from pathlib import Path

import nbformat
import pytest

from dropoutlab.grading import EXERCISES, exercise_ids
from dropoutlab.grading.__main__ import main
from dropoutlab.grading.batch import grade

ROOT = Path(__file__).resolve().parents[1]
HANDS_ON = ROOT / "hands_on"
SEED = 12345
TIMEOUT = 30  # per cell; generous on a loaded 2-core machine (an import of torch takes ~2 s)
HOSTILE_TIMEOUT = 15  # per cell; the hostile cases wait for it once or twice


def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _solution_notebooks():
    return sorted(p for p in HANDS_ON.glob("*.ipynb") if "dropoutlab" in nbformat.read(p, 4).metadata)


def test_every_exercise_belongs_to_a_notebook():
    declared = set()
    for path in _solution_notebooks():
        declared |= set(nbformat.read(path, 4).metadata["dropoutlab"]["exercises"])
    assert declared == set(exercise_ids())
    assert len(_solution_notebooks()) >= 6


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    assert main(["assign", "--source", str(HANDS_ON), "--out", str(out)]) == 0
    return out


def test_assign_writes_stubs_and_drops_solution_only_cells(student_dir):
    written = sorted(student_dir.glob("*.ipynb"))
    assert [p.name for p in written] == [p.name for p in _solution_notebooks()]
    for path in written:
        text = path.read_text()
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
        nb = nbformat.read(path, 4)
        assert nb.metadata["dropoutlab"]["student_version"] is True
        for cell in nb.cells:
            assert "solution-only" not in cell.metadata.get("tags", [])
            assert "hide-input" not in cell.metadata.get("tags", [])
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        for exercise_id in nb.metadata["dropoutlab"]["exercises"]:
            name = EXERCISES[exercise_id].answer_name
            assert f'raise NotImplementedError("{name}: not implemented yet")' in code


def test_solutions_get_every_point_and_students_fail_cleanly(student_dir, tmp_path):
    solutions = _solution_notebooks()
    before = {p: _sha(p) for p in solutions}
    rows = grade(solutions, out=tmp_path / "solutions.csv", seed=SEED, timeout=TIMEOUT, echo=None)
    assert {p: _sha(p) for p in solutions} == before
    assert rows and all(r.points == r.max_points > 0 for r in rows), [(r.submission, r.exercise, r.feedback) for r in rows]
    assert not any("failed" in r.notes for r in rows)

    students = sorted(student_dir.glob("*.ipynb"))
    rows = grade(students, out=tmp_path / "students.csv", seed=SEED, timeout=TIMEOUT, echo=None)
    assert len(rows) == len(exercise_ids())
    for r in rows:
        assert r.points == 0 and r.max_points > 0
        assert r.feedback.startswith("not implemented yet"), r.feedback
        assert "failed" not in r.notes, r.notes  # every cell of a student notebook runs


def _submission(tmp_path, name, replace=None, extra_cells=(), raw=None):
    """A copy of the inverted_dropout solution with its defining cell edited."""
    path = tmp_path / name
    if raw is not None:
        path.write_bytes(raw)
        return path
    nb = nbformat.read(HANDS_ON / "inverted_dropout.ipynb", 4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "def inverted_dropout(" in cell.source and replace:
            cell.source = replace(cell.source)
    for index, source in extra_cells:
        nb.cells.insert(index, nbformat.v4.new_code_cell(source))
    nbformat.write(nb, path)
    return path


def test_hostile_submissions(tmp_path):
    folder = tmp_path / "submissions"
    folder.mkdir()
    victim = folder / "tampers.ipynb"
    subs = {
        "good.ipynb": _submission(folder, "good.ipynb"),
        "loop_at_top.ipynb": _submission(folder, "loop_at_top.ipynb", lambda s: "while True:\n    pass\n" + s),
        "loop_in_function.ipynb": _submission(
            folder, "loop_in_function.ipynb",
            lambda s: s.replace("    # BEGIN SOLUTION", "    # BEGIN SOLUTION\n    while True:\n        pass")),
        "sys_exit.ipynb": _submission(folder, "sys_exit.ipynb", lambda s: "import sys\nsys.exit(3)\n" + s),
        "os_exit.ipynb": _submission(folder, "os_exit.ipynb", extra_cells=[(2, "import os\nos._exit(0)")]),
        "syntax_error.ipynb": _submission(folder, "syntax_error.ipynb", lambda s: s.replace("return x\n", "return x +\n", 1)),
        "missing_function.ipynb": _submission(folder, "missing_function.ipynb", lambda s: s.replace("def inverted_dropout(", "def my_dropout(")),
        "writes_files.ipynb": _submission(
            folder, "writes_files.ipynb",
            extra_cells=[(2, "open('junk.txt', 'w').write('x')\nopen('writes_files.ipynb', 'w').write('{}')")]),
        "tampers.ipynb": _submission(
            folder, "tampers.ipynb", extra_cells=[(2, f"open({str(victim)!r}, 'w').write('{{}}')")]),
        "not_a_notebook.ipynb": _submission(folder, "not_a_notebook.ipynb", raw=b"this is not json"),
    }
    before = {name: _sha(p) for name, p in subs.items()}
    rows = grade(list(subs.values()), out=tmp_path / "results.csv", seed=SEED, timeout=HOSTILE_TIMEOUT, echo=None)
    assert {name: _sha(p) for name, p in subs.items()} == before
    assert sorted(p.name for p in folder.iterdir()) == sorted(subs)  # nothing written next to them

    by_name = {r.submission: r for r in rows}
    assert set(by_name) == set(subs)  # the batch went on after every hostile one
    full = by_name["good.ipynb"].max_points
    assert by_name["good.ipynb"].points == full

    expected_reason = {
        "loop_at_top.ipynb": "Timeout",
        "loop_in_function.ipynb": "Timeout",
        "sys_exit.ipynb": "SystemExit",
        "os_exit.ipynb": "kernel died",
        "syntax_error.ipynb": "SyntaxError",
        "missing_function.ipynb": "function `inverted_dropout` is not defined",
        "tampers.ipynb": "modified its own submission file",
        "not_a_notebook.ipynb": "could not read the notebook",
    }
    for name, reason in expected_reason.items():
        row = by_name[name]
        assert row.points == 0, (name, row.feedback)
        assert reason in row.feedback, (name, row.feedback)
    # Writing files inside its (temporary) folder is allowed and reported; the answer is still right.
    writes = by_name["writes_files.ipynb"]
    assert writes.points == full and "wrote or deleted 2 file(s)" in writes.notes, writes.notes

    with open(tmp_path / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["submission"] for r in table] == [r.submission for r in rows]
    assert {r["seed"] for r in table} == {str(SEED)}


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="seed"):
        grade([], seed=-1, echo=None)
    with pytest.raises(ValueError, match="timeout"):
        grade([], seed=0, timeout=0, echo=None)
    with pytest.raises(ValueError, match="exercises"):
        grade([], seed=0, exercises=["nope"], echo=None)
    with pytest.raises(FileNotFoundError, match="missing.ipynb"):
        grade([tmp_path / "missing.ipynb"], seed=0, echo=None)

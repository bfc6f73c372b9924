"""Grade many submitted notebooks: each in a fresh kernel, in a temporary copy of its folder.

For each submission the grader

1. reads its bytes (and its SHA-256) and never writes to it: if anything
   changes the file while it is graded, the grader puts the bytes back and
   gives the submission 0 points;
2. copies its folder (without other notebooks, which may be classmates'
   submissions) to a temporary directory and executes every cell there in a
   fresh kernel of this Python, continuing past errors, with a per-cell
   timeout after which the kernel is interrupted (and killed if it stays stuck);
3. runs :func:`dropoutlab.grading.check` for each of its exercises in that
   kernel, each with the instructor's seed and its own timeout;
4. reports one row per submission x exercise: points, maximum, feedback.

It is no sandbox: see ``LIMITS`` below and the README's instructor section.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ._core import EXERCISES
from .exercises import load_all
from .notebooks import exercise_ids_of

LIMITS = """\
What the grader guards against: a cell that loops forever (per-cell timeout,
then interrupt, then kill), sys.exit() or a dying kernel, syntax errors and
exceptions, missing or misnamed functions, wrong types and shapes, answers
hard-coded for the default seed (the instructor's seed draws new data), files
written next to the notebook (it runs in a temporary copy, which is deleted),
and changes to the submission file itself (its bytes are checked and restored).
What it does not guard against: it is not a sandbox. Submitted code runs as
you, with your permissions, network and memory: it can read or write any
file you can, start processes, or exhaust memory, and code that patches
dropoutlab or torch inside its kernel can fake its own results. Grade
untrusted submissions in a container or VM without network, with memory
and CPU limits."""

_MARKER = "<<dropoutlab-grading-result>>"
# nbclient logs each timeout and interrupt as an error; the rows report them instead
_QUIET = logging.getLogger("dropoutlab.grading.kernel")
_QUIET.setLevel(logging.CRITICAL)
_QUIET.propagate = False


@dataclass
class Row:
    """One CSV row: one exercise of one submission."""

    submission: str
    exercise: str
    points: float
    max_points: float
    feedback: str
    seed: int
    notes: str = ""

    def as_csv(self) -> dict:
        return {
            "submission": self.submission,
            "exercise": self.exercise,
            "points": f"{self.points:g}",
            "max_points": f"{self.max_points:g}",
            "feedback": self.feedback,
            "seed": self.seed,
            "notes": self.notes,
        }


@dataclass
class _Execution:
    errors: dict[int, str] = field(default_factory=dict)  # cell index -> "ExcName: message"
    dead: str = ""  # why the kernel is gone, if it is
    results: dict[str, dict] = field(default_factory=dict)  # exercise id -> result dict


def _kernel_manager(socket_dir: Path):
    """A kernel of this very Python (like nbval's --current-env), whatever kernelspecs are installed."""
    from ipykernel.kernelspec import get_kernel_dict
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    class _ThisPython(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return KernelSpec(resource_dir="", **get_kernel_dict())

    # ipc: a local socket file, not TCP (no port to reach, no plain-text warning)
    # nbclient needs the async manager: a blocking client's get_msg cannot be cancelled
    return AsyncKernelManager(kernel_name="python3", kernel_spec_manager=_ThisPython(), transport="ipc",
                         ip=str(socket_dir / "kernel"))


def _grading_source(exercise_id: str, function_name: str, seed: int) -> str:
    # Dunder names keep clear of the learner's variables; BaseException catches sys.exit too.
    return f"""
import json as __dl_json, importlib as __dl_importlib
__dl_fn = globals().get({function_name!r})
if __dl_fn is None:
    __dl_result = {{"status": "missing"}}
else:
    try:
        __dl_report = __dl_importlib.import_module("dropoutlab.grading").check({exercise_id!r}, __dl_fn, seed={seed})
        __dl_result = {{"status": "ok", **__dl_report.to_dict()}}
    except BaseException as __dl_error:
        __dl_result = {{"status": "error", "error": f"{{type(__dl_error).__name__}}: {{__dl_error}}"}}
print({_MARKER!r} + __dl_json.dumps(__dl_result))
"""


def _error_of(cell) -> str | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return f"{out.get('ename', 'Error')}: {out.get('evalue', '')}".strip()
    return None


def _snapshot(folder: Path) -> dict[str, str]:
    files = {}
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            files[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def _execute(nb, workdir: Path, ids: list[str], seed: int, timeout: float) -> _Execution:
    from nbclient import NotebookClient

    result = _Execution()
    timeout_error = {"ename": "Timeout", "evalue": f"the cell ran past {timeout:g} s and was interrupted",
                     "traceback": []}
    client = NotebookClient(
        nb, timeout=timeout, allow_errors=True, interrupt_on_timeout=True, error_on_timeout=timeout_error,
        km=_kernel_manager(workdir.parent), log=_QUIET, resources={"metadata": {"path": str(workdir)}}, record_timing=False,
    )
    client.owns_km = True  # so that nbclient shuts the kernel down when the block ends
    env = {**os.environ, "MPLBACKEND": "Agg"}
    with client.setup_kernel(env=env, cwd=str(workdir)):
        _run_cells(client, nb, ids, seed, timeout, result)
    return result


def _run_cells(client, nb, ids, seed, timeout, result: _Execution) -> None:
    from nbclient.exceptions import DeadKernelError

    def extra(source: str):
        # nbclient addresses cells by index into nb.cells: cells of our own go at the end
        nb.cells.append(nbformat.v4.new_code_cell(source))
        return nb.cells[-1], len(nb.cells) - 1

    def responsive() -> bool:
        probe, index = extra("pass")
        try:
            client.timeout = 10
            client.execute_cell(probe, index)
        except DeadKernelError:
            return False
        finally:
            client.timeout = timeout
            nb.cells.pop()
        return _error_of(probe) is None

    replies = []
    client.on_cell_executed = lambda cell, cell_index, execute_reply: replies.append(execute_reply)

    def run(cell, index) -> bool:
        """Execute one cell; False once the kernel is dead or stuck."""
        replies.clear()
        try:
            client.execute_cell(cell, index)
        except DeadKernelError:
            result.dead = f"the kernel died in cell {index} (os._exit, a crash or out of memory)"
            return False
        content = replies[-1].get("content", {}) if replies else {}
        if content.get("ename") == "Timeout":
            # the interrupt's KeyboardInterrupt may or may not reach the outputs: record the cause
            cell.outputs = [nbformat.v4.new_output("error", ename="Timeout", evalue=content["evalue"], traceback=[])]
            if not responsive():
                result.dead = f"cell {index} ran past {timeout:g} s and the kernel stayed stuck after an interrupt"
                return False
        return True

    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        alive = run(cell, index)
        if cell.get("outputs"):
            error = _error_of(cell)
            if error:
                result.errors[index] = error
        if not alive:
            return
    for exercise_id in ids:
        cell, index = extra(_grading_source(exercise_id, EXERCISES[exercise_id].answer_name, seed))
        alive = run(cell, index)
        nb.cells.pop()
        if not alive:
            result.results[exercise_id] = {"status": "dead"}
            return
        text = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
        line = next((ln for ln in text.splitlines() if ln.startswith(_MARKER)), None)
        if line is None:
            error = _error_of(cell) or "no result"
            result.results[exercise_id] = {"status": "error", "error": error}
        else:
            result.results[exercise_id] = json.loads(line[len(_MARKER):])


def _defining_cell(nb, function_name: str) -> int | None:
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and f"def {function_name}(" in cell.source:
            return index
    return None


def grade_one(path: str | Path, *, seed: int, timeout: float = 60.0, exercises: list[str] | None = None) -> list[Row]:
    """Grade one submission; never raises for anything the submission does.

    Args:
        path: the submitted notebook.
        seed: the instructor's grading seed.
        timeout: seconds allowed to each cell, and to each exercise's checks.
        exercises: the ids to grade; default: those the notebook declares.

    Returns:
        One :class:`Row` per exercise (one row with exercise ``"?"`` when the
        notebook cannot be read at all).
    """
    load_all()
    path = Path(path)
    name = path.name
    original = path.read_bytes()
    digest = hashlib.sha256(original).hexdigest()
    try:
        nb = nbformat.reads(original.decode("utf-8"), as_version=4)
    except Exception as error:  # noqa: BLE001 - any unreadable file is a 0 with its reason
        reason = f"0 points: could not read the notebook: {type(error).__name__}: {error}"
        return [Row(name, i, 0, sum(c.points for c in EXERCISES[i].checks), reason, seed) for i in exercises or []] \
            or [Row(name, "?", 0, 0, reason, seed)]
    ids = list(exercises) if exercises else [i for i in exercise_ids_of(nb) if i in EXERCISES]
    if not ids:
        return [Row(name, "?", 0, 0, "no exercise found: the notebook has no dropoutlab metadata and no check(\"...\") call", seed)]
    max_points = {i: sum(c.points for c in EXERCISES[i].checks) for i in ids}
    for cell in nb.cells:  # grade what the learner's code does now, not outputs they saved
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None

    notes = []
    with tempfile.TemporaryDirectory(prefix="dropoutlab-grade-") as tmp:
        workdir = Path(tmp) / "work"
        shutil.copytree(
            path.parent, workdir, symlinks=True,
            ignore=lambda d, names: [n for n in names if n.endswith(".ipynb") or n in (".ipynb_checkpoints", "__pycache__", ".git")],
        )
        (workdir / name).write_bytes(original)
        before = _snapshot(workdir)
        started = time.monotonic()
        try:
            execution = _execute(nb, workdir, ids, seed, timeout)
        except Exception as error:  # noqa: BLE001 - e.g. the kernel would not start
            execution = _Execution(dead=f"the grader could not run the notebook: {type(error).__name__}: {error}")
        elapsed = time.monotonic() - started
        after = _snapshot(workdir)
    changed = sorted(f for f in after if before.get(f) != after[f]) + sorted(f for f in before if f not in after)
    if changed:
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        notes.append(f"wrote or deleted {len(changed)} file(s) in its folder copy ({shown}); discarded")
    for index, error in sorted(execution.errors.items())[:3]:
        first_line = error.splitlines()[0] if error else ""
        notes.append(f"cell {index} failed: {first_line[:200]}")
    if len(execution.errors) > 3:
        notes.append(f"{len(execution.errors) - 3} more cell(s) failed")
    notes.append(f"ran in {elapsed:.1f} s")

    tampered = path.read_bytes() != original
    if tampered:
        path.write_bytes(original)
        notes.append("changed the submission file while it was graded; its bytes were restored")

    rows = []
    for exercise_id in ids:
        exercise = EXERCISES[exercise_id]
        fn = exercise.answer_name
        outcome = execution.results.get(exercise_id, {"status": "dead"})
        status = outcome.get("status")
        points = 0.0
        if tampered:
            feedback = "0 points: the notebook modified its own submission file"
        elif status == "ok":
            points = float(outcome["score"])
            feedback = outcome["summary"]
        else:
            if status == "missing":
                reason = f"function `{fn}` is not defined"
            elif status == "dead":
                reason = execution.dead or "the kernel stopped before this exercise was checked"
            else:
                reason = f"checking `{fn}` failed: {outcome.get('error', 'unknown error')}"
            cell = _defining_cell(nb, fn)
            if cell is not None and cell in execution.errors:
                reason += f"; cell {cell}, which defines it, failed with {execution.errors[cell]}"
            elif status == "missing" and execution.errors:
                first = min(execution.errors)
                reason += f"; cell {first} failed with {execution.errors[first]}"
            feedback = "0 points: " + reason
        rows.append(Row(name, exercise_id, points, max_points[exercise_id], feedback, seed, "; ".join(notes)))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    return rows


def grade(paths, *, out: str | Path | None = None, seed: int | None = None, timeout: float = 60.0,
          exercises: list[str] | None = None, echo=print) -> list[Row]:
    """Grade every submission in ``paths``, write ``out`` as CSV and print a summary table.

    Args:
        paths: submitted notebooks.
        out: CSV path (one row per submission x exercise), or None.
        seed: the grading seed; None draws a random one (printed and stored
            in every row, so the run can be repeated).
        timeout: seconds per cell and per exercise's checks.
        exercises: ids to grade in every submission; default: what each declares.
        echo: where to print the summary (``print``; None for silence).

    Returns:
        The rows, in order.
    """
    if seed is None:
        seed = secrets.randbits(62)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an int in [0, 2**63), got {seed!r}")
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    load_all()
    for exercise_id in exercises or []:
        if exercise_id not in EXERCISES:
            raise ValueError(f"exercises must be ids among {', '.join(sorted(EXERCISES))}; got {exercise_id!r}")
    paths = [Path(p) for p in paths]
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"submission {str(p)!r} is not a file")
    rows: list[Row] = []
    for p in paths:
        rows.extend(grade_one(p, seed=seed, timeout=timeout, exercises=exercises))
    if out is not None:
        with open(out, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0].as_csv()) if rows else ["submission"])
            writer.writeheader()
            for row in rows:
                writer.writerow(row.as_csv())
    if echo is not None:
        echo(summary_table(rows, seed))
    return rows


def summary_table(rows: list[Row], seed: int) -> str:
    """A plain-text table: one line per submission, points per exercise and the total."""
    exercises = list(dict.fromkeys(r.exercise for r in rows))
    subs = list(dict.fromkeys(r.submission for r in rows))
    cell = {(r.submission, r.exercise): r for r in rows}
    width = max([len("submission")] + [len(s) for s in subs])
    cols = [max(len(e), 7) for e in exercises]
    head = "submission".ljust(width) + "".join(f"  {e.rjust(w)}" for e, w in zip(exercises, cols)) + "    total"
    lines = [f"grading seed {seed}", head, "-" * len(head)]
    for s in subs:
        got = total = 0.0
        parts = []
        for e, w in zip(exercises, cols):
            r = cell.get((s, e))
            if r is None:
                parts.append("  " + "-".rjust(w))
                continue
            got += r.points
            total += r.max_points
            parts.append("  " + f"{r.points:g}/{r.max_points:g}".rjust(w))
        lines.append(s.ljust(width) + "".join(parts) + f"  {got:g}/{total:g}".rjust(9))
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: python -m dropoutlab.grading grade ...")

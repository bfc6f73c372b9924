"""nbval's run of a notebook fills the book's execution cache, so it runs only once.

``make test`` first runs pytest with ``--nbval-cache=_build/.jupyter_cache``: nbval
executes every hands-on notebook (the solutions must run and pass their checks), and
each notebook whose cells all passed is stored in that jupyter-cache, outputs and run
time included, as myst-nb stores a notebook it executed itself. The book build that
follows matches the notebook by its code and takes the outputs from the cache.

A notebook is not stored when a cell failed or was skipped, or when it displays a
widget: nbval does not record widget state, so the book executes those itself.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

_runs: dict[Path, dict] = {}


def pytest_addoption(parser):
    parser.addoption(
        "--nbval-cache",
        metavar="DIR",
        default=None,
        help="store each notebook that nbval ran without a failure in this jupyter-cache "
        "(the book build's _build/.jupyter_cache), so the build does not execute it again",
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if call.when != "call" or type(item).__name__ != "IPyNbCell":
        return
    report = outcome.get_result()
    run = _runs.setdefault(Path(str(item.parent.fspath)), {"outputs": {}, "seconds": 0.0, "ok": True})
    run["seconds"] += call.duration
    if report.passed:
        run["outputs"][item.cell_num] = [nbformat.from_dict(dict(o)) for o in item.test_outputs]
    else:
        run["ok"] = False


def executed_notebook(path: Path, outputs: dict[int, list]) -> nbformat.NotebookNode | None:
    """The notebook at ``path`` with nbval's outputs, or None if it cannot be stored."""
    nb = nbformat.read(path, as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    if sorted(outputs) != list(range(len(code_cells))):
        return None  # a cell did not run
    for number, cell in enumerate(code_cells):
        cell.outputs = outputs[number]
        if any(WIDGET_VIEW in out.get("data", {}) for out in cell.outputs):
            return None
        cell.execution_count = number + 1
        for out in cell.outputs:
            if out.output_type == "execute_result":
                out.execution_count = number + 1
    nbformat.validate(nb)
    return nb


def pytest_sessionfinish(session):
    cache_dir = session.config.getoption("--nbval-cache")
    if not cache_dir or not _runs:
        return
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(cache_dir)
    stored = []
    for path, run in sorted(_runs.items()):
        nb = executed_notebook(path, run["outputs"]) if run["ok"] else None
        if nb is None:
            continue
        bundle = CacheBundleIn(nb, str(path), data={"execution_seconds": run["seconds"]})
        cache.cache_notebook_bundle(bundle, check_validity=False, overwrite=True)
        stored.append(path.name)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.ensure_newline()
        reporter.write_line(f"nbval-cache: stored {len(stored)} of {len(_runs)} notebooks in {cache_dir}: "
                            + ", ".join(stored))

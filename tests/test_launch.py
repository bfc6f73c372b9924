"""Launchable notebooks: the install cell, Binder's environment, the notebooks' extras.

A notebook opened in Colab, Binder or a bare Jupyter has only what its first code
cell installs. These tests check that every notebook starts with the same install
cell, generated from ``_config.yml``; that the cell's decision (install or not) is
right, with pip replaced by a recorder since the network install cannot run here;
and that the package extras and ``binder/`` provide every module the notebooks import.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _load_install_cell_module():
    spec = importlib.util.spec_from_file_location("install_cell", ROOT / "tools" / "install_cell.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


install_cell = _load_install_cell_module()
NOTEBOOKS = install_cell.notebooks(ROOT)
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())


def test_every_notebook_is_covered():
    assert len(NOTEBOOKS) >= 18, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_first_code_cell_is_the_install_cell(path):
    first = install_cell.first_code_cell(nbformat.read(path, as_version=4))
    assert first.source == install_cell.cell_source(ROOT / "_config.yml"), (
        f"{path.name}: the first code cell is not the install cell; run tools/install_cell.py --write")
    # hidden in the book (it is set-up, not content), present in every downloaded notebook
    assert "remove-cell" in first.metadata["tags"]


def test_install_cell_points_at_the_configured_repository():
    source = install_cell.cell_source(ROOT / "_config.yml")
    url = CONFIG["repository"]["url"].rstrip("/")
    branch = CONFIG["repository"]["branch"]
    assert f'"dropoutlab[notebooks] @ git+{url}@{branch}"' in source
    compile(source, "<install cell>", "exec")


def test_config_url_must_be_https(tmp_path):
    bad = tmp_path / "_config.yml"
    bad.write_text("repository:\n  url: git@github.com:x/y\n")
    with pytest.raises(ValueError, match="repository.url.*git@github.com:x/y"):
        install_cell.repository_url(bad)


def _run_install_cell(monkeypatch, *, importable: bool, pip_fails: bool = False):
    """Execute the install cell with find_spec and pip replaced; return pip's calls."""
    real_find_spec = importlib.util.find_spec
    calls = []

    def find_spec(name, *args, **kwargs):
        if name == "dropoutlab" and not importable:
            return None
        return real_find_spec(name, *args, **kwargs)

    def run(command, **kwargs):
        calls.append((command, kwargs))
        if pip_fails:
            raise subprocess.CalledProcessError(1, command)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(subprocess, "run", run)
    exec(install_cell.cell_source(ROOT / "_config.yml"), {})  # noqa: S102 - the cell is the unit under test
    return calls


def test_install_cell_installs_when_dropoutlab_is_missing(monkeypatch):
    calls = _run_install_cell(monkeypatch, importable=False)
    assert len(calls) == 1
    command, kwargs = calls[0]
    url = CONFIG["repository"]["url"].rstrip("/")
    assert command[:5] == [sys.executable, "-m", "pip", "install", "--quiet"]
    assert command[5] == f"dropoutlab[notebooks] @ git+{url}@{CONFIG['repository']['branch']}"
    assert kwargs == {"check": True}  # a failed install stops the notebook here, not later
    # ... and the notebook continues: the next cell's import works once pip is done
    exec("import dropoutlab\nassert callable(dropoutlab.setup)", {})  # noqa: S102 - as the next cell would


def test_install_cell_does_nothing_when_dropoutlab_is_importable(monkeypatch):
    assert _run_install_cell(monkeypatch, importable=True) == []


def test_install_cell_stops_the_notebook_when_pip_fails(monkeypatch):
    with pytest.raises(subprocess.CalledProcessError):
        _run_install_cell(monkeypatch, importable=False, pip_fails=True)


def test_install_cell_tool_detects_a_stale_notebook(tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), nbformat.v4.new_code_cell("import torch")]
    path = tmp_path / "stale.ipynb"
    nbformat.write(nb, path)
    source = install_cell.cell_source(ROOT / "_config.yml")
    assert install_cell.write(path, source) is True
    cells = nbformat.read(path, as_version=4).cells
    assert [c.cell_type for c in cells] == ["markdown", "code", "code"]
    assert cells[1].source == source and cells[2].source == "import torch"
    assert install_cell.write(path, source) is False  # idempotent


# --- what the install brings: the notebooks' imports ---------------------------------

def _imported_modules(path: Path) -> set[str]:
    modules = set()
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules.add(node.module.split(".")[0])
    return modules


def _requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def test_the_notebooks_extra_provides_every_import():
    meta = importlib.metadata.metadata("dropoutlab")
    base = _requirement_names([r for r in meta.get_all("Requires-Dist") if "extra ==" not in r])
    extra = _requirement_names([r.split(";")[0] for r in meta.get_all("Requires-Dist")
                                if 'extra == "notebooks"' in r])
    # a Jupyter kernel always has IPython (ipykernel depends on it)
    provided = base | extra | {"dropoutlab", "ipython"}
    distributions = importlib.metadata.packages_distributions()
    missing = {}
    for path in NOTEBOOKS:
        for module in _imported_modules(path):
            if module in sys.stdlib_module_names:
                continue
            names = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
            if not names & provided:
                missing.setdefault(module, []).append(path.name)
    assert not missing, f"imported by notebooks but not installed by dropoutlab[notebooks]: {missing}"


# --- Binder -----------------------------------------------------------------------

def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):
            continue
        name, _, version = line.partition("==")
        assert version, f"{path.name}: {line!r} is not pinned with =="
        pins[name.lower()] = version
    return pins


def test_binder_environment_matches_requirements():
    assert _pins(ROOT / "binder" / "requirements.txt") == _pins(ROOT / "requirements.txt")


def test_binder_installs_the_library():
    post_build = ROOT / "binder" / "postBuild"
    assert post_build.stat().st_mode & 0o111, "binder/postBuild must be executable"
    assert "pip install --no-deps -e ." in post_build.read_text()

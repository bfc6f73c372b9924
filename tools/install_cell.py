"""The first code cell of every notebook: install `dropoutlab` where it is missing.

A notebook opened from the book's Colab or Binder button, or downloaded into a bare
Python, has no `dropoutlab`. Its first code cell installs the package from the
repository that ``_config.yml`` names, then the notebook continues. Where the package
is importable (``make book``, ``make test``, a local ``.venv``) the cell does nothing.

The cell is generated from ``_config.yml`` so that a fork changes the repository URL
in one place::

    .venv/bin/python tools/install_cell.py --write   # rewrite every notebook's first cell
    .venv/bin/python tools/install_cell.py --check   # exit 1 if a notebook differs

``tests/test_launch.py`` runs the same check and executes the cell's decision logic.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIRS = ("chapters", "hands_on")
TAG = "install-dropoutlab"

TEMPLATE = '''\
# In a bare Colab or Binder kernel, install the course's library first.
import importlib
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("dropoutlab") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "{requirement}"], check=True)
    importlib.invalidate_caches()'''


def repository_url(config_path: Path = ROOT / "_config.yml") -> str:
    """The repository URL that ``_config.yml`` gives the launch buttons."""
    config = yaml.safe_load(config_path.read_text())
    url = config["repository"]["url"].rstrip("/")
    if not url.startswith("https://"):
        raise ValueError(f"_config.yml: repository.url must be an https URL, got {url!r}")
    return url


def requirement(url: str, branch: str = "main") -> str:
    """The pip requirement that installs the library with the notebooks' extras."""
    return f"dropoutlab[notebooks] @ git+{url}@{branch}"


def cell_source(config_path: Path = ROOT / "_config.yml") -> str:
    """The exact source of the install cell for this repository."""
    config = yaml.safe_load(config_path.read_text())
    branch = config["repository"].get("branch", "main")
    return TEMPLATE.format(requirement=requirement(repository_url(config_path), branch))


def notebooks(root: Path = ROOT) -> list[Path]:
    return sorted(p for d in NOTEBOOK_DIRS for p in (root / d).glob("*.ipynb"))


def first_code_cell(nb) -> nbformat.NotebookNode | None:
    return next((c for c in nb.cells if c.cell_type == "code"), None)


def write(path: Path, source: str) -> bool:
    """Make the notebook's first code cell the install cell; True if the file changed."""
    nb = nbformat.read(path, as_version=4)
    first = first_code_cell(nb)
    if first is not None and TAG in first.metadata.get("tags", []):
        if first.source == source:
            return False
        first.source = source
    else:
        cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["remove-cell", TAG]})
        cell.id = TAG  # cell ids are unique within a notebook; ours are short names
        index = nb.cells.index(first) if first is not None else len(nb.cells)
        nb.cells.insert(index, cell)
    nbformat.write(nb, path)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the notebooks' first code cell")
    mode.add_argument("--check", action="store_true", help="exit 1 if a notebook's first code cell differs")
    args = parser.parse_args(argv)
    source = cell_source()
    stale = []
    for path in notebooks():
        if args.write:
            if write(path, source):
                print(f"updated {path.relative_to(ROOT)}")
        else:
            first = first_code_cell(nbformat.read(path, as_version=4))
            if first is None or first.source != source:
                stale.append(path.relative_to(ROOT))
    for path in stale:
        print(f"{path}: the first code cell is not the install cell; run tools/install_cell.py --write")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())

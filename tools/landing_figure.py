"""Draw the landing page's picture: a network beside two of its thinned networks.

    .venv/bin/python tools/landing_figure.py --write   # rewrite _static/thinned_networks.svg
    .venv/bin/python tools/landing_figure.py --check   # exit 1 if the file differs

The same drawing (``dropoutlab.plotting.draw_network`` with ``THINNED_EXAMPLE``)
opens the first chapter, where it is executed at every build; the landing page is
Markdown, so it shows this committed copy. ``tests/test_landing_figure.py`` checks that
the copy is what the code draws today.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from dropoutlab import plotting  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "_static" / "thinned_networks.svg"
TITLES = ("the full network", "thinned, step 1", "thinned, step 2")


def draw() -> plt.Figure:
    plotting.use_style()
    layers = plotting.THINNED_EXAMPLE["layers"]
    masks = (None, *plotting.THINNED_EXAMPLE["masks"])
    fig, axes = plt.subplots(1, 3, figsize=(7, 2.6))
    for ax, kept, title in zip(axes, masks, TITLES):
        plotting.draw_network(ax, layers, kept, title)
    fig.tight_layout()
    return fig


def render() -> bytes:
    # a fixed hash salt and no date make the SVG byte-for-byte reproducible
    matplotlib.rcParams["svg.hashsalt"] = "dropout-course"
    fig = draw()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(fig)
    return buffer.getvalue()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true")
    group.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    svg = render()
    if args.write:
        TARGET.write_bytes(svg)
        print(f"wrote {TARGET.relative_to(ROOT)}")
        return 0
    if not TARGET.is_file() or TARGET.read_bytes() != svg:
        print(f"{TARGET.relative_to(ROOT)} is out of date: run tools/landing_figure.py --write")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The book's figure style: one look for every chapter.

White backgrounds (figures stay legible in the theme's dark mode), readable
fonts, and the Okabe-Ito palette, which stays distinct under the common forms
of colour blindness.
"""

from __future__ import annotations

import matplotlib as mpl
from cycler import cycler

__all__ = ["PALETTE", "use_style", "draw_network", "THINNED_EXAMPLE"]

# Okabe & Ito (2008), "Color Universal Design".
PALETTE = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "vermillion": "#D55E00",
    "sky": "#56B4E9",
    "purple": "#CC79A7",
    "yellow": "#F0E442",
    "black": "#000000",
}


def use_style() -> None:
    """Set matplotlib's defaults to the book's style."""
    mpl.rcParams.update(
        {
            "figure.figsize": (7.0, 4.0),
            "figure.dpi": 100,
            "savefig.dpi": 150,
            "figure.facecolor": "white",
            "axes.facecolor": "white",
            "savefig.facecolor": "white",
            "font.size": 12,
            "axes.titlesize": 13,
            "axes.labelsize": 12,
            "legend.fontsize": 11,
            "legend.frameon": False,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.prop_cycle": cycler(color=list(PALETTE.values())),
        }
    )


# The small network of the book's dropout picture (4 inputs, two hidden layers of 5,
# 2 outputs) and two of its thinned networks, as dropout might draw them: fixed, so
# the picture is the same at every build. 1 keeps a unit, 0 drops it.
THINNED_EXAMPLE = {
    "layers": (4, 5, 5, 2),
    "masks": (
        ((1, 0, 1, 1), (1, 0, 0, 1, 1), (0, 1, 1, 0, 1), (1, 1)),
        ((1, 1, 0, 1), (0, 1, 1, 0, 1), (1, 1, 0, 1, 0), (1, 1)),
    ),
}


def draw_network(ax, layers, kept=None, title: str | None = None) -> None:
    """Draw a fully connected network on ``ax``, with dropped units crossed out.

    Args:
        ax: a matplotlib Axes.
        layers: units per layer, input layer first, e.g. ``(4, 5, 5, 2)``.
        kept: one sequence of truthy/falsy flags per layer (None: every unit kept).
            A dropped unit is drawn hollow with a cross, and its connections are gone.
        title: the panel's title.

    Raises:
        ValueError: if ``kept`` does not have one flag per unit.

    Example:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import matplotlib.pyplot as plt
        >>> fig, ax = plt.subplots()
        >>> draw_network(ax, (2, 3, 1), [(1, 1), (1, 0, 1), (1,)], "thinned")
        >>> plt.close(fig)
    """
    layers = tuple(int(n) for n in layers)
    if kept is None:
        kept = [[True] * n for n in layers]
    if len(kept) != len(layers) or any(len(k) != n for k, n in zip(kept, layers)):
        raise ValueError(f"kept must have one flag per unit of layers {layers}, got {kept!r}")
    pos = {(l, i): (l, (n - 1) / 2 - i) for l, n in enumerate(layers) for i in range(n)}
    for l in range(len(layers) - 1):
        for i in range(layers[l]):
            for j in range(layers[l + 1]):
                if kept[l][i] and kept[l + 1][j]:
                    (x0, y0), (x1, y1) = pos[l, i], pos[l + 1, j]
                    ax.plot([x0, x1], [y0, y1], color="0.55", lw=0.8, zorder=1)
    for (l, i), (x, y) in pos.items():
        on = bool(kept[l][i])
        ax.scatter([x], [y], s=180, zorder=2, edgecolors="black",
                   facecolors=PALETTE["sky"] if on else "white")
        if not on:
            ax.scatter([x], [y], s=120, marker="x", color=PALETTE["vermillion"], zorder=3, linewidths=2)
    if title:
        ax.set_title(title)
    ax.set_xlim(-0.5, len(layers) - 0.5)
    ax.set_ylim(-max(layers) / 2, max(layers) / 2)
    ax.set_axis_off()
    ax.set_aspect("equal")

"""Dropout as modules: thin wrappers around :mod:`dropoutlab.functional`.

Each module validates its hyper-parameters in ``__init__``, shows them in its
``repr`` and calls its function with ``self.training``, so ``model.train()``
and ``model.eval()`` switch it as they switch :class:`torch.nn.Dropout`.
"""

from __future__ import annotations

import torch
from torch import nn

from . import functional as F
from ._validation import check_flag, check_probability

__all__ = ["DropoutLayer", "Dropout"]


class DropoutLayer(nn.Module):
    """Base class of every dropout module in :mod:`dropoutlab.nn`.

    It adds no behaviour. It marks a module as a dropout layer, so that
    :func:`dropoutlab.mc.predict` can switch all of them (and torch's own) to
    training mode while the rest of a model stays in evaluation mode.
    """


class Dropout(DropoutLayer):
    r"""Element-wise dropout, inverted or in the original two-phase form.

    See :func:`dropoutlab.functional.dropout` for the math. ``p`` is the drop
    probability; :math:`q = 1 - p` is the keep probability.

    Args:
        p: drop probability, in [0, 1].
        inverted: scale kept units by :math:`1/q` in training (True), or scale
            by :math:`q` in evaluation (False).

    Shape:
        Input: :math:`(*)`. Output: the same shape.

    Raises:
        TypeError, ValueError: at construction, for a bad ``p`` or ``inverted``.

    Example:
        >>> import torch
        >>> from dropoutlab.nn import Dropout
        >>> layer = Dropout(p=0.25, inverted=False)
        >>> layer
        Dropout(p=0.25, inverted=False)
        >>> layer.eval()(torch.ones(3))
        tensor([0.7500, 0.7500, 0.7500])
    """

    def __init__(self, p: float = 0.5, inverted: bool = True) -> None:
        super().__init__()
        self.p = check_probability(p, "p")
        self.inverted = check_flag(inverted, "inverted")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.p, self.training, inverted=self.inverted)

    def extra_repr(self) -> str:
        return f"p={self.p}, inverted={self.inverted}"

"""Helpers shared by every function in :mod:`dropoutlab.functional`."""

from __future__ import annotations

import torch

from .._validation import check_flag, check_generator, check_probability, check_tensor


def _draw_dtype(x: torch.Tensor) -> torch.dtype:
    """float32 draws (float64 for float64 inputs), even for float16/bfloat16 ``x``.

    bfloat16 has 8 bits of mantissa: comparing a bfloat16 uniform with ``p``
    would bias the keep probability, and a bfloat16 normal would be coarse.
    """
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _dropped(shape, p: float, x: torch.Tensor, generator) -> torch.Tensor:
    """Boolean mask of ``shape`` on ``x``'s device, True with probability ``p``."""
    return torch.rand(shape, generator=generator, device=x.device, dtype=_draw_dtype(x)) < p


def _mask_and_scale(x: torch.Tensor, dropped: torch.Tensor, scale) -> torch.Tensor:
    """``x`` times the keep indicator ``~dropped`` (broadcast) times ``scale``.

    The multiplier is built at the mask's (usually small, broadcast) shape, so
    backward saves only it; multiplying by a float mask is much faster on the
    CPU than ``masked_fill`` with a broadcast boolean mask.
    """
    multiplier = (~dropped).to(x.dtype)
    if not (isinstance(scale, float) and scale == 1.0):
        multiplier = multiplier.mul_(scale)
    return x * multiplier


def _prelude(x, p, training, generator, *, allow_one: bool = True) -> float:
    """Validate the arguments every variant shares; return ``p`` as a float."""
    check_tensor(x, "x")
    p = check_probability(p, "p", allow_one=allow_one)
    check_flag(training, "training")
    check_generator(generator, x)
    return p


def _zeros_keeping_graph(x: torch.Tensor) -> torch.Tensor:
    """Zeros shaped like ``x`` whose gradient with respect to ``x`` is exactly zero.

    ``x * 0`` would turn an infinite input into NaN; ``masked_fill`` writes
    the zeros instead, and its backward passes a zero gradient.
    """
    return x.masked_fill(torch.ones((), dtype=torch.bool, device=x.device), 0.0)

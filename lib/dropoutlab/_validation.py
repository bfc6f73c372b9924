"""Argument checks shared by every public entry point of :mod:`dropoutlab`.

Each check raises a ``TypeError`` (wrong kind of object) or a ``ValueError``
(right kind, value out of range) whose message names the argument, the value
received and what is allowed, so a learner never has to read a traceback from
inside torch.
"""

from __future__ import annotations

import numbers

import torch


def check_probability(p, name: str = "p", *, allow_one: bool = True) -> float:
    """Return ``p`` as a float after checking it is a real number in [0, 1].

    ``allow_one=False`` narrows the range to [0, 1), for variants whose noise
    variance ``p / (1 - p)`` would be infinite at ``p == 1``.
    """
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(
            f"dropout probability {name} must be a real number, "
            f"got {p!r} of type {type(p).__name__}"
        )
    value = float(p)
    interval = "[0, 1]" if allow_one else "[0, 1)"
    # Written so that NaN fails too: every comparison with NaN is False.
    inside = 0.0 <= value <= 1.0 and (allow_one or value < 1.0)
    if not inside:
        raise ValueError(f"dropout probability {name} must be in {interval}, got {value}")
    return value


def check_flag(value, name: str) -> bool:
    """Check that ``value`` is a Python ``bool`` (``training``, ``inverted``, ...)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r} of type {type(value).__name__}")
    return value


def check_tensor(x, name: str = "x", *, floating: bool = True) -> torch.Tensor:
    """Check that ``x`` is a tensor, and a floating-point one when ``floating``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if floating and not x.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor (float16, bfloat16, float32 or float64), "
            f"got dtype {x.dtype}"
        )
    return x


def check_generator(generator, x: torch.Tensor, name: str = "generator"):
    """Check that ``generator`` is ``None`` or a ``torch.Generator`` on ``x``'s device type."""
    if generator is None:
        return None
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {type(generator).__name__}")
    if generator.device.type != x.device.type:
        raise ValueError(
            f"{name} must live on the input's device type {x.device.type!r}, "
            f"got a generator on {generator.device.type!r}; "
            f"create it with torch.Generator(device=x.device)"
        )
    return generator


def check_int(value, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """Check that ``value`` is an ``int`` (not a bool) in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r} of type {type(value).__name__}")
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
    return value


def check_choice(value, name: str, choices: tuple[str, ...]) -> str:
    """Check that ``value`` is one of the strings in ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_min_dim(x: torch.Tensor, name: str, min_dim: int, layout: str) -> None:
    """Check that ``x`` has at least ``min_dim`` dimensions; ``layout`` names them."""
    if x.dim() < min_dim:
        raise ValueError(f"{name} must have at least {min_dim} dimensions {layout}, got shape {tuple(x.shape)}")


def check_dim(x: torch.Tensor, name: str, dim: int, layout: str) -> None:
    """Check that ``x`` has exactly ``dim`` dimensions; ``layout`` names them."""
    if x.dim() != dim:
        raise ValueError(f"{name} must have {dim} dimensions {layout}, got shape {tuple(x.shape)}")

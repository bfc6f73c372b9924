"""Checks shared by the exercises whose answer is a dropout function
``f(x, p, training=True, generator=None)``: ``inverted_dropout`` and ``channel_dropout``."""

from __future__ import annotations

import torch

from .._core import LearnerError, Mistake

# Kept values are x / q up to the rounding of one or two float32 operations
# (scaling before or after masking): a relative error of a few 1e-7.
RTOL = 1e-5


def run_on_copy(answer, probe, x, p, *, training=True, stream=1):
    """Call the answer on a copy of ``x`` (so a mutation cannot leak into the next check)."""
    out = probe.call(answer, x.clone(), p, training=training, generator=probe.generator(stream))
    return probe.tensor(out, "the output", shape=x.shape, dtype=x.dtype).detach()


def zero_fraction(out) -> float:
    """Fraction of exact zeros in ``out``: the drop rate, for inputs with no zeros."""
    return (out == 0).double().mean().item()


def kept_ratios(out, x):
    """``out / x`` where ``out`` is nonzero, in float64: ``1 / q`` for every kept unit of a right answer."""
    kept = out != 0
    return (out[kept] / x[kept]).double()


def all_equal_to(values, target) -> bool:
    """Whether ``values`` is non-empty and every entry equals ``target`` up to ``RTOL``."""
    return values.numel() > 0 and bool(torch.allclose(values, torch.full_like(values, target), rtol=RTOL, atol=0))


def check_no_mutation(answer, probe, x, p) -> None:
    """Raise ``in_place`` if the answer changes the tensor it is given."""
    x_before = x.clone()
    probe.call(answer, x, p, training=True, generator=probe.generator(1))
    if not torch.equal(x, x_before):
        raise Mistake("in_place", f"{(x != x_before).double().mean().item():.0%} of x's entries changed")


def check_p_one(answer, probe, x) -> None:
    """At p = 1 the answer must return zeros: raise ``nan_at_p1`` for NaN, inf or a division by zero."""
    try:
        out = run_on_copy(answer, probe, x, 1.0)
    except LearnerError as e:
        if isinstance(e.error, ZeroDivisionError):
            raise Mistake("nan_at_p1", f"{e}") from None
        raise
    if not torch.isfinite(out).all():
        raise Mistake("nan_at_p1", f"at p = 1, {(~torch.isfinite(out)).sum().item()} of {x.numel()} outputs are NaN or inf")
    if not (out == 0).all():
        raise Mistake(None, f"at p = 1, {(out != 0).sum().item()} of {x.numel()} units were kept; all must be dropped")


def check_generator(answer, probe, x, p, *, fixed_code: str) -> None:
    """Generators seeded alike must give the same output, other seeds or states another one.

    ``ignore_generator`` when two alike generators disagree (the answer draws
    elsewhere); ``fixed_code`` when different generators agree (the answer
    makes or re-seeds a generator of its own). The caller's ``x`` must be big
    enough that two correct masks coincide with negligible probability.
    """

    def run(g):
        return probe.tensor(probe.call(answer, x.clone(), p, training=True, generator=g), "the output")

    g_a = probe.generator(7)
    out_a, out_b = run(g_a), run(probe.generator(7))
    if torch.equal(out_a, x):
        raise Mistake("returns_x", "so no mask was drawn from the generator")
    if not torch.equal(out_a, out_b):
        raise Mistake("ignore_generator", "two generators seeded alike gave different masks")
    if torch.equal(out_a, run(probe.generator(8))) or torch.equal(out_a, run(g_a)):
        raise Mistake(fixed_code, "generators with different seeds or states gave the same mask")
    probe.tensor(probe.call(answer, x.clone(), p, training=True), "the output with generator=None")

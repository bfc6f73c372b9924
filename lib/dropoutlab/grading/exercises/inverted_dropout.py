"""Exercise ``inverted_dropout``: write inverted dropout from scratch.

The learner writes ``inverted_dropout(x, p, training=True, generator=None)``.
The checks run it on a float32 input of 256 x 512 standard normals (no exact
zeros, so a zero in the output is a dropped unit) with ``p = 0.3``. That rate
tells the common wrong answers apart: kept with probability p gives a drop
rate of 0.7, dividing by p scales kept units by 3.33 instead of 1.43.
"""

from __future__ import annotations

import math

import torch

from .._core import SIGMAS, Exercise, LearnerError, Mistake, register
from ._dropout_like import (
    RTOL,
    all_equal_to,
    check_generator,
    check_no_mutation,
    check_p_one,
    kept_ratios,
    run_on_copy,
    zero_fraction,
)

P = 0.3
ROWS, COLS = 256, 512

EXERCISE = register(Exercise(
    id="inverted_dropout",
    title="Inverted dropout",
    notebook="inverted_dropout",
    answer_name="inverted_dropout",
    mistakes={
        "no_rescale": "No rescaling: the kept units keep their value, so the output's mean is "
                      "(1 - p) x. Divide the kept units by 1 - p.",
        "divide_by_p": "Divided by p: kept units must be divided by the keep probability 1 - p, not by p.",
        "multiply_by_q": "Multiplied by 1 - p: that is the test-time scaling of the original recipe. "
                         "Inverted dropout divides by 1 - p during training.",
        "keep_drop_mixup": "Keep/drop mix-up: your function keeps each unit with probability p. "
                           "p is the probability of DROPPING a unit (torch's convention): keep it with probability 1 - p.",
        "ignore_training": "training=False is ignored: units are still dropped at evaluation. Return x when not training.",
        "scale_at_eval": "Scaled at evaluation: with inverted dropout the rescaling happens during training, "
                         "so training=False must return x unchanged.",
        "one_mask_for_batch": "One mask for the whole batch: every row drops the same units. "
                              "Draw an independent mask value for every element of x.",
        "one_mask_per_row": "One mask value per row: whole rows are dropped together. "
                            "Draw an independent mask value for every element of x.",
        "fixed_mask": "Every call drops the same units: a fresh or re-seeded generator inside the function "
                      "gives the same mask each time. Draw from the generator you are given.",
        "in_place": "Modified the input in place (e.g. x *= mask or x.mul_): the caller's x changed. "
                    "Build a new tensor instead.",
        "gaussian_mask": "Gaussian instead of Bernoulli mask: no unit is exactly zero. "
                         "Dropout multiplies by 0 (dropped) or 1/(1 - p) (kept).",
        "nan_at_p1": "p = 1 gives NaN or an error: x * mask / (1 - p) is 0/0 there. "
                     "Handle p == 1 by returning zeros.",
        "ignore_generator": "Ignored the generator: two calls with identically seeded generators gave different "
                            "masks. Pass generator=generator to torch.rand (or bernoulli_).",
        "breaks_grad": "Broke the autograd graph (detach, .data, torch.no_grad, numpy, or a new tensor from "
                       "values): no gradient reaches x. Use tensor operations on x itself.",
        "returns_x": "Returned x unchanged while training: nothing was dropped.",
    },
))


def _input(probe, stream=0):
    return torch.randn(ROWS, COLS, generator=probe.generator(stream))


def _rate_sigma(p, n):
    return math.sqrt(p * (1 - p) / n)


@EXERCISE.check("returns a tensor shaped like x, with x's dtype")
def _returns_tensor(answer, probe):
    run_on_copy(answer, probe, _input(probe), P)


@EXERCISE.check("never modifies x")
def _no_mutation(answer, probe):
    check_no_mutation(answer, probe, _input(probe), P)


@EXERCISE.check("drops a fraction p of the units while training")
def _drop_rate(answer, probe):
    x = _input(probe)
    out = run_on_copy(answer, probe, x, P)
    rate = zero_fraction(out)
    tol = SIGMAS * _rate_sigma(P, x.numel())
    if abs(rate - P) <= tol:
        return
    if torch.equal(out, x):
        raise Mistake("returns_x")
    if abs(rate - (1 - P)) <= tol:
        raise Mistake("keep_drop_mixup", f"at p = {P} it dropped {rate:.3f} of the units, expected {P}")
    if rate == 0.0 and kept_ratios(out, x).std().item() > 1e-3:
        raise Mistake("gaussian_mask", f"at p = {P} no unit was zero; the output / x ratios vary continuously")
    raise Mistake(None, f"at p = {P} it dropped a fraction {rate:.4f} of the units, expected {P} ± {tol:.4f}")


@EXERCISE.check("rescales the kept units by 1/(1 - p)")
def _rescale(answer, probe):
    x = _input(probe)
    out = run_on_copy(answer, probe, x, P)
    ratios = kept_ratios(out, x)
    q = 1 - P
    if ratios.numel() == 0:
        raise Mistake(None, f"at p = {P} every unit was dropped, so no kept value can be checked")
    if all_equal_to(ratios, 1 / q):
        return
    median = ratios.median().item()
    detail = f"kept values are {median:.3f} x at p = {P}, expected 1/(1 - p) = {1 / q:.3f}"
    for code, target in (("no_rescale", 1.0), ("divide_by_p", 1 / P), ("multiply_by_q", q)):
        if all_equal_to(ratios, target):
            raise Mistake(code, detail)
    if ratios.std().item() > 1e-3:
        raise Mistake("gaussian_mask", f"the output / x ratios vary (std {ratios.std().item():.3f}); they should all be {1 / q:.3f}")
    raise Mistake(None, detail)


@EXERCISE.check("draws an independent mask value for every element")
def _independent(answer, probe):
    x = _input(probe)
    kept = run_on_copy(answer, probe, x, P) != 0
    if kept.all() or not kept.any():
        raise Mistake(None, f"at p = {P} it kept {'every' if kept.all() else 'no'} unit")
    if (kept == kept[:1]).all():
        raise Mistake("one_mask_for_batch", f"all {ROWS} rows have the same mask")
    if (kept == kept[:, :1]).all():
        raise Mistake("one_mask_per_row", f"each of the {ROWS} rows is either all kept or all dropped")
    # Columns: the fraction kept in each column is Binomial(ROWS, q) / ROWS; a
    # mask shared across rows would make it 0 or 1. Rows were checked above.


@EXERCISE.check("training=False returns x unchanged")
def _eval_identity(answer, probe):
    x = _input(probe)
    out = run_on_copy(answer, probe, x, P, training=False)
    if torch.equal(out, x):
        return
    rate = zero_fraction(out)
    if rate > 0:
        raise Mistake("ignore_training", f"with training=False it still dropped {rate:.3f} of the units")
    ratios = kept_ratios(out, x)
    for target in (1 - P, 1 / (1 - P), P, 1 / P):
        if all_equal_to(ratios, target):
            raise Mistake("scale_at_eval", f"with training=False the output is {target:.3f} x")
    raise Mistake(None, "with training=False the output differs from x")


@EXERCISE.check("p = 0 keeps everything and p = 1 gives zeros, never NaN")
def _edges(answer, probe):
    x = _input(probe)[:64, :16]  # 1024 elements
    check_p_one(answer, probe, x)
    out0 = run_on_copy(answer, probe, x, 0.0)
    # `rand > p` drops a unit whose uniform draw is exactly 0 (probability
    # 2**-24 each): allow one such unit among 1024 (two: probability < 2e-9).
    changed = (out0 != x).sum().item()
    if changed > 1:
        raise Mistake(None, f"at p = 0, {changed} of {x.numel()} outputs differ from x; p = 0 must keep every unit as it is")


@EXERCISE.check("draws its mask from the generator it is given")
def _generator(answer, probe):
    # 131072 units: two correct masks coincide with probability 0.58^131072
    check_generator(answer, probe, _input(probe), P, fixed_code="fixed_mask")


@EXERCISE.check("keeps the autograd graph: the gradient is mask / (1 - p)")
def _gradient(answer, probe):
    x = _input(probe).requires_grad_()
    try:
        out = probe.call(answer, x, P, training=True, generator=probe.generator(1))
        out = probe.tensor(out, "the output", shape=x.shape)
        if not out.requires_grad:
            raise Mistake("breaks_grad", "the output does not require grad")
        out.sum().backward()
    except LearnerError as e:
        text = str(e.error).lower()
        if "in-place" in text or "inplace" in text:
            raise Mistake("in_place", f"{e}") from None
        if "requires grad" in text or "requires_grad" in text:
            raise Mistake("breaks_grad", f"{e}") from None
        raise
    except RuntimeError as e:  # raised by backward() through the learner's graph
        text = str(e).lower()
        code = "in_place" if ("in-place" in text or "inplace" in text) else "breaks_grad"
        raise Mistake(code, f"backward failed: {e}") from None
    if x.grad is None:
        raise Mistake("breaks_grad", "x.grad is None after backward")
    expected = (out.detach() != 0).to(x.dtype) / (1 - P)
    if not torch.allclose(x.grad, expected, rtol=RTOL, atol=1e-6):
        raise Mistake(None, "the gradient with respect to x is not mask / (1 - p)")

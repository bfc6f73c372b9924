"""The ``enumerate_masks`` and ``ensemble_predictions`` checks: right answers pass however
they are written, and each known wrong answer is rejected with its own hint."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from dropoutlab import theory
from dropoutlab.grading import EXERCISES, check

SEEDS = [0, 1, 12345]
F64 = torch.float64


# ---- enumerate_masks: correct answers, written differently ----------------------------------

def bits_high_first(n, p):
    q = 1 - p
    shifts = torch.arange(n - 1, -1, -1)
    masks = ((torch.arange(2**n).unsqueeze(1) >> shifts) & 1).to(F64)
    kept = masks.sum(1)
    return masks, q**kept * p ** (n - kept)


def itertools_where_prod(n, p):
    masks = torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=F64)
    probs = torch.where(masks == 1, torch.tensor(1 - p, dtype=F64), torch.tensor(p, dtype=F64)).prod(1)
    return masks, probs


def recursive_python(n, p):
    if n == 0:
        return torch.ones(1, 0, dtype=F64), torch.ones(1, dtype=F64)
    masks, probs = recursive_python(n - 1, p)
    dropped = torch.cat([torch.zeros(len(masks), 1, dtype=F64), masks], 1)
    kept = torch.cat([torch.ones(len(masks), 1, dtype=F64), masks], 1)
    return torch.cat([kept, dropped]), torch.cat([(1 - p) * probs, p * probs])


def library(n, p):
    return theory.enumerate_masks(n, p)


CORRECT_MASKS = [bits_high_first, itertools_where_prod, recursive_python, library]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("answer", CORRECT_MASKS, ids=lambda f: f.__name__)
def test_correct_masks_pass(answer, seed):
    report = check("enumerate_masks", answer, seed=seed)
    assert report.passed, report.feedback
    assert report.score == report.max_score and report.mistakes == ()


# ---- enumerate_masks: the known mistakes ---------------------------------------------------

def _product_masks(n):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=F64)


def _powers(masks, p):
    kept = (masks != 0).to(F64).sum(1)
    return (1 - p) ** kept * p ** (masks.shape[1] - kept)


def off_by_one(n, p):
    masks = torch.tensor([[(k >> i) & 1 for i in range(n)] for k in range(2**n - 1)], dtype=F64)
    return masks, _powers(masks, p)


def skips_zero(n, p):
    masks = torch.tensor([[(k >> i) & 1 for i in range(n)] for k in range(1, 2**n)], dtype=F64)
    return masks, _powers(masks, p)


def shift_off_by_one(n, p):
    masks = torch.tensor([[(k >> (i + 1)) & 1 for i in range(n)] for k in range(2**n)], dtype=F64)
    return masks, _powers(masks, p)


def unshifted_bits(n, p):
    masks = torch.tensor([[k & (1 << i) for i in range(n)] for k in range(2**n)], dtype=F64)
    return masks, _powers(masks, p)


def keep_factor_only(n, p):
    masks = _product_masks(n)
    return masks, (1 - p) ** masks.sum(1)


def keep_drop_swapped(n, p):
    masks = _product_masks(n)
    kept = masks.sum(1)
    return masks, p**kept * (1 - p) ** (n - kept)


def uniform(n, p):
    return _product_masks(n), torch.full((2**n,), 2.0**-n, dtype=F64)


def binomial_order(n, p):
    probs = [(1 - p) ** k * p ** (n - k) for k in range(n + 1) for _ in range(math.comb(n, k))]
    return _product_masks(n), torch.tensor(probs, dtype=F64)


def log_space_torch(n, p):
    masks = _product_masks(n)
    kept = masks.sum(1)
    log_q, log_p = torch.log(torch.tensor(1 - p, dtype=F64)), torch.log(torch.tensor(p, dtype=F64))
    return masks, torch.exp(kept * log_q + (n - kept) * log_p)


def log_space_math(n, p):
    masks = _product_masks(n)
    kept = masks.sum(1)
    return masks, torch.exp(kept * math.log(1 - p) + (n - kept) * math.log(p))


def float32_list(n, p):
    masks = _product_masks(n)
    probs = [(1 - p) ** k * p ** (n - k) for k in masks.sum(1).tolist()]
    return masks, torch.tensor(probs).double()


def integer_masks(n, p):
    masks = torch.tensor(list(itertools.product([0, 1], repeat=n)))
    return masks, _powers(masks.to(F64), p)


def masks_only(n, p):
    return _product_masks(n)


WRONG_MASKS = [
    (off_by_one, "missing_mask"),
    (skips_zero, "missing_mask"),
    (shift_off_by_one, "repeated_masks"),
    (unshifted_bits, "not_binary"),
    (keep_factor_only, "not_normalised"),
    (keep_drop_swapped, "keep_drop_mixup"),
    (uniform, "uniform_probs"),
    (binomial_order, "probs_misaligned"),
    (log_space_torch, "nan_at_edges"),
    (log_space_math, "nan_at_edges"),
    (float32_list, "float32_precision"),
    (integer_masks, "wrong_dtype"),
    (masks_only, "wrong_type"),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("answer", "mistake"), WRONG_MASKS, ids=[f.__name__ for f, _ in WRONG_MASKS])
def test_wrong_masks_are_named(answer, mistake, seed):
    report = check("enumerate_masks", answer, seed=seed)
    assert not report.passed
    assert report.score < report.max_score
    assert mistake in report.mistakes, report.feedback


# ---- ensemble_predictions: correct answers, written differently -----------------------------

def loop_over_masks(W1, b1, w2, b2, x, p):
    q = 1 - p
    h = torch.relu(x @ W1.T + b1)
    n = W1.shape[0]
    exact = torch.zeros(x.shape[0], dtype=F64)
    g = torch.ones(x.shape[0], dtype=F64)
    g_c = torch.ones(x.shape[0], dtype=F64)
    for bits in itertools.product([0, 1], repeat=n):
        m = torch.tensor(bits, dtype=F64)
        k = sum(bits)
        prob = q**k * p ** (n - k)
        out = torch.sigmoid((h * m) @ w2 + b2)
        exact += prob * out
        g *= out**prob
        g_c *= (1 - out) ** prob
    return exact, torch.sigmoid(q * (h @ w2) + b2), g / (g + g_c)


def library_calls(W1, b1, w2, b2, x, p):
    h = F.relu(F.linear(x, W1, b1))
    masks, probs = theory.enumerate_masks(W1.shape[0], p)
    outputs = torch.sigmoid((masks.unsqueeze(1) * h) @ w2 + b2)  # (2**n, N)
    scaled = torch.sigmoid((1 - p) * h @ w2 + b2)
    return probs @ outputs, scaled, theory.nwgm(outputs, probs)


def einsum_log_space(W1, b1, w2, b2, x, p):
    h = torch.clamp(torch.einsum("nd,kd->nk", x, W1) + b1, min=0)
    masks, probs = bits_high_first(W1.shape[0], p)
    z = torch.einsum("mk,nk,k->mn", masks, h, w2) + b2
    mean_logit = probs @ z
    scaled = torch.sigmoid((1 - p) * torch.einsum("nk,k->n", h, w2) + b2)
    return probs @ torch.sigmoid(z), scaled, torch.sigmoid(mean_logit)


CORRECT_ENSEMBLE = [loop_over_masks, library_calls, einsum_log_space]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("answer", CORRECT_ENSEMBLE, ids=lambda f: f.__name__)
def test_correct_ensemble_pass(answer, seed):
    report = check("ensemble_predictions", answer, seed=seed)
    assert report.passed, report.feedback
    assert report.score == report.max_score and report.mistakes == ()


# ---- ensemble_predictions: the known mistakes ----------------------------------------------

def _parts(W1, b1, w2, b2, x, p, *, probs_p=None, divide=1.0):
    """Logits of every mask, with a chosen keep rate for the weights and an optional mask divisor."""
    h = torch.relu(x @ W1.T + b1)
    masks, probs = theory.enumerate_masks(W1.shape[0], p if probs_p is None else probs_p)
    return h, masks @ (h * w2 / divide).T + b2, probs


def _right(W1, b1, w2, b2, x, p):
    h, z, probs = _parts(W1, b1, w2, b2, x, p)
    return probs @ torch.sigmoid(z), torch.sigmoid((1 - p) * h @ w2 + b2), torch.sigmoid(probs @ z)


def unweighted(W1, b1, w2, b2, x, p):
    h, z, _ = _parts(W1, b1, w2, b2, x, p)
    return torch.sigmoid(z).mean(0), torch.sigmoid((1 - p) * h @ w2 + b2), torch.sigmoid(z.mean(0))


def sigmoid_of_mean_logit(W1, b1, w2, b2, x, p):
    _, scaled, geometric = _right(W1, b1, w2, b2, x, p)
    return geometric, scaled, geometric


def keep_with_p(W1, b1, w2, b2, x, p):
    h, z, probs = _parts(W1, b1, w2, b2, x, p, probs_p=1 - p)
    return probs @ torch.sigmoid(z), torch.sigmoid((1 - p) * h @ w2 + b2), torch.sigmoid(probs @ z)


def inverted(W1, b1, w2, b2, x, p):
    h, z, probs = _parts(W1, b1, w2, b2, x, p, divide=1 - p)
    return probs @ torch.sigmoid(z), torch.sigmoid((1 - p) * h @ w2 + b2), torch.sigmoid(probs @ z)


def full_net(W1, b1, w2, b2, x, p):
    exact, _, geometric = _right(W1, b1, w2, b2, x, p)
    return exact, torch.sigmoid(torch.relu(x @ W1.T + b1) @ w2 + b2), geometric


def times_p(W1, b1, w2, b2, x, p):
    exact, _, geometric = _right(W1, b1, w2, b2, x, p)
    return exact, torch.sigmoid(p * torch.relu(x @ W1.T + b1) @ w2 + b2), geometric


def bias_times_q(W1, b1, w2, b2, x, p):
    exact, _, geometric = _right(W1, b1, w2, b2, x, p)
    return exact, torch.sigmoid((1 - p) * (torch.relu(x @ W1.T + b1) @ w2 + b2)), geometric


def geometric_only(W1, b1, w2, b2, x, p):
    exact, scaled, _ = _right(W1, b1, w2, b2, x, p)
    _, z, probs = _parts(W1, b1, w2, b2, x, p)
    return exact, scaled, torch.exp(probs @ F.logsigmoid(z))


def log_probabilities(W1, b1, w2, b2, x, p):
    h, z, _ = _parts(W1, b1, w2, b2, x, p)
    masks = theory.enumerate_masks(W1.shape[0], p)[0]
    kept = masks.sum(1)
    log_q, log_p = (torch.log(torch.tensor(v, dtype=F64)) for v in (1 - p, p))
    probs = torch.exp(kept * log_q + (W1.shape[0] - kept) * log_p)
    return probs @ torch.sigmoid(z), torch.sigmoid((1 - p) * h @ w2 + b2), torch.sigmoid(probs @ z)


def in_float32(W1, b1, w2, b2, x, p):
    args = [t.float() for t in (W1, b1, w2, b2, x)]
    h = torch.relu(args[4] @ args[0].T + args[1])
    masks, probs = theory.enumerate_masks(W1.shape[0], p, dtype=torch.float32)
    z = masks @ (h * args[2]).T + args[3]
    out = probs @ torch.sigmoid(z), torch.sigmoid((1 - p) * h @ args[2] + args[3]), torch.sigmoid(probs @ z)
    return tuple(t.double() for t in out)


def returns_two(W1, b1, w2, b2, x, p):
    return _right(W1, b1, w2, b2, x, p)[:2]


def returns_float32(W1, b1, w2, b2, x, p):
    return tuple(t.float() for t in _right(W1, b1, w2, b2, x, p))


def raises_other(W1, b1, w2, b2, x, p):
    return x @ W1  # a shape error from inside torch


WRONG_ENSEMBLE = [
    (unweighted, "unweighted_mean"),
    (sigmoid_of_mean_logit, "mean_logit_as_mean"),
    (keep_with_p, "keep_drop_mixup"),
    (inverted, "inverted_masks"),
    (full_net, "no_q_scaling"),
    (times_p, "scale_by_p"),
    (bias_times_q, "bias_scaled"),
    (geometric_only, "nwgm_not_normalised"),
    (log_probabilities, "nan_at_edges"),
    (in_float32, "float32_precision"),
    (returns_two, "wrong_type"),
    (returns_float32, "wrong_dtype"),
    (raises_other, "raised"),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("answer", "mistake"), WRONG_ENSEMBLE, ids=[f.__name__ for f, _ in WRONG_ENSEMBLE])
def test_wrong_ensemble_is_named(answer, mistake, seed):
    report = check("ensemble_predictions", answer, seed=seed)
    assert not report.passed
    assert report.score < report.max_score
    assert mistake in report.mistakes, report.feedback


def test_monte_carlo_check_rejects_wrong_means():
    # The statistical check alone, not only the exact one, catches the mean-of-logits answer.
    report = check("ensemble_predictions", sigmoid_of_mean_logit, seed=0)
    line = next(r for r in report.results if "Monte Carlo" in r.name)
    assert not line.passed and line.mistake == "mean_logit_as_mean", report.feedback


# ---- both -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("exercise_id", "table"), [("enumerate_masks", WRONG_MASKS),
                                                    ("ensemble_predictions", WRONG_ENSEMBLE)])
def test_every_declared_mistake_is_exercised(exercise_id, table):
    declared = set(EXERCISES[exercise_id].mistakes)
    covered = {m for _, m in table}
    assert len(declared) >= 4
    assert declared <= covered, declared - covered


@pytest.mark.parametrize("exercise_id", ["enumerate_masks", "ensemble_predictions"])
def test_stub_is_not_implemented(exercise_id):
    def stub(*args):
        raise NotImplementedError

    report = check(exercise_id, stub)
    assert report.mistakes == ("not_implemented",)
    assert report.score == 0

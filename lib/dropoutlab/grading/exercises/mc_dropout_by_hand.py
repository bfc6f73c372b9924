"""Exercises of ``mc_dropout_by_hand``: MC dropout and out-of-distribution scores, by hand.

Four functions, each graded on its own:

- ``mc_predict(model, x, samples)``: ``samples`` passes with only the dropout
  modules in training mode, as class probabilities ``(T, N, C)``. The checks
  hand it a small network ``Linear -> BatchNorm1d -> ReLU -> Dropout(p) ->
  Linear`` whose BatchNorm running statistics are far from the statistics of
  the batch, so BatchNorm in training mode changes every output. The hidden
  layer has ``H = 6`` units, so a pass can only be one of ``2**6`` functions
  of its row: the checks enumerate them and ask that every pass is one of
  them. That holds whatever masks the global RNG draws, so no check depends
  on how the learner's passes consume it.
- ``predictive_entropy(probs)`` and ``bald(sample_probs)``: exact identities,
  compared with :mod:`dropoutlab.mc` in float64 on probabilities with exact
  zeros, one-hot rows and uniform rows.
- ``flag_ood(scores_in, scores_test, fpr)``: exact too. Quantile conventions
  (linear interpolation, nearest rank, ...) move the threshold by at most one
  order statistic of ``scores_in``, so test scores are kept away from the
  order statistics around the quantile, and counts on ``scores_in`` itself
  may differ from ``fpr * n`` by two.
"""

from __future__ import annotations

import copy
import itertools
import math

import torch
from torch import nn

from ... import mc
from .._core import Exercise, Mistake, register

NOTEBOOK = "mc_dropout_by_hand"

# ---- mc_predict -----------------------------------------------------------------------

P = 0.5  # drop probability of the graded network's dropout layer; q = 1 - p
N_ROWS, D_IN, HIDDEN, CLASSES, SAMPLES = 16, 5, 6, 10, 32
# The learner's passes run in float32; logits stay below ~15 in size, so every
# probability is off by less than 1e-6 from the float64 value of the same mask.
# Distinct masks differ by ~1e-2 or more, and BatchNorm on batch statistics by ~1e-1.
PROB_ATOL = 1e-4

MC_PREDICT = register(Exercise(
    id="mc_predict",
    title="MC dropout: stochastic passes",
    notebook=NOTEBOOK,
    answer_name="mc_predict",
    mistakes={
        "averaged": "Averaged over the passes: return every pass, shape (samples, N, C), not their mean (N, C). "
                    "The scores of the next steps need the passes themselves.",
        "logits": "The rows do not sum to one: these are logits (or log-probabilities). "
                  "Apply torch.softmax(..., dim=-1) to each pass's output.",
        "softmax_wrong_dim": "Softmax over the wrong dimension: the probabilities must sum to one over the classes, "
                             "the last dimension. Use dim=-1.",
        "tracks_grad": "Gradients are tracked: the output requires grad, so every pass keeps its graph in memory. "
                       "Run the passes inside `with torch.no_grad():`.",
        "dropout_off": "Dropout is off: every pass gives the evaluation-mode prediction, so the passes are identical. "
                       "Switch the dropout modules to training mode (m.train() for each dropout module m).",
        "repeated_pass": "The passes are all the same stochastic pass: run the model once per sample "
                         "(or on x repeated `samples` times), not once and then copied.",
        "whole_model_train": "model.train() switched every layer to training mode: BatchNorm then normalises with "
                             "the batch's statistics (and updates its running statistics). Put the model in eval mode "
                             "and switch only the dropout modules to training mode.",
        "others_not_eval": "Only the dropout modules were switched: handed a model in training mode, BatchNorm "
                           "stayed in training mode. Call model.eval() first, then switch the dropout modules "
                           "to training mode.",
        "mode_not_restored": "The model's modes were not restored: after your function returns, every module must be "
                             "in the mode it was in before. Save the modes first and put them back (in a `finally:`).",
        "own_dropout": "Dropout applied by hand to the input or to the output: MC dropout switches on the model's own "
                       "dropout layers, which sit inside the network.",
    },
))


def _graded_model(probe, stream):
    """A seeded ``Linear -> BatchNorm1d -> ReLU -> Dropout -> Linear`` in eval mode, and an input ``x``."""
    g = probe.generator(stream)
    lin1, bn, lin2 = nn.Linear(D_IN, HIDDEN), nn.BatchNorm1d(HIDDEN), nn.Linear(HIDDEN, CLASSES)
    with torch.no_grad():
        lin1.weight.copy_(torch.randn(HIDDEN, D_IN, generator=g) / math.sqrt(D_IN))
        lin1.bias.copy_(2.0 + torch.randn(HIDDEN, generator=g))
        # running statistics far from the batch's (mean ~2, variance ~1): BatchNorm in training mode moves every unit
        bn.running_mean.copy_(torch.randn(HIDDEN, generator=g))
        bn.running_var.copy_(0.5 + 2.0 * torch.rand(HIDDEN, generator=g))
        bn.weight.copy_(0.5 + torch.rand(HIDDEN, generator=g))
        bn.bias.copy_(0.3 * torch.randn(HIDDEN, generator=g))
        lin2.weight.copy_(0.6 * torch.randn(CLASSES, HIDDEN, generator=g))
        lin2.bias.copy_(0.5 * torch.randn(CLASSES, generator=g))
    model = nn.Sequential(lin1, bn, nn.ReLU(), nn.Dropout(P), lin2).eval()
    x = torch.randn(N_ROWS, D_IN, generator=probe.generator(stream + 100))
    return model, x


def _hidden(model, x, *, batch_stats=False):
    """The post-ReLU hidden layer in float64, BatchNorm on running (or on the batch's biased) statistics."""
    lin1, bn = model[0], model[1]
    a = x.double() @ lin1.weight.detach().double().T + lin1.bias.detach().double()
    if batch_stats:
        mean, var = a.mean(0), a.var(0, correction=0)
    else:
        mean, var = bn.running_mean.double(), bn.running_var.double()
    a = (a - mean) / torch.sqrt(var + bn.eps) * bn.weight.detach().double() + bn.bias.detach().double()
    return a.clamp(min=0)


def _readout(model, h):
    lin2 = model[-1]
    return h @ lin2.weight.detach().double().T + lin2.bias.detach().double()


def _masks(width):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=width)), dtype=torch.float64)


def _mask_candidates(model, h):
    """(N, 2**H, C): the probabilities of each row under every dropout mask of the hidden layer."""
    z = _masks(HIDDEN)[None] * h[:, None] / (1 - P)
    return _readout(model, z).softmax(-1)


def _matches(out, candidates):
    """(T, N) bool: whether pass t of row n equals one of row n's candidate probability vectors.

    Works in blocks of at most 2**14 elements: below torch's grain size, an op runs on one
    thread, which keeps a check fast on a busy machine (spinning OpenMP threads cost 10-100x there).
    """
    t, c = out.shape[0], out.shape[-1]
    block = max(1, 2**14 // (t * c))
    hit = torch.zeros(out.shape[:2], dtype=torch.bool)
    for n in range(out.shape[1]):
        for start in range(0, candidates.shape[1], block):
            gap = (out[:, n, None, :] - candidates[n, start : start + block][None]).abs().amax(-1)  # (T, block)
            hit[:, n] |= gap.amin(-1) <= PROB_ATOL
    return hit


def _own_dropout(model, x, out):
    """Whether each pass is the model's eval output with dropout (drop prob P) on its logits or on its input."""
    logits = _readout(model, _hidden(model, x))
    on_logits = (_masks(CLASSES)[None] * logits[:, None] / (1 - P)).softmax(-1)
    xs = _masks(D_IN)[None] * x.double()[:, None] / (1 - P)  # (N, 2**D, D)
    on_input = torch.stack([_readout(model, _hidden(model, xs[:, j])) for j in range(xs.shape[1])], 1)
    return bool(_matches(out, on_logits).all() or _matches(out, on_input.softmax(-1)).all())


def _run_mc(answer, probe, model, x):
    """Call ``mc_predict``; return its output as float64 probabilities, whether it required grad, and a copy of
    the model taken before the call (the answer may change BatchNorm's statistics). Names the shape and softmax
    mistakes."""
    reference = copy.deepcopy(model)
    out = probe.call(answer, model, x.clone(), SAMPLES)
    out = probe.tensor(out, "the output")
    if tuple(out.shape) == (N_ROWS, CLASSES):
        raise Mistake("averaged", f"got shape {tuple(out.shape)} for samples={SAMPLES}, N={N_ROWS}, C={CLASSES}")
    probe.tensor(out, "the output", shape=(SAMPLES, N_ROWS, CLASSES))
    requires_grad = out.requires_grad
    out = out.detach().double()
    sums = out.sum(-1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-5) or (out < 0).any():
        for dim, name in ((0, "samples"), (1, "rows")):
            s = out.sum(dim)
            if (out >= 0).all() and torch.allclose(s, torch.ones_like(s), atol=1e-5):
                raise Mistake("softmax_wrong_dim", f"the output sums to one over the {name} (dim {dim}), "
                                                   f"not over the classes")
        raise Mistake("logits", f"the rows sum to values from {sums.min().item():.3g} to {sums.max().item():.3g}"
                                + (", some entries are negative" if (out < 0).any() else ""))
    return out, requires_grad, reference


def _diagnose_passes(model, x, out, *, handed_train=False):
    """Raise the mistake behind passes that are not the network under some dropout mask with BatchNorm in eval."""
    h = _hidden(model, x)
    hit = _matches(out, _mask_candidates(model, h))
    if hit.all():
        return
    eval_probs = _readout(model, h).softmax(-1)
    if ((out - eval_probs[None]).abs().amax() <= PROB_ATOL).item():
        raise Mistake("dropout_off", "every pass equals the evaluation-mode prediction")
    if _matches(out, _mask_candidates(model, _hidden(model, x, batch_stats=True))).all():
        code = "others_not_eval" if handed_train else "whole_model_train"
        raise Mistake(code, "the passes match BatchNorm with the batch's statistics, not its running statistics")
    if _own_dropout(model, x, out):
        raise Mistake("own_dropout", "each pass is the evaluation-mode network with dropout on its input or output")
    raise Mistake(None, f"{(~hit).sum().item()} of the {hit.numel()} (pass, row) outputs are not the network's "
                        f"output under any dropout mask of its hidden layer with BatchNorm in evaluation mode")


def _bn_changed(model, reference):
    """Whether ``model``'s BatchNorm statistics differ from those of ``reference``, its copy from before the call."""
    return not all(torch.equal(getattr(model[1], k), getattr(reference[1], k))
                   for k in ("running_mean", "running_var", "num_batches_tracked"))


@MC_PREDICT.check("returns (samples, N, C) class probabilities that sum to one over the classes")
def _mc_shape(answer, probe):
    model, x = _graded_model(probe, 0)
    _run_mc(answer, probe, model, x)


@MC_PREDICT.check("runs the passes without tracking gradients")
def _mc_no_grad(answer, probe):
    model, x = _graded_model(probe, 1)
    _, requires_grad, _ = _run_mc(answer, probe, model, x)
    if requires_grad:
        raise Mistake("tracks_grad", "the output has requires_grad=True")


@MC_PREDICT.check("runs the passes with dropout on: the passes differ")
def _mc_differ(answer, probe):
    model, x = _graded_model(probe, 2)
    out, _, reference = _run_mc(answer, probe, model, x)
    # Correct passes are all identical only if every row draws the same mask on its active hidden units in all
    # 32 passes: probability below 2**-31 per active unit, and there are dozens of them.
    spread = (out - out[:1]).abs().amax().item()
    if spread > PROB_ATOL:
        return
    eval_probs = _readout(reference, _hidden(reference, x)).softmax(-1)
    if ((out[0] - eval_probs).abs().amax() <= PROB_ATOL).item():
        raise Mistake("dropout_off", f"all {SAMPLES} passes equal the evaluation-mode prediction")
    raise Mistake("repeated_pass", f"all {SAMPLES} passes are identical (largest difference {spread:.1e})")


@MC_PREDICT.check("every pass is the network under one dropout mask, with BatchNorm on its running statistics")
def _mc_masks(answer, probe):
    model, x = _graded_model(probe, 3)
    out, _, reference = _run_mc(answer, probe, model, x)
    if _bn_changed(model, reference):
        raise Mistake("whole_model_train", "BatchNorm's running statistics changed during the call")
    _diagnose_passes(reference, x, out)


@MC_PREDICT.check("leaves every module in the mode it found it in (eval or train)")
def _mc_restores(answer, probe):
    for stream, training in ((4, False), (5, True)):
        model, x = _graded_model(probe, stream)
        model.train(training)
        _run_mc(answer, probe, model, x)
        changed = [f"{name or 'the model'} ({type(m).__name__})" for name, m in model.named_modules()
                   if m.training != training]
        if changed:
            mode = "training" if training else "evaluation"
            raise Mistake("mode_not_restored", f"handed a model in {mode} mode, after the call these modules "
                                               f"were in the other mode: {', '.join(changed)}")


@MC_PREDICT.check("keeps BatchNorm in evaluation mode also when handed a model in training mode")
def _mc_handed_train(answer, probe):
    model, x = _graded_model(probe, 6)
    out, _, reference = _run_mc(answer, probe, model, x)
    if _bn_changed(model, reference):
        raise Mistake("whole_model_train", "handed a model in eval mode, BatchNorm's running statistics changed")
    _diagnose_passes(reference, x, out)
    model, x = _graded_model(probe, 7)
    model.train()
    out, _, reference = _run_mc(answer, probe, model, x)
    if _bn_changed(model, reference):
        raise Mistake("others_not_eval", "handed a model in training mode, BatchNorm's running statistics changed")
    _diagnose_passes(reference, x, out, handed_train=True)


# ---- predictive_entropy and bald ------------------------------------------------------

# Entropies are at most log C ~ 2 nats. Float32 arithmetic inside the answer is
# off by ~1e-6, a `log(p + eps)` guard by at most C * eps (eps <= 1e-6 passes).
# Every known mistake is off by more than 1e-2 on the graded data.
ATOL = 1e-5
ENT_ROWS, ENT_CLASSES = 64, 7
MI_PASSES, MI_ROWS, MI_CLASSES = 8, 48, 5
LN2 = math.log(2.0)

PREDICTIVE_ENTROPY = register(Exercise(
    id="predictive_entropy",
    title="Predictive entropy",
    notebook=NOTEBOOK,
    answer_name="predictive_entropy",
    mistakes={
        "wrong_dim": "Summed over the wrong dimension: sum over the classes (dim=-1), which gives one entropy per row.",
        "nan_at_zero": "NaN where a probability is exactly 0: 0 * log 0 is 0 * (-inf) = NaN in floating point. "
                       "Use torch.special.entr(p), torch.xlogy(p, p), or p * log(p) with the zeros masked out.",
        "log2": "Bits instead of nats: use the natural logarithm, torch.log, not torch.log2.",
        "sign_flipped": "The sign is flipped: the entropy is -sum p log p, which is >= 0.",
        "mean_not_sum": "Averaged over the classes instead of summing: the entropy is -sum_k p_k log p_k.",
    },
))

BALD = register(Exercise(
    id="bald",
    title="BALD: mutual information of the passes",
    notebook=NOTEBOOK,
    answer_name="bald",
    mistakes={
        "wrong_axis": "Averaged over the wrong axis: the passes are dim 0 of (T, N, C); average over dim 0 "
                      "to get one score per input.",
        "nan_at_zero": "NaN where a probability is exactly 0: 0 * log 0 is 0 * (-inf) = NaN in floating point. "
                       "Use torch.special.entr(p), torch.xlogy(p, p), or p * log(p) with the zeros masked out.",
        "entropy_of_mean_only": "Only the entropy of the mean: that is the predictive entropy. BALD subtracts "
                                "the average entropy of the single passes.",
        "expected_entropy_only": "Only the average entropy of the passes: BALD is the entropy of the mean "
                                 "minus this average.",
        "terms_swapped": "The terms are swapped, so the score is <= 0: BALD is H[mean of the passes] minus "
                         "the mean of H[pass], which is >= 0 because entropy is concave.",
        "summed_passes": "Summed the passes' entropies instead of averaging them: divide by T (use .mean(0)).",
        "log2": "Bits instead of nats: use the natural logarithm, torch.log, not torch.log2.",
    },
))


def _entropy(p):
    return torch.special.entr(p).sum(-1)


def _simplex(g, shape, zero_fraction=0.3):
    """Float64 probability vectors over the last dim with exact zeros (the largest entry always kept)."""
    p = (2.0 * torch.randn(shape, generator=g, dtype=torch.float64)).softmax(-1)
    zero = torch.rand(shape, generator=g, dtype=torch.float64) < zero_fraction
    zero &= p < p.amax(-1, keepdim=True)
    p = p.masked_fill(zero, 0.0)
    return p / p.sum(-1, keepdim=True)


def _entropy_input(probe):
    p = _simplex(probe.generator(0), (ENT_ROWS, ENT_CLASSES))
    p[0] = 0.0
    p[0, 3] = 1.0                   # one-hot: entropy 0
    p[1] = 1.0 / ENT_CLASSES        # uniform: entropy log C
    p[2] = 0.0
    p[2, :2] = 0.5                  # two classes: entropy log 2
    return p


def _values(probe, answer, arg):
    """Call the answer on a copy of ``arg``; return its output and the output's values in float64."""
    out = probe.tensor(probe.call(answer, arg.clone()), "the output")
    return out, out.detach().double()


def _finite_rows(values, what):
    """The rows where the answer is finite (NaN has a check of its own); none at all is the NaN mistake."""
    finite = torch.isfinite(values)
    if not finite.any():
        raise Mistake("nan_at_zero", f"every {what} is NaN or inf")
    return finite


def _name_value_mistake(got, expected, candidates, what):
    """Raise the first candidate mistake that ``got`` matches, or a generic one with the largest error."""
    for code, values in candidates:
        if torch.allclose(got, values, atol=ATOL, rtol=0):
            raise Mistake(code, f"largest difference from {what}: {(got - expected).abs().max().item():.3g}")
    raise Mistake(None, f"{what} is off by up to {(got - expected).abs().max().item():.3g} nats "
                        f"(allowed {ATOL:g})")


def _check_entropy_values(got, p, what):
    expected = _entropy(p)
    if torch.allclose(got, expected, atol=ATOL, rtol=0):
        return
    _name_value_mistake(got, expected, [("log2", expected / LN2), ("sign_flipped", -expected),
                                        ("mean_not_sum", expected / p.shape[-1])], what)


@PREDICTIVE_ENTROPY.check("returns one entropy per row, shape (N,)")
def _ent_shape(answer, probe):
    p = _entropy_input(probe)
    out, values = _values(probe, answer, p)
    if tuple(out.shape) == (ENT_CLASSES,):
        raise Mistake("wrong_dim", f"got shape {tuple(out.shape)} for probs of shape {tuple(p.shape)}")
    probe.tensor(out, "the output", shape=(ENT_ROWS,))


@PREDICTIVE_ENTROPY.check("is never NaN, also where probabilities are exactly 0")
def _ent_finite(answer, probe):
    p = _entropy_input(probe)
    _, values = _values(probe, answer, p)
    bad = ~torch.isfinite(values)
    if bad.any():
        raise Mistake("nan_at_zero", f"{bad.sum().item()} of {values.numel()} entropies are NaN or inf; "
                                     f"{(p == 0).any(-1).sum().item()} rows hold a 0")


@PREDICTIVE_ENTROPY.check("equals -sum_k p_k log p_k in nats")
def _ent_values(answer, probe):
    p = _entropy_input(probe)
    out, values = _values(probe, answer, p)
    probe.tensor(out, "the output", shape=(ENT_ROWS,))
    rows = _finite_rows(values, "entropy")
    _check_entropy_values(values[rows], p[rows], "the entropy")


@PREDICTIVE_ENTROPY.check("gives 0 for a one-hot row and log C for a uniform row")
def _ent_extremes(answer, probe):
    c = 4 + int(torch.randint(0, 5, (1,), generator=probe.generator(1)))
    p = torch.zeros(2, c, dtype=torch.float64)
    p[0, c // 2] = 1.0
    p[1] = 1.0 / c
    out, values = _values(probe, answer, p)
    probe.tensor(out, "the output", shape=(2,))
    if not torch.isfinite(values).all():
        raise Mistake("nan_at_zero", f"the one-hot row [0, ..., 1, ..., 0] gives {values[0].item()}")
    _check_entropy_values(values, p, f"the entropies of a one-hot and a uniform row of {c} classes")


def _bald_input(probe):
    """(T, N, C) float64 passes with exact zeros; row 0: identical passes (MI 0), rows 1-2: one-hot passes."""
    g = probe.generator(0)
    base = _simplex(g, (1, MI_ROWS, MI_CLASSES))
    noise = _simplex(g, (MI_PASSES, MI_ROWS, MI_CLASSES))
    w = torch.rand(1, MI_ROWS, 1, generator=g, dtype=torch.float64)
    sp = w * base + (1 - w) * noise  # zeros where both are 0
    sp[:, 0] = base[0, 0]                              # every pass the same: MI 0
    sp[:, 1] = 0.0
    sp[: MI_PASSES // 2, 1, 0] = 1.0                   # half the passes say class 0, half class 1: MI log 2
    sp[MI_PASSES // 2 :, 1, 1] = 1.0
    sp[:, 2] = 0.0
    sp[:, 2, :] = torch.eye(MI_CLASSES, dtype=torch.float64)[torch.arange(MI_PASSES) % MI_CLASSES]
    return sp


def _check_bald_values(got, sp, what):
    expected = mc.mutual_information(sp)
    if torch.allclose(got, expected, atol=ATOL, rtol=0):
        return
    h_mean, mean_h = _entropy(sp.mean(0)), _entropy(sp).mean(0)
    _name_value_mistake(got, expected, [
        ("entropy_of_mean_only", h_mean), ("expected_entropy_only", mean_h), ("terms_swapped", mean_h - h_mean),
        ("summed_passes", h_mean - sp.shape[0] * mean_h), ("log2", (h_mean - mean_h) / LN2)], what)


@BALD.check("returns one score per input, shape (N,)")
def _bald_shape(answer, probe):
    sp = _bald_input(probe)
    out, values = _values(probe, answer, sp)
    if tuple(out.shape) == (MI_PASSES,):
        raise Mistake("wrong_axis", f"got shape {tuple(out.shape)} for sample_probs of shape {tuple(sp.shape)}: "
                                    f"one value per pass, not per input")
    probe.tensor(out, "the output", shape=(MI_ROWS,))


@BALD.check("is never NaN, also where probabilities are exactly 0")
def _bald_finite(answer, probe):
    sp = _bald_input(probe)
    _, values = _values(probe, answer, sp)
    bad = ~torch.isfinite(values)
    if bad.any():
        raise Mistake("nan_at_zero", f"{bad.sum().item()} of {values.numel()} scores are NaN or inf")


@BALD.check("is never negative")
def _bald_nonnegative(answer, probe):
    sp = _bald_input(probe)
    out, values = _values(probe, answer, sp)
    probe.tensor(out, "the output", shape=(MI_ROWS,))
    rows = _finite_rows(values, "score")
    values, sp = values[rows], sp[:, rows]
    lowest = values.min().item()
    if lowest < -ATOL:
        h_mean, mean_h = _entropy(sp.mean(0)), _entropy(sp).mean(0)
        code = None
        for name, candidate in (("terms_swapped", mean_h - h_mean), ("summed_passes", h_mean - sp.shape[0] * mean_h)):
            if torch.allclose(values, candidate, atol=ATOL, rtol=0):
                code = name
        raise Mistake(code, f"the lowest score is {lowest:.3g} nats")


@BALD.check("equals H[mean_t p_t] - mean_t H[p_t] in nats")
def _bald_values(answer, probe):
    sp = _bald_input(probe)
    out, values = _values(probe, answer, sp)
    probe.tensor(out, "the output", shape=(MI_ROWS,))
    rows = _finite_rows(values, "score")
    _check_bald_values(values[rows], sp[:, rows], "BALD")


@BALD.check("is 0 when the passes agree and log 2 when two confident halves disagree")
def _bald_extremes(answer, probe):
    sp = _bald_input(probe)[:, :2]  # row 0: identical passes, row 1: half class 0, half class 1
    perm = torch.randperm(MI_PASSES, generator=probe.generator(1))
    sp = sp[perm]
    out, values = _values(probe, answer, sp)
    probe.tensor(out, "the output", shape=(2,))
    if not torch.isfinite(values).all():
        raise Mistake("nan_at_zero", f"for confident passes (one-hot rows) it gives {values.tolist()}")
    _check_bald_values(values, sp, "BALD on agreeing and on evenly split confident passes")


# ---- flag_ood -------------------------------------------------------------------------

N_IN, N_TEST = 1000, 300
FPRS = (0.05, 0.2)
# quantile conventions put the threshold within one order statistic of
# scores_in's (1 - fpr) quantile: counts on scores_in may differ by 2
COUNT_SLACK = 2
BAND = 3  # test scores avoid this many order statistics on each side of the quantile

FLAG_OOD = register(Exercise(
    id="flag_ood",
    title="Flagging out-of-distribution inputs",
    notebook=NOTEBOOK,
    answer_name="flag_ood",
    mistakes={
        "indices": "Returned indices (e.g. from nonzero or where) instead of a mask: return the bool tensor "
                   "scores_test > threshold itself, one flag per test score.",
        "direction_reversed": "The direction is reversed: a high uncertainty score means out-of-distribution, "
                              "so flag the scores ABOVE the threshold.",
        "fpr_quantile": "Used the fpr quantile as the threshold: a fraction 1 - fpr of the in-distribution scores "
                        "lies above it. Take the (1 - fpr) quantile, so that only a fraction fpr exceeds it.",
        "percent_scale": "Quantile given in the wrong units: np.percentile takes percent (0 to 100), "
                         "torch.quantile and np.quantile a fraction (0 to 1). Use torch.quantile(scores_in, 1 - fpr).",
        "threshold_from_test": "The threshold came from scores_test (or from both sets together): it must come from "
                               "the in-distribution scores only, otherwise the flagged fraction of the test set is "
                               "fixed in advance, whatever the test inputs are.",
    },
))


def _in_scores(g, n):
    return torch.randn(n, generator=g, dtype=torch.float64).exp()  # positive and skewed, like entropies


def _threshold_band(scores_in, fpr):
    s = scores_in.sort().values
    k = round((1 - fpr) * len(s))
    return s[max(k - BAND, 0)].item(), s[min(k + BAND, len(s) - 1)].item()


def _mask(probe, answer, scores_in, scores_test, fpr):
    out = probe.call(answer, scores_in.clone(), scores_test.clone(), fpr)
    out = probe.tensor(out, "the output")
    n = len(scores_test)
    if out.dtype != torch.bool and not out.is_floating_point() and out.dim() == 1 and tuple(out.shape) != (n,):
        raise Mistake("indices", f"got an integer tensor of shape {tuple(out.shape)} for {n} test scores")
    probe.tensor(out, "the output", shape=(n,), dtype=torch.bool)
    return out


@FLAG_OOD.check("returns a bool mask with one flag per test score")
def _flag_type(answer, probe):
    scores_in = _in_scores(probe.generator(0), N_IN)
    scores_test = _in_scores(probe.generator(1), N_TEST) * 3.0
    _mask(probe, answer, scores_in, scores_test, FPRS[0])


@FLAG_OOD.check("flags scores above every in-distribution score, never those below")
def _flag_direction(answer, probe):
    scores_in = _in_scores(probe.generator(0), N_IN)
    lo, hi = scores_in.min().item(), scores_in.max().item()
    scores_test = torch.tensor([hi + 1.0, lo / 2, hi * 2, lo / 4], dtype=torch.float64)
    flags = _mask(probe, answer, scores_in, scores_test, FPRS[0])
    if flags.tolist() == [True, False, True, False]:
        return
    if flags.tolist() == [False, True, False, True]:
        raise Mistake("direction_reversed", "scores above the largest in-distribution score were not flagged, "
                                            "scores below the smallest were")
    if torch.equal(flags, scores_test > torch.quantile(scores_test, 1 - FPRS[0])):
        raise Mistake("threshold_from_test", f"for scores [above max, below min, above max, below min] it returned "
                                             f"{flags.tolist()}, the top {FPRS[0]:.0%} of these four")
    raise Mistake(None, f"for scores [above max, below min, above max, below min] it returned {flags.tolist()}")


@FLAG_OOD.check("flags a fraction fpr of the in-distribution scores")
def _flag_rate(answer, probe):
    scores_in = _in_scores(probe.generator(0), N_IN)
    for fpr in FPRS:
        flags = _mask(probe, answer, scores_in, scores_in, fpr)
        count = int(flags.sum())
        detail = f"at fpr = {fpr} it flagged {count} of {N_IN} in-distribution scores, expected {fpr * N_IN:.0f}"
        high = 0 < count < N_IN and bool(scores_in[flags].min() > scores_in[~flags].max())
        low = 0 < count < N_IN and bool(scores_in[flags].max() < scores_in[~flags].min())
        if abs(count - fpr * N_IN) <= COUNT_SLACK:
            if high:
                continue
            raise Mistake("direction_reversed" if low else None,
                          f"at fpr = {fpr} it flagged {count} scores, but not the highest ones")
        if abs(count - (1 - fpr) * N_IN) <= COUNT_SLACK:
            raise Mistake("fpr_quantile" if high else "direction_reversed", detail)
        if abs(count - (1 - (1 - fpr) / 100) * N_IN) <= COUNT_SLACK + 1:
            raise Mistake("percent_scale", detail)
        raise Mistake(None, detail)


@FLAG_OOD.check("takes the threshold from the in-distribution scores only")
def _flag_threshold(answer, probe):
    g = probe.generator(2)
    scores_in = _in_scores(probe.generator(0), N_IN)
    shifted = _in_scores(g, 4 * N_TEST) * 6.0  # out-of-distribution: larger scores
    mixed = torch.cat([_in_scores(g, 4 * N_TEST), shifted])
    for fpr in FPRS:
        lo, hi = _threshold_band(scores_in, fpr)
        scores_test = mixed[(mixed < lo) | (mixed > hi)]
        scores_test = scores_test[torch.randperm(len(scores_test), generator=g)[:N_TEST]]
        flags = _mask(probe, answer, scores_in, scores_test, fpr)
        expected = scores_test > torch.quantile(scores_in, 1 - fpr)
        if torch.equal(flags, expected):
            continue
        detail = (f"at fpr = {fpr} it flagged {int(flags.sum())} of {N_TEST} test scores, "
                  f"expected {int(expected.sum())}")
        # masks of the known mistakes; their thresholds are not kept apart from the test scores, so allow a
        # few flags of difference for other quantile conventions
        candidates = [
            ("threshold_from_test", scores_test > torch.quantile(scores_test, 1 - fpr)),
            ("threshold_from_test", scores_test > torch.quantile(torch.cat([scores_in, scores_test]), 1 - fpr)),
            ("direction_reversed", scores_test < torch.quantile(scores_in, 1 - fpr)),
            ("direction_reversed", scores_test < torch.quantile(scores_in, fpr)),
            ("fpr_quantile", scores_test > torch.quantile(scores_in, fpr)),
            ("percent_scale", scores_test > torch.quantile(scores_in, (1 - fpr) / 100)),
        ]
        for code, mask in candidates:
            if (flags != mask).sum() <= COUNT_SLACK + 1:
                raise Mistake(code, detail)
        raise Mistake(None, detail)

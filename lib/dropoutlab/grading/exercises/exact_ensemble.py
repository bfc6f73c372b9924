r"""Exercises ``enumerate_masks`` and ``ensemble_predictions``: the dropout ensemble, exactly.

The learner lists the :math:`2^n` keep patterns of :math:`n` units with their
probabilities :math:`q^k p^{n-k}` (``p`` is the DROP probability, ``q = 1 - p``,
``k`` units kept), then uses them to compute, for a tiny net
:math:`\sigma\bigl((m \odot \mathrm{relu}(W_1 x + b_1)) \cdot w_2 + b_2\bigr)`
with non-inverted masks, the exact mean over all masks, the weight-scaled
prediction :math:`\sigma(q\, h \cdot w_2 + b_2)` and the normalised weighted
geometric mean (NWGM) of the mask ensemble.

The grader enumerates the masks itself (:func:`dropoutlab.theory.enumerate_masks`),
in float64. The rates are drawn in [0.1, 0.4] (or [0.2, 0.35] for the net), away
from 1/2, so that keep/drop mix-ups and uniform weights change every number.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...theory import enumerate_masks as _enumerate
from ...theory import nwgm as _nwgm
from .._core import SIGMAS, Exercise, LearnerError, Mistake, register

F64 = torch.float64
N_MAX = 10
# Probabilities: a product of n <= 10 factors (or the exp of a sum of 10 logs)
# carries a relative float64 rounding error below about 25 ulp = 6e-15. 1e-9
# leaves a wide margin, yet float32 arithmetic (relative error ~1e-7) and every
# named mistake (relative errors above 1e-2) are far outside it.
RTOL_PROBS = 1e-9
# Net outputs lie in [0, 1]. A weighted sum of 2**10 terms, each rounded to a
# few ulp, is off by at most 2**10 * 2**-52 = 2.3e-13 (a loose bound). The NWGM is
# a sigmoid (slope <= 1/4) of a weighted sum of logits, here |z| < 40 (33 at most
# over 2000 seeds), so off by at most 40 * 2.3e-13 / 4 = 2.3e-12. 1e-10 keeps a
# margin, and float32 work (errors ~1e-7) or any named mistake (>1e-3) is outside it.
ATOL = 1e-10


def _bad_edge(error: LearnerError) -> bool:
    """1 / (1 - p) or 0.0 ** -1 (ZeroDivisionError), math.log(0) (ValueError): code that fails at p = 0 or 1."""
    return isinstance(error.error, ZeroDivisionError) or (
        isinstance(error.error, ValueError) and "math domain error" in str(error.error))


def _unpack(out, k: int, names: str):
    if not isinstance(out, (tuple, list)) or len(out) != k:
        got = f"a {type(out).__name__} of length {len(out)}" if isinstance(out, (tuple, list)) else type(out).__name__
        raise Mistake("wrong_type", f"return a tuple {names}, got {got}")
    return out


# ---- enumerate_masks ------------------------------------------------------------------------

MASKS = register(Exercise(
    id="enumerate_masks",
    title="Every dropout mask, with its probability",
    notebook="exact_ensemble",
    answer_name="enumerate_masks",
    mistakes={
        "missing_mask": "Fewer than 2**n masks: an off-by-one such as range(2**n - 1) or range(1, 2**n) "
                        "leaves a keep pattern out. Loop over range(2**n).",
        "repeated_masks": "Some keep pattern appears twice (and another never): the bits are extracted wrongly, "
                          "e.g. shifting by i + 1 instead of i, or the masks are drawn at random. Row k should be "
                          "k written in binary: bit i is (k >> i) & 1.",
        "not_binary": "Mask entries must be 0 or 1: k & (1 << i) is 0 or 2**i. Shift the bit down, (k >> i) & 1, "
                      "or compare with 0.",
        "not_normalised": "The probabilities do not sum to 1: a mask with k kept units has probability "
                          "q**k * p**(n - k), a factor q = 1 - p per kept unit AND a factor p per dropped unit.",
        "keep_drop_mixup": "Keep/drop mix-up: your probabilities are p**k * q**(n - k). p is the DROP probability, "
                           "so each kept unit contributes q = 1 - p and each dropped unit p.",
        "uniform_probs": "Every mask got probability 1/2**n: that is right only at p = 1/2. Use q**k * p**(n - k).",
        "probs_misaligned": "The right probabilities, in the wrong rows: probs[i] must be the probability of masks[i]. "
                            "Compute it from that row's number of kept units.",
        "nan_at_edges": "p = 0 or p = 1 gives NaN or an error (0 * log 0, or 0 ** negative): there a single mask "
                        "has probability 1. Use powers q**k * p**(n - k), where 0.0 ** 0 == 1, not logarithms.",
        "float32_precision": "The probabilities were computed in float32 (torch.tensor of a list of Python floats "
                             "is float32) and converted afterwards: they are off by ~1e-7. Build them in float64.",
    },
))


def _masks_call(answer, probe, n: int, p: float):
    out = _unpack(probe.call(answer, n, p), 2, "(masks, probs)")
    masks = probe.tensor(out[0], f"masks for n = {n}")
    probs = probe.tensor(out[1], f"probs for n = {n}")
    rows = 2**n
    if masks.dim() == 2 and masks.shape[1] == n and masks.shape[0] < rows:
        raise Mistake("missing_mask", f"for n = {n} there are {masks.shape[0]} masks, expected 2**n = {rows}")
    masks = probe.tensor(masks, f"masks for n = {n}", shape=(rows, n), dtype=F64).detach()
    probs = probe.tensor(probs, f"probs for n = {n}", shape=(rows,), dtype=F64).detach()
    return masks, probs


def _draw_n_p(probe, stream: int):
    g = probe.generator(stream)
    n = int(torch.randint(4, N_MAX + 1, (1,), generator=g))
    p = 0.1 + 0.3 * torch.rand((), generator=g, dtype=F64).item()
    return n, round(p, 4)


def _pattern(masks):
    """The keep pattern of each row (nonzero = kept), so later checks still read masks of 0 and 2**i."""
    return (masks != 0).to(F64)


def _true_probs(pattern, p: float):
    kept = pattern.sum(1)
    return (1 - p) ** kept * p ** (pattern.shape[1] - kept)


@MASKS.check("returns masks of shape (2**n, n) and probs of shape (2**n,), both float64")
def _masks_shapes(answer, probe):
    for n in (1, _draw_n_p(probe, 0)[0]):
        _masks_call(answer, probe, n, 0.3)


@MASKS.check("every mask entry is 0 or 1")
def _masks_binary(answer, probe):
    n, p = _draw_n_p(probe, 0)
    masks, _ = _masks_call(answer, probe, n, p)
    bad = ~((masks == 0) | (masks == 1))
    if bad.any():
        values = sorted({v for v in masks[bad].tolist()})[:4]
        raise Mistake("not_binary", f"for n = {n}, {int(bad.sum())} entries are neither 0 nor 1, e.g. {values}")


@MASKS.check("lists each of the 2**n keep patterns exactly once")
def _masks_distinct(answer, probe):
    n, p = _draw_n_p(probe, 0)
    masks, _ = _masks_call(answer, probe, n, p)
    distinct = torch.unique(_pattern(masks), dim=0).shape[0]
    if distinct != 2**n:
        raise Mistake("repeated_masks", f"for n = {n}, only {distinct} of the {2**n} rows are different patterns")


@MASKS.check("probabilities sum to 1")
def _masks_sum(answer, probe):
    for stream in (0, 1):
        n, p = _draw_n_p(probe, stream)
        _, probs = _masks_call(answer, probe, n, p)
        total = probs.sum().item()
        # 2**10 float64 terms in [0, 1] summed: rounding below 2**10 * 2**-52 = 2.3e-13.
        if abs(total - 1) <= 1e-12:
            continue
        detail = f"for n = {n}, p = {p} they sum to {total:.6f}"
        if math.isnan(total):
            raise Mistake(None, f"for n = {n}, p = {p} the probabilities contain NaN")
        if abs(total - 1) <= 1e-5:
            raise Mistake("float32_precision", f"for n = {n}, p = {p} they sum to 1 {total - 1:+.1e}")
        raise Mistake("not_normalised", detail)


@MASKS.check("gives each mask the probability q**k * p**(n - k), k = number of kept units")
def _masks_probs(answer, probe):
    for stream in (0, 1):
        n, p = _draw_n_p(probe, stream)
        masks, probs = _masks_call(answer, probe, n, p)
        pattern = _pattern(masks)
        expected = _true_probs(pattern, p)
        if torch.allclose(probs, expected, rtol=RTOL_PROBS, atol=0):
            continue
        worst = ((probs - expected).abs() / expected).max().item()
        detail = f"for n = {n}, p = {p}: largest relative error {worst:.2e}"
        if torch.allclose(probs, _true_probs(1 - pattern, p), rtol=RTOL_PROBS, atol=0):
            raise Mistake("keep_drop_mixup", detail)
        if torch.allclose(probs, torch.full_like(probs, 2.0**-n), rtol=RTOL_PROBS, atol=0):
            raise Mistake("uniform_probs", f"for n = {n}, p = {p} every probability is 2**-n = {2.0**-n:.3e}")
        if not abs(probs.sum().item() - 1) <= 1e-6:
            raise Mistake("not_normalised", f"{detail}; they sum to {probs.sum().item():.6f}")
        if torch.allclose(probs.sort().values, expected.sort().values, rtol=RTOL_PROBS, atol=0):
            raise Mistake("probs_misaligned", detail)
        if torch.allclose(probs, expected, rtol=1e-5, atol=0):
            raise Mistake("float32_precision", detail)
        raise Mistake(None, detail)


@MASKS.check("p = 0 and p = 1 give one mask probability 1 and the rest 0, never NaN")
def _masks_edges(answer, probe):
    n = 3
    for p in (0.0, 1.0):
        try:
            masks, probs = _masks_call(answer, probe, n, p)
        except LearnerError as e:
            if _bad_edge(e):
                raise Mistake("nan_at_edges", f"{e}") from None
            raise
        if not torch.isfinite(probs).all():
            bad = int((~torch.isfinite(probs)).sum())
            raise Mistake("nan_at_edges", f"at p = {p}, {bad} probabilities are NaN or inf")
        pattern = _pattern(masks)
        if torch.allclose(probs, _true_probs(pattern, p), rtol=0, atol=1e-12):
            continue
        only = "all kept" if p == 0 else "all dropped"
        detail = (f"at p = {p} the mask with {only} units must have probability 1 and the others 0; "
                  f"got {[round(v, 4) for v in probs.tolist()]}")
        code = "keep_drop_mixup" if torch.allclose(probs, _true_probs(1 - pattern, p), rtol=0, atol=1e-12) else None
        raise Mistake(code, detail)


# ---- ensemble_predictions -------------------------------------------------------------------

ENSEMBLE = register(Exercise(
    id="ensemble_predictions",
    title="Exact mean, weight scaling and NWGM of a dropout net",
    notebook="exact_ensemble",
    answer_name="ensemble_predictions",
    mistakes={
        "unweighted_mean": "Averaged over the masks with equal weights 1/2**n: that is right only at p = 1/2. "
                           "Weight each mask by its probability q**k * p**(n - k).",
        "mean_logit_as_mean": "exact_mean is sigmoid of the mean logit, i.e. the weight-scaled prediction. The exact "
                              "mean averages the OUTPUTS sigmoid(z_m) over the masks; the sigmoid is not linear.",
        "keep_drop_mixup": "Keep/drop mix-up: the masks were weighted as if each unit were KEPT with probability p. "
                           "p is the drop probability: a mask with k kept units has probability q**k * p**(n - k).",
        "inverted_masks": "Inverted masks (m / q) in the ensemble: this network uses plain 0/1 masks, whose test-time "
                          "counterpart is the weight-scaled sigmoid(q h.w2 + b2). Do not divide the masks by q.",
        "no_q_scaling": "weight_scaled forgot q: sigmoid(h.w2 + b2) is the full network. With non-inverted masks the "
                        "test-time network multiplies the hidden units by their keep probability q = 1 - p.",
        "scale_by_p": "weight_scaled multiplies by p, the drop probability. "
                      "Multiply by the keep probability q = 1 - p.",
        "bias_scaled": "weight_scaled also scaled the output bias: only the dropped hidden units are multiplied by q; "
                       "b2 is never dropped. Use sigmoid(q * (h @ w2) + b2).",
        "nwgm_not_normalised": "nwgm is the weighted geometric mean G = prod sigmoid(z_m)**P(m) alone. Normalise it: "
                               "G / (G + G') with G' = prod (1 - sigmoid(z_m))**P(m).",
        "nan_at_edges": "p = 0 or p = 1 gives NaN or an error (e.g. 0 * log 0, or 1 / q at q = 0). At p = 0 all three "
                        "predictions are the full net's output, at p = 1 they are sigmoid(b2).",
        "float32_precision": "The predictions are off by ~1e-7: part of the computation ran in float32. Keep every "
                             "tensor in float64 (the inputs' dtype); torch.tensor of Python lists gives float32.",
    },
))

D_IN, N_INPUTS = 4, 8
MC_DRAWS = 50_000


def _net(probe, stream: int, *, n: int | None = None):
    """A tiny random net with |b2| >= 0.5 (so bias mistakes show) and a rate in [0.2, 0.35]."""
    g = probe.generator(stream)
    if n is None:
        n = int(torch.randint(6, N_MAX + 1, (1,), generator=g))
    W1 = torch.randn(n, D_IN, generator=g, dtype=F64) / math.sqrt(D_IN)
    b1 = 0.5 * torch.randn(n, generator=g, dtype=F64)
    w2 = 4.0 * torch.randn(n, generator=g, dtype=F64) / math.sqrt(n)
    sign = 1.0 if torch.rand((), generator=g).item() < 0.5 else -1.0
    b2 = torch.tensor(sign * (0.5 + 0.5 * torch.rand((), generator=g).item()), dtype=F64)
    x = torch.randn(N_INPUTS, D_IN, generator=g, dtype=F64)
    p = round(0.2 + 0.15 * torch.rand((), generator=g).item(), 4)
    return W1, b1, w2, b2, x, p


def _ens_call(answer, probe, net, p=None):
    W1, b1, w2, b2, x, p0 = net
    p = p0 if p is None else p
    out = probe.call(answer, W1.clone(), b1.clone(), w2.clone(), b2.clone(), x.clone(), p)
    out = _unpack(out, 3, "(exact_mean, weight_scaled, nwgm)")
    names = ("exact_mean", "weight_scaled", "nwgm")
    return [probe.tensor(v, name, shape=(x.shape[0],), dtype=F64).detach() for v, name in zip(out, names)]


def _truth(net, p=None):
    """Every quantity the checks compare with, right and wrong, by exact enumeration in float64."""
    W1, b1, w2, b2, x, p0 = net
    p = p0 if p is None else p
    q = 1 - p
    h = torch.relu(x @ W1.T + b1)
    masks, probs = _enumerate(W1.shape[0], p)
    hw = h * w2
    z = masks @ hw.T + b2  # (2**n, N): the logit of every thinned net on every input
    s = torch.sigmoid(z)
    full = h @ w2
    t = {
        "exact": probs @ s,
        "second": probs @ s.square(),
        "scaled": torch.sigmoid(q * full + b2),
        "nwgm": _nwgm(logits=z, weights=probs),
        "unweighted_mean": s.mean(0),
        "unweighted_nwgm": torch.sigmoid(z.mean(0)),
        "mixup_mean": _enumerate(W1.shape[0], q)[1] @ s,
        "mixup_scaled": torch.sigmoid(p * full + b2),
        "full": torch.sigmoid(full + b2),
        "bias_scaled": torch.sigmoid(q * (full + b2)),
        "geometric_only": torch.exp(probs @ F.logsigmoid(z)),
    }
    if q > 0:
        t["inverted_mean"] = probs @ torch.sigmoid(masks @ (hw / q).T + b2)
    return t


def _close(value, target, atol=ATOL):
    return target is not None and bool(torch.allclose(value, target, rtol=0, atol=atol))


def _diagnose(value, expected, candidates, what, p):
    """Pass if ``value`` is ``expected``; else raise the first matching candidate's mistake."""
    if _close(value, expected):
        return
    if not torch.isfinite(value).all():
        raise Mistake("nan_at_edges" if p in (0.0, 1.0) else None,
                      f"{what} has {int((~torch.isfinite(value)).sum())} NaN or inf entries at p = {p}")
    detail = f"{what} is off by up to {(value - expected).abs().max().item():.2e} at p = {p}"
    for code, target in candidates:
        if _close(value, target):
            raise Mistake(code, detail)
    if _close(value, expected, atol=1e-5):
        raise Mistake("float32_precision", detail)
    raise Mistake(None, detail)


def _exact_candidates(t):
    return [("mean_logit_as_mean", t["scaled"]), ("unweighted_mean", t["unweighted_mean"]),
            ("keep_drop_mixup", t["mixup_mean"]), ("inverted_masks", t.get("inverted_mean"))]


def _check_exact(value, t, p):
    _diagnose(value, t["exact"], _exact_candidates(t), "exact_mean", p)


def _check_scaled(value, t, p):
    _diagnose(value, t["scaled"], [("no_q_scaling", t["full"]), ("scale_by_p", t["mixup_scaled"]),
                                   ("bias_scaled", t["bias_scaled"])], "weight_scaled", p)


def _check_nwgm(value, t, p):
    candidates = [("nwgm_not_normalised", t["geometric_only"]), ("unweighted_mean", t["unweighted_nwgm"]),
                  ("keep_drop_mixup", t["mixup_scaled"]), ("inverted_masks", t["full"])]
    _diagnose(value, t["nwgm"], candidates, "nwgm", p)


@ENSEMBLE.check("returns (exact_mean, weight_scaled, nwgm), three float64 tensors of shape (N,)")
def _ens_shapes(answer, probe):
    _ens_call(answer, probe, _net(probe, 0))


@ENSEMBLE.check("exact_mean is the probability-weighted mean of the output over all 2**n masks")
def _ens_exact(answer, probe):
    net = _net(probe, 0)
    _check_exact(_ens_call(answer, probe, net)[0], _truth(net), net[-1])


@ENSEMBLE.check("exact_mean agrees with a Monte Carlo average over random masks")
def _ens_monte_carlo(answer, probe):
    net = _net(probe, 3, n=N_MAX)
    W1, b1, w2, b2, x, p = net
    exact = _ens_call(answer, probe, net)[0]
    h = torch.relu(x @ W1.T + b1)
    masks = torch.bernoulli(torch.full((MC_DRAWS, N_MAX), 1 - p, dtype=F64), generator=probe.generator(4))
    mc = torch.sigmoid(masks @ (h * w2).T + b2).mean(0)
    t = _truth(net)
    # The standard error of the mean of MC_DRAWS outputs, from their exact variance
    # E[s^2] - E[s]^2 over the masks: sigma = sqrt(Var[s] / MC_DRAWS). Each of the
    # N_INPUTS = 8 inputs is allowed SIGMAS sigma (plus ATOL for rounding, which is all
    # there is where every mask gives the same output), so a correct answer fails this
    # check with probability below 8 * 2.0e-9 (normal approximation of the mean).
    se = (t["second"] - t["exact"].square()).clamp_min(0).div(MC_DRAWS).sqrt()
    gap = (exact - mc).abs()
    if bool((gap <= SIGMAS * se + ATOL).all()):
        return
    in_se = torch.nan_to_num(gap / (se + ATOL), nan=math.inf)
    i = int(in_se.argmax())
    detail = (f"exact_mean[{i}] = {exact[i].item():.5f}, but {MC_DRAWS:,} random masks give "
              f"{mc[i].item():.5f} ± {se[i].item():.5f}, {in_se[i].item():.1f} standard errors away")
    for code, target in _exact_candidates(t):
        if _close(exact, target):
            raise Mistake(code, detail)
    raise Mistake(None, detail)


@ENSEMBLE.check("weight_scaled is sigmoid(q h.w2 + b2)")
def _ens_scaled(answer, probe):
    net = _net(probe, 0)
    _check_scaled(_ens_call(answer, probe, net)[1], _truth(net), net[-1])


@ENSEMBLE.check("nwgm is the normalised weighted geometric mean of the mask outputs")
def _ens_nwgm(answer, probe):
    net = _net(probe, 0)
    _check_nwgm(_ens_call(answer, probe, net)[2], _truth(net), net[-1])


@ENSEMBLE.check("p = 0 gives the full net, p = 1 gives sigmoid(b2), never NaN")
def _ens_edges(answer, probe):
    net = _net(probe, 5, n=6)
    for p in (0.0, 1.0):
        try:
            exact, scaled, geometric = _ens_call(answer, probe, net, p)
        except LearnerError as e:
            if _bad_edge(e):
                raise Mistake("nan_at_edges", f"{e}") from None
            raise
        t = _truth(net, p)
        for value, check in ((exact, _check_exact), (scaled, _check_scaled), (geometric, _check_nwgm)):
            check(value, t, p)

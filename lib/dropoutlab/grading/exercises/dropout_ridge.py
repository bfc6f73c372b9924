r"""Exercises ``dropout_ridge_solution`` and ``dropout_sgd``: dropout as adaptive ridge.

``dropout_ridge_solution(X, y, p)`` is the closed form of
:func:`dropoutlab.theory.dropout_ridge_solution`. Its checks use float64
designs of 50 rows and 6 correlated columns (AR(1) correlation 0.7) with
scales from 0.2 to 10, and drop rates 0.3 and 0.6. Then every common wrong
penalty (none, (1-p)/p, p, p(1-p), the identity, the whole Gram matrix, the
mean instead of the sum of squares, the non-inverted solution) lands at least
4e-3 of the norm of the answer away from it and from each other (measured on
2000 designs), over a million times the float tolerance.

``dropout_sgd(X, y, p, steps, lr, generator)`` is gradient descent on the
dropout loss with a fresh mask per step and Polyak averaging. Its checks:

- at p = 0 nothing is random, and the answer must equal plain gradient descent
  averaged over the second half, to rounding (this pins the loss, the step
  and the averaging window);
- one step on a design of ones with targets y_i = 2^-(i+1) returns
  X~^T y, whose binary digits *are* the mask: the checks read it and test
  its drop rate, its scale and its independence;
- two steps with the same generator tell a reused mask from a fresh one;
- the statistical check runs up to 15 independent chains and asks that a
  majority land within tau of the closed form. tau comes from the exact
  mean squared distance of a correct answer (see :func:`_mean_sq_distance`),
  through Markov's inequality, so it holds for any correct implementation
  whatever the distribution of its average.
"""

from __future__ import annotations

import math

import torch

from .._core import FALSE_FAILURE, Exercise, LearnerError, Mistake, register
from ...theory import dropout_ridge_solution as _reference, enumerate_masks

DTYPE = torch.float64
EPS = torch.finfo(DTYPE).eps

# ---- exercise 1: the closed form ---------------------------------------------------------

RIDGE_N, RIDGE_D = 50, 6
RIDGE_SCALES = (0.2, 1.0, 5.0, 0.5, 2.0, 10.0)  # clearly different scales, so diag(X^T X) is not a multiple of I
RIDGE_RHO = 0.7  # AR(1) correlation between neighbouring columns, so X^T X is far from diagonal
RIDGE_PS = (0.3, 0.6)  # p/q, q/p, p, p(1-p) all differ at both; p = 0.5 would make p/q = q/p
# A named wrong answer is recognised when the answer is this close (relative) to it;
# the candidates are >= 4e-3 apart, so the match is unambiguous.
NAME_RTOL = 1e-6

RIDGE = register(Exercise(
    id="dropout_ridge_solution",
    title="Dropout as adaptive ridge: the closed form",
    notebook="dropout_ridge",
    answer_name="dropout_ridge_solution",
    mistakes={
        "ols": "Ordinary least squares: your weights ignore p. Averaged over the masks, dropout adds the penalty "
               "p/(1-p) sum_j w_j^2 sum_i X_ij^2, so solve (X^T X + p/(1-p) diag(X^T X)) w = X^T y.",
        "inverted_ratio": "The ratio is upside down: the penalty strength is p/(1-p), the variance of the inverted "
                          "mask M/q, not (1-p)/p.",
        "lambda_p": "Penalty strength p instead of p/(1-p): you forgot to divide by q = 1 - p. The inverted mask "
                    "M/q has variance p/q.",
        "lambda_pq": "Penalty strength p(1-p): that is the variance of the mask M itself. The inputs are M*X/q, "
                     "whose noise has variance p(1-p)/q^2 = p/(1-p).",
        "isotropic_ridge": "Plain ridge: you added p/(1-p) times the identity. Dropout charges each weight by the "
                           "energy of its feature: add p/(1-p) diag(X^T X), e.g. torch.diag(gram.diagonal()).",
        "scaled_gram": "You multiplied the whole X^T X by 1 + p/(1-p), which only shrinks least squares by the factor "
                       "1 - p. Only the DIAGONAL of X^T X gets the extra p/(1-p).",
        "non_inverted": "This is the solution for dropout WITHOUT the 1/q rescaling (inputs M*X), which is the "
                        "inverted one divided by q. The exercise uses inverted dropout, inputs M*X/q.",
        "mean_energy": "Your penalty uses the mean of X_ij^2 over the rows (or a variance), not the sum: the "
                       "penalty is p/(1-p) diag(X^T X) with diag(X^T X)_j = sum_i X_ij^2.",
        "float32": "Right formula, computed in float32: the result has only float32's 7 digits. Keep X's dtype "
                   "(avoid .float(), torch.tensor(...) with the default dtype, or NumPy float32).",
    },
))


def _ridge_design(probe, stream: int, n: int = RIDGE_N) -> tuple[torch.Tensor, torch.Tensor]:
    """X (n, 6): AR(1)-correlated columns with the scales RIDGE_SCALES; y = X beta + N(0, 1) noise."""
    g = probe.generator(stream)
    lag = torch.arange(RIDGE_D)
    corr = RIDGE_RHO ** (lag[:, None] - lag[None, :]).abs().to(DTYPE)
    scales = torch.tensor(RIDGE_SCALES, dtype=DTYPE)
    X = torch.randn(n, RIDGE_D, generator=g, dtype=DTYPE) @ torch.linalg.cholesky(corr).T * scales
    beta = torch.randn(RIDGE_D, generator=g, dtype=DTYPE) / scales  # every feature matters about as much
    return X, X @ beta + torch.randn(n, generator=g, dtype=DTYPE)


def _penalised(X, y, lam: float, penalty: str) -> torch.Tensor:
    gram = X.T @ X
    extra = {"diag": torch.diag(gram.diagonal()), "eye": torch.eye(X.shape[1], dtype=X.dtype), "gram": gram}[penalty]
    return torch.linalg.solve(gram + lam * extra, X.T @ y)


def _ridge_candidates(X, y, p) -> dict[str, torch.Tensor]:
    """The known wrong answers at drop probability p."""
    q, n = 1.0 - p, X.shape[0]
    return {
        "ols": _penalised(X, y, 0.0, "diag"),
        "inverted_ratio": _penalised(X, y, q / p, "diag"),
        "lambda_p": _penalised(X, y, p, "diag"),
        "lambda_pq": _penalised(X, y, p * q, "diag"),
        "isotropic_ridge": _penalised(X, y, p / q, "eye"),
        "scaled_gram": _penalised(X, y, p / q, "gram"),
        "non_inverted": _reference(X, y, p) / q,
        "mean_energy": _penalised(X, y, p / q / n, "diag"),
    }


def _float_tolerance(X, p) -> float:
    """Relative tolerance n d kappa eps for the solution of (X^T X + p/q diag(X^T X)) w = X^T y.

    A backward-stable solver (LU, Cholesky, QR of the augmented design) has a
    relative forward error of at most a modest multiple of kappa_2(A) eps, and
    forming X^T X in another order perturbs A by at most n eps |X|^T |X|; the
    factor n d covers both constants. On these designs kappa <= 1e4, so the
    tolerance is about 1e-9: float64 rounding passes, a float32 solve (error
    near kappa * 6e-8) or any wrong penalty (>= 4e-3 away) does not.
    """
    gram = X.T @ X
    system = gram + torch.diag(gram.diagonal()) * (p / (1.0 - p))
    return X.shape[0] * X.shape[1] * torch.linalg.cond(system).item() * EPS


def _relative_error(w, target) -> float:
    return ((w - target).norm() / target.norm()).item()


def _ridge_answer(answer, probe, X, y, p) -> torch.Tensor:
    out = probe.call(answer, X.clone(), y.clone(), p)
    w = probe.tensor(out, "the weights", shape=(X.shape[1],), dtype=X.dtype).detach()
    if not torch.isfinite(w).all():
        raise Mistake(None, f"at p = {p} the weights contain NaN or inf")
    return w


@RIDGE.check("returns a tensor of shape (d,) in X's dtype")
def _ridge_returns(answer, probe):
    X, y = _ridge_design(probe, 0)
    _ridge_answer(answer, probe, X, y, RIDGE_PS[0])


@RIDGE.check("equals (X^T X + p/(1-p) diag(X^T X))^-1 X^T y at p = 0.3 and p = 0.6", points=2.0)
def _ridge_closed_form(answer, probe):
    X, y = _ridge_design(probe, 0)
    for p in RIDGE_PS:
        w = _ridge_answer(answer, probe, X, y, p)
        target = _reference(X, y, p)
        error, tol = _relative_error(w, target), _float_tolerance(X, p)
        if error <= tol:
            continue
        detail = f"at p = {p}, relative error {error:.2e} against the closed form, allowed {tol:.1e}"
        for code, wrong in _ridge_candidates(X, y, p).items():
            if _relative_error(w, wrong) <= NAME_RTOL:
                raise Mistake(code, detail)
        if error < 1e-2 and torch.equal(w, w.float().to(DTYPE)):  # every entry a float32 number
            raise Mistake("float32", detail)
        raise Mistake(None, detail)


@RIDGE.check("gives ordinary least squares at p = 0")
def _ridge_p0(answer, probe):
    X, y = _ridge_design(probe, 1)
    try:
        out = probe.call(answer, X.clone(), y.clone(), 0.0)
    except LearnerError as e:
        if isinstance(e.error, ZeroDivisionError):
            raise Mistake("inverted_ratio", f"at p = 0: {e}") from None
        raise
    w = probe.tensor(out, "the weights", shape=(RIDGE_D,), dtype=DTYPE).detach()
    if not torch.isfinite(w).all():
        raise Mistake("inverted_ratio", "at p = 0 the weights contain NaN or inf (q/p = 1/0)")
    target = torch.linalg.lstsq(X, y[:, None]).solution.ravel()
    error, tol = _relative_error(w, target), _float_tolerance(X, 0.0)
    if error > tol:
        raise Mistake(None, f"at p = 0, relative error {error:.2e} against least squares, allowed {tol:.1e}")


@RIDGE.check("is defined when X has fewer rows than columns (p = 0.3)")
def _ridge_wide(answer, probe):
    # n = 4 < d = 6: X^T X is singular, but p/q diag(X^T X) > 0 makes the system positive definite.
    X, y = _ridge_design(probe, 2, n=4)
    p = RIDGE_PS[0]
    w = _ridge_answer(answer, probe, X, y, p)
    target = _reference(X, y, p)
    error, tol = _relative_error(w, target), _float_tolerance(X, p)
    if error > tol:
        raise Mistake(None, f"with 4 rows and 6 columns at p = {p}, relative error {error:.2e}, allowed {tol:.1e}")


# ---- exercise 2: dropout SGD -------------------------------------------------------------

SGD_N, SGD_D = 200, 4
SGD_SCALES = (0.7, 1.0, 1.4, 1.0)
SGD_RHO = 0.5
SGD_P = 0.3
SGD_LR, SGD_STEPS = 0.1, 300  # lr * lambda_max(Hessian) <= 0.92 (max over 300 designs): stable and fast
RUNS = 15  # independent chains in the statistical check; a majority (8) must land within tau
MAJORITY = RUNS // 2 + 1
# Markov: P(D > tau) <= E[D^2] / tau^2 =: r for each chain, independently. The check fails only
# if at least MAJORITY of RUNS chains miss: probability <= C(RUNS, MAJORITY) r^MAJORITY. Setting it to
# FALSE_FAILURE (2e-9, the six-sigma rate of the course) gives tau = TAU_FACTOR sqrt(E[D^2]) = 6.05 sqrt(E[D^2]).
TAU_FACTOR = (math.comb(RUNS, MAJORITY) / FALSE_FAILURE) ** (1.0 / (2 * MAJORITY))

# The p = 0 check: a small design and few steps, so that every iterate differs from the next.
GD_N, GD_D, GD_STEPS, GD_LR = 12, 3, 9, 0.1
# The mask-reading checks: X = ones (n, d), y_i = 2^-(i+1), lr = n/2, so one step returns X~^T y.
READ_N, READ_D = 40, 20

SGD = register(Exercise(
    id="dropout_sgd",
    title="Dropout as adaptive ridge: SGD with fresh masks",
    notebook="dropout_ridge",
    answer_name="dropout_sgd",
    mistakes={
        "gradient_scale": "Your step is not lr times the gradient of the MEAN squared error "
                          "(1/n) sum_i (y_i - x~_i^T w)^2, whose gradient is -(2/n) X~^T (y - X~ w): check the "
                          "factor 2 and the division by n (a sum instead of a mean makes the step n times too big).",
        "last_iterate": "You returned the last iterate. Return the average of the iterates of the second half, "
                        "w_t for t = steps//2 + 1, ..., steps: it has a much smaller variance.",
        "average_window": "You averaged the wrong iterates. Average w_t for t = steps//2 + 1, ..., steps, "
                          "the iterates AFTER each of the last steps - steps//2 updates (not w_0, not the first half).",
        "mask_not_applied": "The mask is drawn but never used: the inputs stay X (or X/q), so the loop is plain "
                            "gradient descent and lands on least squares (or on (1 - p) times it). Train on M*X/q.",
        "no_rescale": "The kept inputs are not divided by q = 1 - p: training on M*X converges to the "
                      "non-inverted solution, the dropout-ridge weights divided by q. Use M*X/q.",
        "keep_drop_mixup": "Your mask keeps an element with probability p. p is the DROP probability: keep "
                           "with probability q = 1 - p, e.g. torch.rand(X.shape, ...) >= p.",
        "shared_across_rows": "Every row (example) gets the same mask. Draw the mask with the shape of X, "
                              "(n, d): each element its own coin.",
        "whole_rows": "Whole rows are kept or dropped together (a mask of shape (n, 1)). Draw the mask with "
                      "the shape of X, (n, d): each element its own coin.",
        "one_mask_reused": "The same mask is used at every step: then the loop minimises the loss of ONE "
                           "noisy copy of X. Draw a fresh mask inside the loop, at every step.",
        "ignore_generator": "Two runs with identically seeded generators gave different results: draw the "
                            "masks from `generator` (torch.rand(X.shape, generator=generator, dtype=X.dtype)).",
        "own_generator": "Generators with different seeds gave the same result: you draw from a generator of "
                         "your own (or re-seed one). Use the `generator` argument.",
    },
))


def _sgd_design(probe, stream: int) -> tuple[torch.Tensor, torch.Tensor]:
    """X (200, 4): AR(1)-correlated columns with mildly different scales; y = X beta + N(0, 0.25) noise."""
    g = probe.generator(stream)
    lag = torch.arange(SGD_D)
    corr = SGD_RHO ** (lag[:, None] - lag[None, :]).abs().to(DTYPE)
    scales = torch.tensor(SGD_SCALES, dtype=DTYPE)
    X = torch.randn(SGD_N, SGD_D, generator=g, dtype=DTYPE) @ torch.linalg.cholesky(corr).T * scales
    beta = torch.randn(SGD_D, generator=g, dtype=DTYPE) / scales
    return X, X @ beta + 0.5 * torch.randn(SGD_N, generator=g, dtype=DTYPE)


def _small_design(probe, stream: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = probe.generator(stream)
    X = torch.randn(GD_N, GD_D, generator=g, dtype=DTYPE) * torch.tensor([0.7, 1.0, 1.4], dtype=DTYPE)
    return X, X @ torch.randn(GD_D, generator=g, dtype=DTYPE) + torch.randn(GD_N, generator=g, dtype=DTYPE)


def _reading_design() -> tuple[torch.Tensor, torch.Tensor]:
    """X = ones (40, 20) and y_i = 2^-(i+1): then X~^T y holds mask column j in the bits of entry j."""
    y = torch.pow(2.0, -torch.arange(1, READ_N + 1, dtype=DTYPE))
    return torch.ones(READ_N, READ_D, dtype=DTYPE), y


def _sgd_run(answer, probe, X, y, p, steps, lr, stream) -> torch.Tensor:
    out = probe.call(answer, X.clone(), y.clone(), p, steps, lr, probe.generator(stream))
    w = probe.tensor(out, "the averaged weights", shape=(X.shape[1],), dtype=X.dtype).detach()
    if not torch.isfinite(w).all():
        raise Mistake(None, f"with p = {p}, steps = {steps}, lr = {lr} the weights contain NaN or inf "
                            "(is the step lr times the gradient of the mean squared error?)")
    return w


def _gd_iterates(X, y, steps, lr, scale=1.0) -> torch.Tensor:
    """Plain gradient descent on (1/n)||y - Xw||^2 from 0 (step multiplied by ``scale``): w_0, ..., w_steps."""
    w, out = torch.zeros(X.shape[1], dtype=X.dtype), []
    out.append(w)
    for _ in range(steps):
        w = w - scale * lr * (2.0 / X.shape[0]) * X.T @ (X @ w - y)
        out.append(w)
    return torch.stack(out)


def _gd_candidates(X, y, steps, lr) -> list[tuple[str | None, str, torch.Tensor]]:
    """(code, description, value): the right average first, then the known wrong ones."""
    half, n = steps // 2, X.shape[0]
    found = []
    for scale, scale_name in ((1.0, None), (0.5, "half"), (float(n), "n"), (n / 2.0, "n/2")):
        it = _gd_iterates(X, y, steps, lr, scale)
        windows = [("right", it[half + 1:].mean(0)), ("last", it[-1]), ("all w_1..w_T", it[1:].mean(0)),
                   ("all w_0..w_T", it.mean(0)), ("w_(T//2)..w_T", it[half:].mean(0))]
        for window, value in windows:
            if scale_name is not None:
                code = "gradient_scale"
                what = f"a step {scale_name} times lr times the gradient of the mean squared error"
            elif window == "right":
                code, what = None, "the right average"
            else:
                code = "last_iterate" if window == "last" else "average_window"
                what = f"the average of {window}" if window != "last" else "the last iterate"
            found.append((code, what, value))
    return found


@SGD.check("returns a tensor of shape (d,) in X's dtype")
def _sgd_returns(answer, probe):
    X, y = _small_design(probe, 0)
    _sgd_run(answer, probe, X, y, SGD_P, 4, GD_LR, stream=1)


@SGD.check("at p = 0, equals gradient descent from w = 0 averaged over steps T//2+1..T")
def _sgd_deterministic(answer, probe):
    X, y = _small_design(probe, 0)
    candidates = _gd_candidates(X, y, GD_STEPS, GD_LR)
    target = candidates[0][2]
    # At p = 0 nothing is random, so the answer must equal the average to float rounding (9 steps, each
    # contracting, each adding a few ulps: 1e-10 relative is 1e5 times that). A `torch.rand(...) > p` in float32
    # drops an element at p = 0 when a uniform is exactly 0 (probability 2^-24 each, 324 of them): three tries
    # with fresh generators make a false failure < (2e-5)^3.
    for attempt in range(3):
        w = _sgd_run(answer, probe, X, y, 0.0, GD_STEPS, GD_LR, stream=10 + attempt)
        if _relative_error(w, target) <= 1e-10:
            return
    detail = f"at p = 0, steps = {GD_STEPS}, lr = {GD_LR}: relative error {_relative_error(w, target):.2e}"
    for code, what, value in candidates[1:]:
        if torch.isfinite(value).all() and _relative_error(w, value) <= 1e-8:
            raise Mistake(code, f"{detail}; it equals {what}")
    raise Mistake(None, f"{detail} against plain gradient descent from w = 0 averaged over w_t, "
                        f"t = {GD_STEPS // 2 + 1}..{GD_STEPS}")


def _read_mask(w, q) -> tuple[torch.Tensor | None, float, bool]:
    """Read the mask from one step on the reading design: (mask (n, d) or None, step factor, rescaled?).

    A right step returns w_1 = X~^T y with X~ = M X / q, so w_1j q 2^n is the integer whose binary digits
    are column j of M (row i at digit n - 1 - i). Rounding: 40 terms of float64, |w| <= 1.5, so the
    integer is off by at most ~40 * 2^-53 * 1.5 * 2^40 < 1e-2; we require 0.05.
    """
    shifts = torch.arange(READ_N - 1, -1, -1)
    for rescaled in (True, False):
        for factor in (1.0, 0.5, float(READ_N), READ_N / 2.0):
            k = w / factor * (q if rescaled else 1.0) * 2.0**READ_N
            r = k.round()
            if (k - r).abs().max().item() < 0.05 and r.min().item() >= 0 and r.max().item() < 2**READ_N:
                return ((r.to(torch.int64)[None, :] >> shifts[:, None]) & 1).to(DTYPE), factor, rescaled
    return None, 1.0, True


def _first_step_mask(answer, probe, stream) -> tuple[torch.Tensor, torch.Tensor, float]:
    X, y = _reading_design()
    w1 = _sgd_run(answer, probe, X, y, SGD_P, 1, READ_N / 2.0, stream)
    mask, factor, rescaled = _read_mask(w1, 1.0 - SGD_P)
    if mask is None:
        raise Mistake(None, "one step from w = 0 should return lr (2/n) X~^T y with X~ = M*X/q; on X = ones and "
                            "y_i = 2^-(i+1) the result is not of that form")
    if not rescaled:
        if bool((mask == 1).all()):
            raise Mistake("mask_not_applied", f"at p = {SGD_P} the first step used X itself: nothing dropped")
        raise Mistake("no_rescale", f"at p = {SGD_P} the kept inputs of the first step were X, not X/q")
    return mask, w1, factor


def _check_something_dropped(answer, probe, mask) -> None:
    """Raise ``mask_not_applied`` if two first steps (two seeds) dropped nothing.

    A correct mask keeps all 800 elements with probability q^800; twice: q^1600. A mask shared across
    rows keeps all twice with probability q^40 = 6e-7.
    """
    if bool((mask == 1).all()) and bool((_first_step_mask(answer, probe, stream=22)[0] == 1).all()):
        raise Mistake("mask_not_applied", f"at p = {SGD_P} the first step kept every element (inputs X/q), "
                                          "with two seeds")


@SGD.check("draws an element-wise mask, keeping each input with probability 1 - p and scaling it by 1/(1 - p)")
def _sgd_mask(answer, probe):
    mask, _, _ = _first_step_mask(answer, probe, stream=20)
    kept = mask.mean().item()
    q = 1.0 - SGD_P
    tol = 6.0 * math.sqrt(SGD_P * q / mask.numel())  # six sigma of a Binomial(800, q) fraction
    _check_something_dropped(answer, probe, mask)
    if mask.shape[0] > 1 and bool((mask == mask[:1]).all()):
        raise Mistake("shared_across_rows", f"all {READ_N} rows of the first step's mask are equal")
    if bool((mask == mask[:, :1]).all()):
        raise Mistake("whole_rows", f"each of the {READ_N} rows of the first step's mask is all kept or all dropped")
    if abs(kept - q) > tol:
        code = "keep_drop_mixup" if abs(kept - SGD_P) <= tol else None
        raise Mistake(code, f"at p = {SGD_P} the first step kept {kept:.3f} of the {mask.numel()} inputs, "
                            f"expected {q:.2f} +- {tol:.3f}")


@SGD.check("draws a fresh mask at every step")
def _sgd_fresh(answer, probe):
    mask, w1, factor = _first_step_mask(answer, probe, stream=21)
    _check_something_dropped(answer, probe, mask)  # else a fresh mask cannot be told from a reused one
    X, y = _reading_design()
    w2 = _sgd_run(answer, probe, X, y, SGD_P, 2, READ_N / 2.0, stream=21)  # same seed: same first mask
    # With lr = n/2 a step is w <- w + factor X~^T (y - X~ w). If the second step reuses the first mask:
    Xt = mask * X / (1.0 - SGD_P)
    reused = w1 + factor * Xt.T @ (y - Xt @ w1)
    if _relative_error(w2, reused) <= 1e-9:
        raise Mistake("one_mask_reused", "the second step used the first step's mask again")


def _distances(w, targets) -> list[float]:
    return [(w - t).norm().item() for t in targets]


@SGD.check(f"converges to the dropout-ridge solution, not to least squares (p = {SGD_P}, "
           f"{SGD_STEPS} steps, lr = {SGD_LR})", points=2.0)
def _sgd_converges(answer, probe):
    X, y = _sgd_design(probe, 30)
    q = 1.0 - SGD_P
    w_star = _reference(X, y, SGD_P)
    tau = TAU_FACTOR * math.sqrt(_mean_sq_distance(X, y, SGD_P, SGD_STEPS, SGD_LR))
    named = {  # where the known wrong answers converge
        "mask_not_applied": _reference(X, y, 0.0),
        "no_rescale": w_star / q,
        "keep_drop_mixup": _reference(X, y, q) * (q / SGD_P),  # kept with probability p, scaled by 1/q
    }
    inside, outside, results = 0, 0, []
    # Sequential, but the verdict is the 15-chain majority: stop when either side has 8.
    for run in range(RUNS):
        w = _sgd_run(answer, probe, X, y, SGD_P, SGD_STEPS, SGD_LR, stream=100 + run)
        results.append(w)
        if (w - w_star).norm().item() <= tau:
            inside += 1
        else:
            outside += 1
        if inside == MAJORITY or outside == MAJORITY:
            break
    if inside == MAJORITY:
        return
    scale = w_star.norm().item()
    median = sorted(_distances(w, [w_star])[0] for w in results)[len(results) // 2]
    detail = (f"{outside} of {len(results)} runs ended farther than tau = {tau / scale:.3f} ||w*|| from the "
              f"dropout-ridge solution w*; median distance {median / scale:.3f} ||w*||")
    for code, value in named.items():
        to_value = sorted(_distances(w, [value])[0] for w in results)[len(results) // 2]
        if to_value <= 0.25 * (value - w_star).norm().item():
            raise Mistake(code, f"{detail}, but {to_value / scale:.3f} ||w*|| from where that mistake converges")
    # Rows dropped whole (E[X~^T X~] = X^T X / q) and X/q without a mask both converge to q w_OLS.
    q_ols = q * _reference(X, y, 0.0)
    to_q_ols = sorted(_distances(w, [q_ols])[0] for w in results)[len(results) // 2]
    if to_q_ols <= 0.25 * (q_ols - w_star).norm().item():
        detail += (f"; the runs end {to_q_ols / scale:.3f} ||w*|| from (1 - p) w_OLS, where SGD lands when it "
                   "trains on X/q without a mask, or drops whole rows")
    raise Mistake(None, detail)


@SGD.check("draws its masks from the generator it is given")
def _sgd_generator(answer, probe):
    X, y = _small_design(probe, 0)
    a = _sgd_run(answer, probe, X, y, SGD_P, 6, GD_LR, stream=40)
    b = _sgd_run(answer, probe, X, y, SGD_P, 6, GD_LR, stream=40)
    if not torch.equal(a, b):
        raise Mistake("ignore_generator", "two calls with identically seeded generators differ")
    c = _sgd_run(answer, probe, X, y, SGD_P, 6, GD_LR, stream=41)
    if torch.equal(a, c):
        plain = [_gd_iterates(inputs, y, 6, GD_LR)[4:].mean(0) for inputs in (X, X / (1.0 - SGD_P))]
        if min(_relative_error(a, value) for value in plain) <= 1e-10:
            raise Mistake("mask_not_applied", f"at p = {SGD_P} the result is plain gradient descent, for any seed")
        raise Mistake("own_generator", "generators with different seeds gave the same result")
    probe.tensor(probe.call(answer, X.clone(), y.clone(), SGD_P, 6, GD_LR, None), "the result with generator=None")


def _mean_sq_distance(X, y, p, steps, lr) -> float:
    r"""Exact E||w_bar - w*||^2 for a correct answer: its Polyak average of dropout-SGD iterates.

    With c = 2 lr / n and e_t = w_t - w*, one step is the random affine map
    e_{t+1} = (I - c X~^T X~) e_t + c X~^T (y - X~ w*), independent of the past. In homogeneous
    coordinates z = (e, 1) it is z_{t+1} = (I - c C) z_t with C = sum_i u_i v_i^T, u_i = (x~_i, 0),
    v_i = (x~_i, -(y_i - x~_i^T w*)), one independent term per row. Then

    - S_t = E[z_t z_t^T] follows vec S_{t+1} = E[B (x) B] vec S_t, B = I - c C, where E[C (x) C] needs
      E[C_i (x) C_i]: the 2^d masks of a row are enumerated exactly (enumerate_masks);
    - E[z_t z_s^T] = Bbar^(t-s) S_s for t > s, with Bbar = E[B], because later masks are independent.

    Summing over the averaging window gives E[z_bar z_bar^T], whose top-left block's trace is
    E||w_bar - w*||^2 (bias and variance together). It matches a Monte Carlo estimate over thousands of
    chains (see the tests). Cost: ``steps`` products of (d+1)^2 x (d+1)^2 matrices.
    """
    n, d = X.shape
    q, c = 1.0 - p, 2.0 * lr / n
    w_star = _reference(X, y, p)
    masks, prob = enumerate_masks(d, p, dtype=X.dtype)  # (2^d, d), (2^d,)
    Xt = masks[None] * X[:, None, :] / q  # (n, 2^d, d): every masked version of every row
    residual = y[:, None] - Xt @ w_star  # (n, 2^d)
    u = torch.cat([Xt, torch.zeros_like(residual)[..., None]], -1)
    v = torch.cat([Xt, -residual[..., None]], -1)
    C_row = u[..., :, None] * v[..., None, :]  # (n, 2^d, d+1, d+1)
    E_row = torch.einsum("m,nmab->nab", prob, C_row)  # E[C_i]
    E_C = E_row.sum(0)
    k = d + 1

    def kron(A, B):
        return torch.einsum("...ab,...cd->...acbd", A, B).reshape(*A.shape[:-2], k * k, k * k)

    # E[C (x) C] = sum_{i != j} E[C_i] (x) E[C_j] + sum_i E[C_i (x) C_i]
    E_CC = (kron(E_C, E_C) - kron(E_row, E_row).sum(0)
            + torch.einsum("m,nmab,nmcd->acbd", prob, C_row, C_row).reshape(k * k, k * k))
    eye = torch.eye(k, dtype=X.dtype)
    second = kron(eye, eye) - c * (kron(E_C, eye) + kron(eye, E_C)) + c * c * E_CC  # E[B (x) B]
    B_mean = eye - c * E_C
    z0 = torch.cat([-w_star, torch.ones(1, dtype=X.dtype)])
    S, cross, total = torch.outer(z0, z0), torch.zeros(k, k, dtype=X.dtype), torch.zeros(k, k, dtype=X.dtype)
    half = steps // 2
    for t in range(1, steps + 1):
        S = (second @ S.reshape(-1)).reshape(k, k)  # S_t
        if t > half:
            total += S + cross + cross.T  # cross = sum_{half < s < t} E[z_t z_s^T]
            cross = B_mean @ (cross + S)
    return (total[:d, :d].trace() / (steps - half) ** 2).item()

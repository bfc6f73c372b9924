r"""Exercises ``dropout_moments``, ``unscaled_bias_variance`` and ``jensen_gap``:
the closed forms of the two phases chapter, by hand.

A unit with weights :math:`w`, input :math:`x` and bias :math:`b` computes, under
non-inverted input dropout, :math:`z_{\text{drop}} = \sum_i m_i w_i x_i + b` with
:math:`m_i \sim \mathrm{Bernoulli}(q)`, :math:`q = 1 - p` (``p`` is the DROP
probability). The learner writes three closed forms; each is checked four ways:

1. what comes back is one number, or a pair of numbers (tensors or floats);
2. it equals :mod:`dropoutlab.theory`'s value, in float64, on a *diagnostic*
   unit and on random units drawn from the grading seed;
3. it is exact at the end points ``p = 0`` and ``p = 1``;
4. it agrees with a simulation of ``N_MASKS`` masks within ``SIGMAS``
   standard errors.

The diagnostic unit has ``N_DIAG`` positive terms :math:`a_i = w_i x_i` (``w``
in [1, 2], ``x`` in [1.5, 3]), ``p`` in [0.2, 0.35] and, where there is one, a
bias of size [0.5, 2]. There every known wrong formula is far from the right
one: :math:`p \ne q`; :math:`p^2, pq, q^2, p/q` differ; :math:`(w^\top x)^2 \ge
5.1 \sum_i a_i^2`; the variance is at least 2.3, so it is not its own square
root; and :math:`p^2 f^2 \ge 1.28\, pq \sum_i a_i^2`, so swapped outputs show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from ...theory import enumerate_masks, jensen_gap_quadratic, preactivation_moments, unscaled_bias_variance
from .._core import SIGMAS, Exercise, Mistake, register

N_MASKS = 200_000
N_DIAG = 8  # inputs of the diagnostic unit (2**8 masks enumerate its exact moments)
N_RANDOM = 6  # random units per exact check
MAX_INPUTS = 12
# Exact identities in float64 (eps = 1.1e-16). A learner's sum over at most
# 2**12 masks (enumeration) or 12 terms, and the cancellation in
# E[z^2] - E[z]^2, lose at most ~4096 eps of the scale (sum_i |w_i x_i| + |b|)
# to the power of the quantity's order: ~5e-13. RTOL = 1e-9 leaves a factor
# 2000 of room; every known wrong answer is off by more than 1e-3 of the scale.
RTOL = 1e-9

VARIANCE_MISTAKES = {
    "square_of_sum": "Square of the sum: the variance is p(1 - p) Σ_i (w_i x_i)², not p(1 - p) (w·x)². "
                     "The masks are independent, so the variances of the terms m_i w_i x_i add, with no cross terms.",
    "wrong_mask_variance": "Wrong variance of one mask: Var[m_i] = q(1 - q) = p(1 - p), "
                           "not p², q², p or q. Each term m_i w_i x_i has variance p(1 - p) (w_i x_i)².",
    "inverted_variance": "You used the inverted-dropout variance p/(1 - p) Σ_i (w_i x_i)². Here the kept inputs "
                         "are NOT divided by q, so the variance is p(1 - p) Σ_i (w_i x_i)².",
    "std_not_variance": "You returned the standard deviation: return the variance itself, "
                        "p(1 - p) Σ_i (w_i x_i)², without the square root.",
}


@dataclass(frozen=True)
class _Unit:
    w: torch.Tensor
    x: torch.Tensor
    b: float
    p: float

    @property
    def q(self) -> float:
        return 1.0 - self.p

    @property
    def a(self) -> torch.Tensor:
        return self.w * self.x

    @property
    def f(self) -> float:
        return (self.w @ self.x).item()

    @property
    def energy(self) -> float:
        return self.a.square().sum().item()

    def scale(self, order: int) -> float:
        return (self.a.abs().sum().item() + abs(self.b)) ** order

    def describe(self) -> str:
        bias = f", b = {self.b:+.3f}" if self.b else ""
        return f"on a unit with {len(self.w)} inputs, p = {self.p:.3f}{bias}"


def _uniform(generator, n, low, high):
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


def _diagnostic_unit(generator, with_bias: bool) -> _Unit:
    w, x = _uniform(generator, N_DIAG, 1.0, 2.0), _uniform(generator, N_DIAG, 1.5, 3.0)
    p, size, sign = _uniform(generator, 3, 0.0, 1.0).tolist()
    b = (0.5 + 1.5 * size) * (1 if sign < 0.5 else -1) if with_bias else 0.0
    return _Unit(w, x, b, 0.2 + 0.15 * p)


def _random_unit(generator, with_bias: bool, p: float | None = None) -> _Unit:
    n = int(torch.randint(1, MAX_INPUTS + 1, (1,), generator=generator))
    w = torch.randn(n, generator=generator, dtype=torch.float64)
    x = torch.randn(n, generator=generator, dtype=torch.float64)
    b = torch.randn(1, generator=generator, dtype=torch.float64).item() if with_bias else 0.0
    p_drawn = torch.rand(1, generator=generator, dtype=torch.float64).item()
    return _Unit(w, x, b, p_drawn if p is None else p)


def _close(value: float, target: float, tol: float) -> bool:
    return math.isfinite(value) and abs(value - target) <= tol


@dataclass(frozen=True)
class _Spec:
    """What an exercise returns, its reference, and its known wrong answers."""

    outputs: tuple[str, ...]  # names of the returned numbers
    orders: tuple[int, ...]  # 1: linear in the terms w_i x_i and b (a mean); 2: quadratic
    with_bias: bool
    reference: Callable[[_Unit], tuple[float, ...]]
    # (code, index of the output or None for the whole result, value)
    candidates: Callable[[_Unit], list[tuple[str, int | None, object]]]

    def ask(self, answer, probe, unit: _Unit) -> tuple[float, ...]:
        """Call the answer on copies of the unit's tensors; read back one number or a pair."""
        args = (unit.w.clone(), unit.x.clone()) + ((unit.b,) if self.with_bias else ()) + (unit.p,)
        out = probe.call(answer, *args)
        if len(self.outputs) == 1:
            return (probe.number(out, f"the {self.outputs[0]}"),)
        pair = f"a pair ({', '.join(self.outputs)})"
        if isinstance(out, torch.Tensor) and out.dim() == 1 and out.numel() == 2:
            out = tuple(out)
        if not isinstance(out, (tuple, list)):
            raise Mistake("wrong_type", f"the result should be {pair}, got {type(out).__name__}")
        if len(out) != 2:
            raise Mistake("wrong_shape", f"the result should be {pair}, got {len(out)} values")
        return tuple(probe.number(v, f"the {name}") for v, name in zip(out, self.outputs))

    def tol(self, unit: _Unit, index: int) -> float:
        return RTOL * unit.scale(self.orders[index])

    def diagnose(self, unit: _Unit, values: tuple[float, ...], index: int) -> str | None:
        """The code of the known wrong answer that ``values[index]`` matches on ``unit``, if exactly one does.

        At p = 0 or 1 several wrong formulas coincide (p w·x + b and w·x + b at p = 1):
        then no code is named, rather than a guess.
        """
        ref, codes = self.reference(unit), set()

        def matches(i, target):  # the answer's output i is this wrong value, and the right one is not
            tol = self.tol(unit, i)
            return _close(values[i], target, tol) and not _close(ref[i], target, tol)

        for code, where, target in self.candidates(unit):
            if where is None and all(matches(i, t) for i, t in enumerate(target)):
                codes.add(code)
            elif where == index and matches(index, target):
                codes.add(code)
        return codes.pop() if len(codes) == 1 else None

    def compare(self, unit: _Unit, values: tuple[float, ...], index: int) -> None:
        """Raise the diagnosed Mistake unless ``values[index]`` equals the reference."""
        expected = self.reference(unit)[index]
        if _close(values[index], expected, self.tol(unit, index)):
            return
        raise Mistake(self.diagnose(unit, values, index),
                      f"{unit.describe()}: {self.outputs[index]} {values[index]:.6g}, expected {expected:.6g}")

    def exact_check(self, index: int):
        """A check: output ``index`` equals the reference on the diagnostic unit and on random units."""

        def run(answer, probe):
            units = [_diagnostic_unit(probe.generator(1), self.with_bias)]
            units += [_random_unit(probe.generator(2 + k), self.with_bias) for k in range(N_RANDOM)]
            for unit in units:
                self.compare(unit, self.ask(answer, probe, unit), index)

        return run

    def edges_check(self, answer, probe) -> None:
        """Every output equals the reference at p = 0 and p = 1."""
        for k, p in enumerate((0.0, 1.0)):
            unit = _random_unit(probe.generator(20 + k), self.with_bias, p=p)
            values = self.ask(answer, probe, unit)
            for index in range(len(self.outputs)):
                self.compare(unit, values, index)

    def simulated(self, unit: _Unit, values, index: int, estimate: float, se: float, what: str,
                  mine: float | None = None) -> None:
        """Raise unless ``mine`` (default ``values[index]``) is within SIGMAS ``se`` of the simulated ``estimate``."""
        mine = values[index] if mine is None else mine
        if math.isfinite(mine) and abs(mine - estimate) <= SIGMAS * se:
            return
        off = f"{abs(mine - estimate) / se:.1f}" if math.isfinite(mine) else "infinitely many"
        raise Mistake(self.diagnose(unit, values, index),
                      f"{unit.describe()}: your {what} is {mine:.6g}, {N_MASKS:,} masks give {estimate:.6g} "
                      f"(standard error {se:.2g}): {off} standard errors away, {SIGMAS:.0f} allowed")


def _simulate(unit: _Unit, generator) -> torch.Tensor:
    """z_drop for N_MASKS independent masks, m_i = 1 with probability q (float64)."""
    keep = torch.rand(N_MASKS, len(unit.w), generator=generator, dtype=torch.float64) >= unit.p
    return keep.to(torch.float64) @ unit.a + unit.b


def _exact_moments(unit: _Unit) -> tuple[float, float]:
    """Variance and fourth central moment of z_drop, exact over all 2**n masks."""
    masks, prob = enumerate_masks(len(unit.w), unit.p)
    z = masks @ unit.a + unit.b
    centred = z - prob @ z
    return (prob @ centred.square()).item(), (prob @ centred.pow(4)).item()


def _sample_variance_se(unit: _Unit) -> float:
    # A sample variance of N draws has standard deviation sqrt((mu4 - sigma^4) / N)
    # (to O(1/N)), with mu4 the fourth central moment, here exact by enumeration.
    var, mu4 = _exact_moments(unit)
    return math.sqrt((mu4 - var**2) / N_MASKS)


def _variance_candidates(u: _Unit, index: int) -> list[tuple[str, int, float]]:
    p, q, e = u.p, u.q, u.energy
    return [
        ("square_of_sum", index, p * q * u.f**2),
        *[("wrong_mask_variance", index, v) for v in (p * p * e, q * q * e, p * e, q * e)],
        ("inverted_variance", index, p / q * e if q > 0 else math.inf),
        ("std_not_variance", index, math.sqrt(p * q * e)),
    ]


# ---- dropout_moments --------------------------------------------------------------------

MOMENTS = register(Exercise(
    id="dropout_moments",
    title="Mean and variance of a pre-activation under dropout",
    notebook="two_phases_by_hand",
    answer_name="dropout_moments",
    mistakes={
        "keep_drop_mixup": "Keep/drop mix-up: the mean is q w·x + b with q = 1 - p the KEEP probability; "
                           "you used p, the probability of dropping an input.",
        "bias_forgotten": "The bias is missing from the mean: b is added after the masked sum, "
                          "so E[z_drop] = q w·x + b.",
        "bias_dropped": "You multiplied the bias by q too: the mask acts on the inputs only, "
                        "so E[z_drop] = q w·x + b, not q (w·x + b).",
        "test_phase_mean": "That is the test-phase pre-activation w·x + b (or the mean under inverted dropout). "
                           "Without the 1/q rescaling, the mask shrinks the mean to q w·x + b.",
        **VARIANCE_MISTAKES,
        "second_moment": "You returned E[z_drop²], the second moment. The variance is E[z_drop²] - E[z_drop]² "
                         "= p(1 - p) Σ_i (w_i x_i)²; the bias does not enter it.",
    },
))


def _moment_candidates(u: _Unit):
    p, q, f, b = u.p, u.q, u.f, u.b
    return [
        ("keep_drop_mixup", 0, p * f + b), ("keep_drop_mixup", 0, p * f),
        ("bias_forgotten", 0, q * f),
        ("bias_dropped", 0, q * (f + b)),
        ("test_phase_mean", 0, f + b),
        *_variance_candidates(u, 1),
        ("second_moment", 1, p * q * u.energy + (q * f + b) ** 2),
    ]


_MOMENTS = _Spec(("mean", "variance"), (1, 2), True,
                 lambda u: tuple(v.item() for v in preactivation_moments(u.w, u.x, u.b, u.p)),
                 _moment_candidates)


@MOMENTS.check("returns a pair of numbers (mean, variance)")
def _moments_pair(answer, probe):
    _MOMENTS.ask(answer, probe, _diagnostic_unit(probe.generator(0), True))


MOMENTS.check("the mean equals (1 - p) w·x + b on random units")(_MOMENTS.exact_check(0))
MOMENTS.check("the variance equals p (1 - p) Σ (w_i x_i)² on random units")(_MOMENTS.exact_check(1))
MOMENTS.check("p = 0 gives (w·x + b, 0) and p = 1 gives (b, 0)")(_MOMENTS.edges_check)


@MOMENTS.check("agrees with 200,000 simulated masks")
def _moments_simulation(answer, probe):
    unit = _diagnostic_unit(probe.generator(30), True)
    values = _MOMENTS.ask(answer, probe, unit)
    z = _simulate(unit, probe.generator(31))
    var, _ = _exact_moments(unit)
    # the mean of N draws has standard deviation sqrt(Var[z_drop] / N), Var exact
    _MOMENTS.simulated(unit, values, 0, z.mean().item(), math.sqrt(var / N_MASKS), "mean")
    _MOMENTS.simulated(unit, values, 1, z.var().item(), _sample_variance_se(unit), "variance")


# ---- unscaled_bias_variance -------------------------------------------------------------

BIAS_VARIANCE = register(Exercise(
    id="unscaled_bias_variance",
    title="Bias and variance of the unscaled prediction",
    notebook="two_phases_by_hand",
    answer_name="unscaled_bias_variance",
    mistakes={
        "bias_not_squared": "The bias is not squared: E[f_hat] - f = q f - f = -p f; return its square, (p w·x)².",
        "bias_q": "You used q f where the bias is p f: E[f_hat] = q f is the mean of the prediction, "
                  "and the bias is E[f_hat] - f = -p f, so the squared bias is (p w·x)².",
        "swapped_outputs": "The two outputs are swapped: return (squared_bias, variance), in that order.",
        "mse_as_bias": "You returned the mean squared error, squared bias + variance, as the squared bias. "
                       "Return the two parts separately: (p w·x)² and p(1 - p) Σ_i (w_i x_i)².",
        **VARIANCE_MISTAKES,
    },
))


def _bias_variance_candidates(u: _Unit):
    p, q, f, e = u.p, u.q, u.f, u.energy
    return [
        ("swapped_outputs", None, (p * q * e, (p * f) ** 2)),
        *[("bias_not_squared", 0, v) for v in (p * f, -p * f)],
        *[("bias_q", 0, v) for v in ((q * f) ** 2, q * f, -q * f)],
        ("mse_as_bias", 0, (p * f) ** 2 + p * q * e),
        *_variance_candidates(u, 1),
    ]


_BIAS_VARIANCE = _Spec(("squared bias", "variance"), (2, 2), False,
                       lambda u: tuple(v.item() for v in unscaled_bias_variance(u.w, u.x, u.p)),
                       _bias_variance_candidates)


@BIAS_VARIANCE.check("returns a pair of numbers (squared bias, variance)")
def _bias_variance_pair(answer, probe):
    _BIAS_VARIANCE.ask(answer, probe, _diagnostic_unit(probe.generator(0), False))


BIAS_VARIANCE.check("the squared bias equals (p w·x)² on random units")(_BIAS_VARIANCE.exact_check(0))
BIAS_VARIANCE.check("the variance equals p (1 - p) Σ (w_i x_i)² on random units")(_BIAS_VARIANCE.exact_check(1))
BIAS_VARIANCE.check("p = 0 gives (0, 0) and p = 1 gives ((w·x)², 0)")(_BIAS_VARIANCE.edges_check)


@BIAS_VARIANCE.check("agrees with 200,000 simulated masks")
def _bias_variance_simulation(answer, probe):
    unit = _diagnostic_unit(probe.generator(30), False)
    values = _BIAS_VARIANCE.ask(answer, probe, unit)
    f_hat = _simulate(unit, probe.generator(31))
    var, _ = _exact_moments(unit)
    # Compare biases, not their squares: | |mean - f| - |E f_hat - f| | <= |mean - E f_hat|,
    # and the mean of N draws has standard deviation sqrt(Var[f_hat] / N), Var exact.
    bias_sq = values[0]
    size = math.sqrt(bias_sq) if math.isfinite(bias_sq) and bias_sq >= 0 else math.nan
    _BIAS_VARIANCE.simulated(unit, values, 0, abs(f_hat.mean().item() - unit.f), math.sqrt(var / N_MASKS),
                             "bias size sqrt(squared bias)", mine=size)
    _BIAS_VARIANCE.simulated(unit, values, 1, f_hat.var().item(), _sample_variance_se(unit), "variance")


# ---- jensen_gap -------------------------------------------------------------------------

JENSEN = register(Exercise(
    id="jensen_gap",
    title="The Jensen gap of the square",
    notebook="two_phases_by_hand",
    answer_name="jensen_gap",
    mistakes={
        "sign_reversed": "The sign is reversed: the gap is E[phi(z_drop)] - phi(E[z_drop]), which is >= 0 for the "
                         "convex phi(z) = z² (Jensen's inequality). You computed phi(E[z]) - E[phi(z)].",
        "phi_of_mean": "You returned phi(E[z_drop]) = (q w·x)² alone; subtract it from E[z_drop²].",
        "mean_of_phi": "You returned E[phi(z_drop)] = E[z_drop²] alone; subtract phi(E[z_drop]) = (q w·x)².",
        "test_phase_mean": "You subtracted phi(w·x), the test-phase output. The gap compares with phi(E[z_drop]), "
                           "and without rescaling E[z_drop] = q w·x.",
        "square_of_sum": VARIANCE_MISTAKES["square_of_sum"].replace("the variance is", "the gap, the variance, is"),
        "wrong_mask_variance": "Wrong variance of one mask: the gap of z² is Var[z_drop] = Σ_i Var[m_i] (w_i x_i)², "
                               "and Var[m_i] = q(1 - q) = p(1 - p), not p², q², p or q.",
        "inverted_gap": "You used the inverted-dropout variance p/(1 - p) Σ_i (w_i x_i)². Here the kept inputs are NOT "
                        "divided by q, so the gap is p(1 - p) Σ_i (w_i x_i)².",
    },
))


def _jensen_candidates(u: _Unit):
    p, q, f, e = u.p, u.q, u.f, u.energy
    return [
        ("sign_reversed", 0, -p * q * e),
        ("phi_of_mean", 0, (q * f) ** 2),
        ("mean_of_phi", 0, p * q * e + (q * f) ** 2),
        ("test_phase_mean", 0, p * q * e + (q * f) ** 2 - f**2),
        ("square_of_sum", 0, p * q * f**2),
        *[("wrong_mask_variance", 0, v) for v in (p * p * e, q * q * e, p * e, q * e)],
        ("inverted_gap", 0, p / q * e if q > 0 else math.inf),
    ]


_JENSEN = _Spec(("gap",), (2,), False,
                lambda u: (jensen_gap_quadratic(u.w, u.x, u.p).item(),), _jensen_candidates)


@JENSEN.check("returns one number")
def _jensen_number(answer, probe):
    _JENSEN.ask(answer, probe, _diagnostic_unit(probe.generator(0), False))


JENSEN.check("the gap equals p (1 - p) Σ (w_i x_i)² on random units")(_JENSEN.exact_check(0))


@JENSEN.check("the gap is 0 at p = 0 and p = 1, and positive in between")
def _jensen_sign(answer, probe):
    _JENSEN.edges_check(answer, probe)
    unit = _random_unit(probe.generator(22), False)
    for p in (0.1, 0.3, 0.5, 0.7, 0.9):
        at_p = _Unit(unit.w, unit.x, 0.0, p)
        (gap,) = values = _JENSEN.ask(answer, probe, at_p)
        if not gap > 0:
            raise Mistake(_JENSEN.diagnose(at_p, values, 0), f"{at_p.describe()}: the gap is {gap:.6g}")


@JENSEN.check("agrees with 200,000 simulated masks")
def _jensen_simulation(answer, probe):
    unit = _diagnostic_unit(probe.generator(30), False)
    values = _JENSEN.ask(answer, probe, unit)
    z = _simulate(unit, probe.generator(31))
    # mean(z²) - mean(z)² is the sample variance times (N - 1)/N: its bias, Var/N,
    # is below 1e-3 of its standard deviation sqrt((mu4 - Var²) / N).
    gap = (z.square().mean() - z.mean().square()).item()
    _JENSEN.simulated(unit, values, 0, gap, _sample_variance_se(unit), "gap E[z²] - E[z]²")

"""The ``two_phases_by_hand`` checks (``dropout_moments``, ``unscaled_bias_variance``,
``jensen_gap``): right answers pass however they are written, and each known wrong
answer is rejected with its own hint."""

import math

import pytest
import torch

from dropoutlab.grading import EXERCISES, check

SEEDS = [0, 1, 12345]
IDS = ["dropout_moments", "unscaled_bias_variance", "jensen_gap"]


def _energy(w, x):
    return (w * x).square().sum()


def _all_masks(n, p):
    """Every mask of n inputs (one per row) and its probability, for the enumerating answers."""
    masks = ((torch.arange(2**n).unsqueeze(1) >> torch.arange(n)) & 1).to(torch.float64)
    kept = masks.sum(1)
    return masks, (1 - p) ** kept * p ** (n - kept)


# ---- correct answers, written differently ---------------------------------------------

def moments_formula(w, x, b, p):
    q = 1 - p
    return q * (w @ x) + b, p * q * _energy(w, x)


def moments_python_floats(w, x, b, p):
    terms = [wi * xi for wi, xi in zip(w.tolist(), x.tolist())]
    mean = sum((1 - p) * t for t in terms) + b
    variance = sum(p * (1 - p) * t * t for t in terms)
    return mean, variance


def moments_enumerated(w, x, b, p):
    masks, prob = _all_masks(len(w), p)
    z = masks @ (w * x) + b
    mean = prob @ z
    return mean.item(), (prob @ (z - mean) ** 2).item()


def moments_stacked(w, x, b, p):
    q = 1 - p
    return torch.stack([q * torch.dot(w, x) + b, torch.sum(p * q * w**2 * x**2)])


def bias_variance_formula(w, x, p):
    return (p * (w @ x)) ** 2, p * (1 - p) * _energy(w, x)


def bias_variance_from_moments(w, x, p):
    q, f, energy = 1 - p, (w @ x).item(), _energy(w, x).item()
    mean = q * f
    second = q * energy + q * q * (f * f - energy)  # E[f_hat^2]: diagonal and cross terms
    return [(mean - f) ** 2, second - mean**2]


def bias_variance_enumerated(w, x, p):
    masks, prob = _all_masks(len(w), p)
    f_hat, f = masks @ (w * x), w @ x
    mean = prob @ f_hat
    return (mean - f) ** 2, prob @ (f_hat - mean) ** 2


def gap_formula(w, x, p):
    return p * (1 - p) * _energy(w, x)


def gap_second_moment(w, x, p):
    q, f, energy = 1 - p, (w @ x).item(), _energy(w, x).item()
    mean_of_phi = q * energy + q * q * (f * f - energy)
    return mean_of_phi - (q * f) ** 2


def gap_enumerated(w, x, p):
    masks, prob = _all_masks(len(w), p)
    z = masks @ (w * x)
    return prob @ z.square() - (prob @ z).square()


CORRECT = [
    ("dropout_moments", moments_formula),
    ("dropout_moments", moments_python_floats),
    ("dropout_moments", moments_enumerated),
    ("dropout_moments", moments_stacked),
    ("unscaled_bias_variance", bias_variance_formula),
    ("unscaled_bias_variance", bias_variance_from_moments),
    ("unscaled_bias_variance", bias_variance_enumerated),
    ("jensen_gap", gap_formula),
    ("jensen_gap", gap_second_moment),
    ("jensen_gap", gap_enumerated),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("exercise_id", "answer"), CORRECT, ids=[f.__name__ for _, f in CORRECT])
def test_correct_variants_pass(exercise_id, answer, seed):
    report = check(exercise_id, answer, seed=seed)
    assert report.passed, report.feedback
    assert report.score == report.max_score and report.mistakes == ()


# ---- the known mistakes ---------------------------------------------------------------

def _variance(w, x, p):
    return p * (1 - p) * _energy(w, x)


def _moments_with_variance(variance):
    def answer(w, x, b, p):
        return (1 - p) * (w @ x) + b, variance(w, x, p)
    answer.__name__ = f"moments_{variance.__name__}"
    return answer


def _bias_variance_with_variance(variance):
    def answer(w, x, p):
        return (p * (w @ x)) ** 2, variance(w, x, p)
    answer.__name__ = f"bias_variance_{variance.__name__}"
    return answer


def square_of_sum(w, x, p):
    return p * (1 - p) * (w @ x) ** 2


def p_squared(w, x, p):
    return p**2 * _energy(w, x)


def q_squared(w, x, p):
    return (1 - p) ** 2 * _energy(w, x)


def inverted(w, x, p):
    return p / (1 - p) * _energy(w, x)


def standard_deviation(w, x, p):
    return torch.sqrt(_variance(w, x, p))


def moments_keep_drop_mixup(w, x, b, p):
    return p * (w @ x) + b, _variance(w, x, p)


def moments_bias_forgotten(w, x, b, p):
    return (1 - p) * (w @ x), _variance(w, x, p)


def moments_bias_dropped(w, x, b, p):
    return (1 - p) * (w @ x + b), _variance(w, x, p)


def moments_test_phase_mean(w, x, b, p):
    return w @ x + b, _variance(w, x, p)


def moments_second_moment(w, x, b, p):
    mean = (1 - p) * (w @ x) + b
    return mean, _variance(w, x, p) + mean**2


def moments_returns_string(w, x, b, p):
    return "mean and variance"


def moments_three_values(w, x, b, p):
    return (1 - p) * (w @ x) + b, _variance(w, x, p), 0.0


def moments_raises(w, x, b, p):
    return w @ torch.ones(len(w) + 1, dtype=w.dtype)  # a shape error from inside torch


def bias_not_squared(w, x, p):
    return p * (w @ x), _variance(w, x, p)


def bias_q(w, x, p):
    return ((1 - p) * (w @ x)) ** 2, _variance(w, x, p)


def bias_swapped(w, x, p):
    return _variance(w, x, p), (p * (w @ x)) ** 2


def bias_mse(w, x, p):
    return (p * (w @ x)) ** 2 + _variance(w, x, p), _variance(w, x, p)


def bias_single_number(w, x, p):
    return (p * (w @ x)) ** 2


def gap_sign_reversed(w, x, p):
    return -gap_formula(w, x, p)


def gap_phi_of_mean(w, x, p):
    return ((1 - p) * (w @ x)) ** 2


def gap_mean_of_phi(w, x, p):
    return gap_formula(w, x, p) + ((1 - p) * (w @ x)) ** 2


def gap_test_phase(w, x, p):
    return gap_formula(w, x, p) + ((1 - p) * (w @ x)) ** 2 - (w @ x) ** 2


def gap_vector(w, x, p):
    return p * (1 - p) * (w * x) ** 2  # forgot the sum


WRONG = [
    ("dropout_moments", moments_keep_drop_mixup, "keep_drop_mixup"),
    ("dropout_moments", moments_bias_forgotten, "bias_forgotten"),
    ("dropout_moments", moments_bias_dropped, "bias_dropped"),
    ("dropout_moments", moments_test_phase_mean, "test_phase_mean"),
    ("dropout_moments", _moments_with_variance(square_of_sum), "square_of_sum"),
    ("dropout_moments", _moments_with_variance(p_squared), "wrong_mask_variance"),
    ("dropout_moments", _moments_with_variance(q_squared), "wrong_mask_variance"),
    ("dropout_moments", _moments_with_variance(inverted), "inverted_variance"),
    ("dropout_moments", _moments_with_variance(standard_deviation), "std_not_variance"),
    ("dropout_moments", moments_second_moment, "second_moment"),
    ("dropout_moments", moments_returns_string, "wrong_type"),
    ("dropout_moments", moments_three_values, "wrong_shape"),
    ("dropout_moments", moments_raises, "raised"),
    ("unscaled_bias_variance", bias_not_squared, "bias_not_squared"),
    ("unscaled_bias_variance", bias_q, "bias_q"),
    ("unscaled_bias_variance", bias_swapped, "swapped_outputs"),
    ("unscaled_bias_variance", bias_mse, "mse_as_bias"),
    ("unscaled_bias_variance", _bias_variance_with_variance(square_of_sum), "square_of_sum"),
    ("unscaled_bias_variance", _bias_variance_with_variance(p_squared), "wrong_mask_variance"),
    ("unscaled_bias_variance", _bias_variance_with_variance(q_squared), "wrong_mask_variance"),
    ("unscaled_bias_variance", _bias_variance_with_variance(inverted), "inverted_variance"),
    ("unscaled_bias_variance", _bias_variance_with_variance(standard_deviation), "std_not_variance"),
    ("unscaled_bias_variance", bias_single_number, "wrong_type"),
    ("jensen_gap", gap_sign_reversed, "sign_reversed"),
    ("jensen_gap", gap_phi_of_mean, "phi_of_mean"),
    ("jensen_gap", gap_mean_of_phi, "mean_of_phi"),
    ("jensen_gap", gap_test_phase, "test_phase_mean"),
    ("jensen_gap", square_of_sum, "square_of_sum"),
    ("jensen_gap", p_squared, "wrong_mask_variance"),
    ("jensen_gap", q_squared, "wrong_mask_variance"),
    ("jensen_gap", inverted, "inverted_gap"),
    ("jensen_gap", gap_vector, "wrong_shape"),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("exercise_id", "answer", "mistake"), WRONG,
                         ids=[f"{e}-{m}-{f.__name__}" for e, f, m in WRONG])
def test_wrong_answer_is_named(exercise_id, answer, mistake, seed):
    report = check(exercise_id, answer, seed=seed)
    assert not report.passed
    assert report.score < report.max_score
    assert mistake in report.mistakes, report.feedback


@pytest.mark.parametrize("exercise_id", IDS)
def test_every_declared_mistake_is_exercised(exercise_id):
    exercise = EXERCISES[exercise_id]
    assert exercise.notebook == "two_phases_by_hand"
    assert len(exercise.mistakes) >= 4
    covered = {m for e, _, m in WRONG if e == exercise_id}
    assert set(exercise.mistakes) <= covered


@pytest.mark.parametrize("exercise_id", IDS)
def test_stub_is_not_implemented(exercise_id):
    def stub(*args):
        raise NotImplementedError

    report = check(exercise_id, stub)
    assert report.mistakes == ("not_implemented",)
    assert report.score == 0


def test_worked_example_gap():
    """The notebook's example: w = (2, 1, 2), x = (2, 4, 1), p = 0.3 gives 0.21 * 36 = 7.56."""
    w = torch.tensor([2.0, 1.0, 2.0], dtype=torch.float64)
    x = torch.tensor([2.0, 4.0, 1.0], dtype=torch.float64)
    assert math.isclose(gap_enumerated(w, x, 0.3).item(), 7.56, rel_tol=1e-12)

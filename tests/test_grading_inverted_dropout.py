"""The ``inverted_dropout`` checks: right answers pass however they are written,
and each known wrong answer is rejected with its own hint."""

import pytest
import torch

from dropoutlab.grading import check

SEEDS = [0, 1, 12345]


def _keep(x, p, generator):
    return torch.rand(x.shape, generator=generator, device=x.device) >= p


# ---- correct answers, written differently ---------------------------------------------

def rand_greater(x, p, training=True, generator=None):
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    return x * (torch.rand(x.shape, generator=generator) > p) / (1 - p)


def bernoulli_inplace_mask(x, p, training=True, generator=None):
    if not training:
        return x
    if p == 1:
        return torch.zeros_like(x)
    mask = torch.empty_like(x).bernoulli_(1 - p, generator=generator)
    return x * mask / (1 - p)


def where_scale_first(x, p, training=True, generator=None):
    if not training:
        return x
    if p == 1:
        return x * 0
    return torch.where(_keep(x, p, generator), x / (1 - p), torch.zeros_like(x))


def masked_fill(x, p, training=True, generator=None):
    if not training:
        return x.clone()
    if p >= 1:
        return x.masked_fill(torch.ones_like(x, dtype=torch.bool), 0.0)
    dropped = torch.rand(x.shape, generator=generator, device=x.device) < p
    return (x * (1.0 / (1 - p))).masked_fill(dropped, 0.0)


def torch_bernoulli(x, p, training=True, generator=None):
    if not training:
        return x
    q = 1 - p
    if q == 0:
        return torch.zeros_like(x)
    return x * torch.bernoulli(torch.full_like(x, q), generator=generator) / q


CORRECT = [rand_greater, bernoulli_inplace_mask, where_scale_first, masked_fill, torch_bernoulli]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("answer", CORRECT, ids=lambda f: f.__name__)
def test_correct_variants_pass(answer, seed):
    report = check("inverted_dropout", answer, seed=seed)
    assert report.passed, report.feedback
    assert report.score == report.max_score and report.mistakes == ()


# ---- the known mistakes ---------------------------------------------------------------

def no_rescale(x, p, training=True, generator=None):
    if not training:
        return x
    return x * _keep(x, p, generator)


def divide_by_p(x, p, training=True, generator=None):
    if not training:
        return x
    return x * _keep(x, p, generator) / p


def keep_drop_mixup(x, p, training=True, generator=None):
    if not training or p == 1:
        return x if not training else x * 0
    keep = torch.rand(x.shape, generator=generator) < p
    return x * keep / (1 - p)


def ignore_training(x, p, training=True, generator=None):
    if p == 1:
        return x * 0
    return x * _keep(x, p, generator) / (1 - p)


def scale_at_eval(x, p, training=True, generator=None):
    if not training:
        return x * (1 - p)
    if p == 1:
        return x * 0
    return x * _keep(x, p, generator) / (1 - p)


def one_mask_for_batch(x, p, training=True, generator=None):
    if not training:
        return x
    if p == 1:
        return x * 0
    keep = torch.rand(x.shape[-1], generator=generator) >= p
    return x * keep / (1 - p)


def in_place(x, p, training=True, generator=None):
    if not training:
        return x
    if p == 1:
        return x.zero_()
    x.mul_(_keep(x, p, generator)).div_(1 - p)
    return x


def gaussian_mask(x, p, training=True, generator=None):
    if not training:
        return x
    if p == 1:
        return x * 0
    noise = 1 + (p / (1 - p)) ** 0.5 * torch.randn(x.shape, generator=generator)
    return x * noise


def nan_at_p1(x, p, training=True, generator=None):
    if not training:
        return x
    keep = _keep(x, p, generator).to(x.dtype)
    return x * keep / torch.tensor(1 - p)


def zero_division_at_p1(x, p, training=True, generator=None):
    if not training:
        return x
    scale = 1 / (1 - p)
    return x * _keep(x, p, generator) * scale


def ignore_generator(x, p, training=True, generator=None):
    if not training:
        return x
    if p == 1:
        return x * 0
    return x * (torch.rand(x.shape) >= p) / (1 - p)


def fixed_mask(x, p, training=True, generator=None):
    if not training:
        return x
    if p == 1:
        return x * 0
    own = torch.Generator().manual_seed(0)
    return x * (torch.rand(x.shape, generator=own) >= p) / (1 - p)


def breaks_grad_detach(x, p, training=True, generator=None):
    if not training:
        return x
    if p == 1:
        return x * 0
    return x.detach() * _keep(x, p, generator) / (1 - p)


def breaks_grad_numpy(x, p, training=True, generator=None):
    if not training:
        return x
    if p == 1:
        return x * 0
    return torch.tensor(x.numpy() * _keep(x, p, generator).numpy() / (1 - p))


def returns_x(x, p, training=True, generator=None):
    return x


def returns_numpy(x, p, training=True, generator=None):
    return (x * _keep(x, p, generator) / (1 - p)).numpy()


def raises_other(x, p, training=True, generator=None):
    return x @ torch.ones(3)  # a shape error from inside torch


WRONG = [
    (no_rescale, "no_rescale"),
    (divide_by_p, "divide_by_p"),
    (keep_drop_mixup, "keep_drop_mixup"),
    (ignore_training, "ignore_training"),
    (scale_at_eval, "scale_at_eval"),
    (one_mask_for_batch, "one_mask_for_batch"),
    (in_place, "in_place"),
    (gaussian_mask, "gaussian_mask"),
    (nan_at_p1, "nan_at_p1"),
    (zero_division_at_p1, "nan_at_p1"),
    (ignore_generator, "ignore_generator"),
    (fixed_mask, "fixed_mask"),
    (breaks_grad_detach, "breaks_grad"),
    (breaks_grad_numpy, "breaks_grad"),
    (returns_x, "returns_x"),
    (returns_numpy, "wrong_type"),
    (raises_other, "raised"),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("answer", "mistake"), WRONG, ids=[m for _, m in WRONG])
def test_wrong_answer_is_named(answer, mistake, seed):
    report = check("inverted_dropout", answer, seed=seed)
    assert not report.passed
    assert report.score < report.max_score
    assert mistake in report.mistakes, report.feedback


def test_every_declared_mistake_is_exercised():
    from dropoutlab.grading import EXERCISES

    declared = set(EXERCISES["inverted_dropout"].mistakes)
    covered = {m for _, m in WRONG}
    # multiply_by_q and one_mask_per_row are recognised too; the twelve must all be covered
    assert declared - covered <= {"multiply_by_q", "one_mask_per_row"}

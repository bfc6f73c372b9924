"""Variant-specific checks for dropoutlab.functional.elementwise.

Statistical checks use a fixed generator and SIGMAS = 6 standard deviations of
the statistic (two-sided false-failure probability 2e-9).
"""

import math

import pytest
import torch
from torch.autograd.graph import saved_tensors_hooks

import dropoutlab.functional as F
from conftest import SIGMAS


def saved_bytes_per_element(fn, x):
    """Bytes autograd saves for backward while computing fn(x), per element of x."""
    saved = []

    def pack(t):
        saved.append(t.numel() * t.element_size())
        return t

    with saved_tensors_hooks(pack, lambda t: t):
        fn(x).sum()
    return sum(saved) / x.numel()


def test_dropout_saves_at_most_one_byte_per_element():
    x = torch.randn(100_000, requires_grad=True)
    assert saved_bytes_per_element(lambda t: F.dropout(t, 0.5), x) <= 1.0


def test_seeded_dropout_saves_nothing_per_element():
    x = torch.randn(100_000, requires_grad=True)
    assert saved_bytes_per_element(lambda t: F.seeded_dropout(t, 0.5, seed=1), x) == 0.0


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_gaussian_dropout_moments(p, generator):
    n = 1_000_000
    y = F.gaussian_dropout(torch.ones(n, dtype=torch.float64), p, generator=generator)
    var = p / (1 - p)
    # the mean of n draws has sd sqrt(var / n); for normal draws the sample
    # variance has sd var * sqrt(2 / (n - 1))
    assert abs(y.mean().item() - 1) <= SIGMAS * math.sqrt(var / n)
    assert abs(y.var().item() - var) <= SIGMAS * var * math.sqrt(2 / (n - 1))


@pytest.mark.parametrize("p", [0.05, 0.2, 0.5])
def test_alpha_dropout_keeps_standard_moments(p, generator):
    n = 1_000_000
    x = torch.randn(n, generator=generator, dtype=torch.float64)
    y = F.alpha_dropout(x, p, generator=generator)
    # mean: sd sqrt(1 / n) for unit variance; variance: sd sqrt((m4 - 1) / n)
    # with the fourth moment m4 plugged in from the sample
    assert abs(y.mean().item()) <= SIGMAS * math.sqrt(1 / n)
    m4 = ((y - y.mean()) ** 4).mean().item()
    assert abs(y.var().item() - 1) <= SIGMAS * math.sqrt((m4 - 1) / n)


def test_alpha_dropout_values_and_gradient(generator):
    p = 0.3
    q = 1 - p
    saturation = -1.0507009873554804934193349852946 * 1.6732632423543772848170429916717
    a = (q + saturation**2 * q * p) ** -0.5
    b = -a * p * saturation
    x = torch.randn(10_000, generator=generator, dtype=torch.float64, requires_grad=True)
    y = F.alpha_dropout(x, p, generator=generator)
    kept = torch.isclose(y, a * x.detach() + b, rtol=0, atol=1e-12)
    dropped = torch.isclose(y, torch.tensor(a * saturation + b, dtype=torch.float64), rtol=0, atol=1e-12)
    assert (kept | dropped).all()
    (grad,) = torch.autograd.grad(y.sum(), x)
    assert torch.allclose(grad, a * kept.double())


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_seeded_dropout_rate_and_kept_values(p):
    n = 1_000_000
    x = torch.rand(n, dtype=torch.float64) + 0.5
    y = F.seeded_dropout(x, p, seed=2024)
    dropped = y == 0
    assert abs(dropped.double().mean().item() - p) <= SIGMAS * math.sqrt(p * (1 - p) / n)
    assert torch.equal(y[~dropped], (x * (1 / (1 - p)))[~dropped])


def test_seeded_dropout_ignores_global_rng_and_depends_on_seed():
    x = torch.ones(10_000)
    torch.manual_seed(0)
    a = F.seeded_dropout(x, 0.5, seed=1)
    torch.manual_seed(12345)
    torch.rand(100)
    assert torch.equal(F.seeded_dropout(x, 0.5, seed=1), a)
    assert not torch.equal(F.seeded_dropout(x, 0.5, seed=2), a)
    # seeds that differ only in their high 32 bits give different masks too
    assert not torch.equal(F.seeded_dropout(x, 0.5, seed=1 + 2**32), a)


def test_seeded_dropout_gradient_is_the_recomputed_mask():
    x = torch.randn(5000, dtype=torch.float64, requires_grad=True)
    y = F.seeded_dropout(x, 0.3, seed=9)
    (grad,) = torch.autograd.grad(y.sum(), x)
    assert torch.equal(grad, (y != 0).double() / 0.7)


@pytest.mark.parametrize("fn", ["dropout", "seeded"])
def test_hash_mask_has_no_neighbour_or_call_to_call_correlation(fn):
    """The hashed masks must behave like independent Bernoulli draws."""
    n, p = 1_000_000, 0.5
    g = torch.Generator().manual_seed(0)
    draw = {
        "dropout": lambda k: F.dropout(torch.ones(n), p, generator=g),
        "seeded": lambda k: F.seeded_dropout(torch.ones(n), p, seed=k),
    }[fn]
    a = (draw(0) != 0).double() - (1 - p)
    b = (draw(1) != 0).double() - (1 - p)
    var = p * (1 - p)
    # a correlation estimated from n independent pairs has sd 1 / sqrt(n)
    for lag in (1, 2, 7, 64, 1024):
        corr = (a[:-lag] * a[lag:]).mean().item() / var
        assert abs(corr) <= SIGMAS / math.sqrt(n - lag), (lag, corr)
    assert abs((a * b).mean().item() / var) <= SIGMAS / math.sqrt(n)


def test_seeded_dropout_bad_seed():
    with pytest.raises(ValueError, match=r"seed must be in \[0, 9223372036854775807\], got -1"):
        F.seeded_dropout(torch.ones(3), 0.5, seed=-1)
    with pytest.raises(TypeError, match="seed must be an int, got 1.5"):
        F.seeded_dropout(torch.ones(3), 0.5, seed=1.5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_seeded_dropout_same_mask_on_cpu_and_gpu():
    x = torch.randn(3, 1000, 17)
    cpu = F.seeded_dropout(x, 0.3, seed=77)
    gpu = F.seeded_dropout(x.cuda(), 0.3, seed=77)
    assert torch.equal(gpu.cpu(), cpu)


def test_concrete_dropout_relaxes_bernoulli_and_passes_gradients(generator):
    n = 200_000
    p = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    x = torch.ones(n, dtype=torch.float64, requires_grad=True)
    y = F.concrete_dropout(x, p, temperature=0.01, generator=generator)
    # The relaxed drop indicator is sigma((logit p + L) / t) with L logistic, so
    # it exceeds 1/2 exactly when logit p + L > 0, with probability p at any t:
    # the fraction of y below 1/(2q) is a Bernoulli(p) mean, sd sqrt(p q / n).
    below_half = (y < 0.5 / 0.7).double().mean().item()
    assert abs(below_half - 0.3) <= SIGMAS * math.sqrt(0.3 * 0.7 / n)
    y.sum().backward()
    assert p.grad is not None and torch.isfinite(p.grad)
    assert x.grad is not None


def test_concrete_dropout_eval_and_bad_arguments():
    x = torch.ones(3)
    assert F.concrete_dropout(x, torch.tensor(0.5), training=False) is x
    with pytest.raises(ValueError, match="temperature must be a positive number, got 0"):
        F.concrete_dropout(x, torch.tensor(0.5), temperature=0)
    with pytest.raises(ValueError, match=r"p must be a 0-d tensor, got shape \(2,\)"):
        F.concrete_dropout(x, torch.tensor([0.5, 0.5]))


@pytest.mark.parametrize("fn", ["dropout", "seeded"])
def test_chunked_mask_equals_one_pass_mask(fn, monkeypatch):
    """The CPU path makes the mask in chunks; chunk boundaries must not change it."""
    from dropoutlab import _hashmask

    # more than 2**15 elements, so dropout takes the hashed path too
    x = torch.randn(40_007, dtype=torch.float64, requires_grad=True)

    def run():
        if fn == "seeded":
            y = F.seeded_dropout(x, 0.3, seed=5)
        else:
            y = F.dropout(x, 0.3, generator=torch.Generator().manual_seed(5))
        (grad,) = torch.autograd.grad(y.sum(), x)
        return y, grad

    one_pass = run()
    monkeypatch.setattr(_hashmask, "CPU_CHUNK", 9_999)  # 5 chunks, the last one short
    chunked = run()
    assert torch.equal(one_pass[0], chunked[0]) and torch.equal(one_pass[1], chunked[1])

"""Closed forms in dropoutlab.theory against exact enumeration of every mask."""

import itertools

import pytest
import torch

from dropoutlab.theory import preactivation_moments, unscaled_bias_variance


def exact_moments(w, x, b, p, inverted):
    """Mean and variance of z_drop by summing over all 2**n masks."""
    q = 1 - p
    values, probs = [], []
    for mask in itertools.product([0.0, 1.0], repeat=len(w)):
        m = torch.tensor(mask, dtype=torch.float64)
        scale = 1 / q if inverted else 1.0
        values.append((m * w * x).sum() * scale + b)
        probs.append(q ** m.sum() * p ** (len(w) - m.sum()))
    values, probs = torch.stack(values), torch.stack(probs)
    mean = (probs * values).sum()
    return mean, (probs * (values - mean) ** 2).sum()


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.8])
@pytest.mark.parametrize("inverted", [False, True])
def test_moments_match_enumeration(p, inverted):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(8, generator=g, dtype=torch.float64)
    x = torch.randn(8, generator=g, dtype=torch.float64)
    mean, var = preactivation_moments(w, x, b=0.7, p=p, inverted=inverted)
    exact_mean, exact_var = exact_moments(w, x, 0.7, p, inverted)
    torch.testing.assert_close(mean, exact_mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(var, exact_var, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_bias_variance_match_enumeration(p):
    g = torch.Generator().manual_seed(1)
    w = torch.randn(6, generator=g, dtype=torch.float64)
    x = torch.randn(6, generator=g, dtype=torch.float64)
    bias_sq, var = unscaled_bias_variance(w, x, p)
    exact_mean, exact_var = exact_moments(w, x, 0.0, p, inverted=False)
    torch.testing.assert_close(bias_sq, (exact_mean - w @ x) ** 2, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(var, exact_var, rtol=1e-12, atol=1e-12)


def test_inverted_moments_reject_p_one():
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\), got 1.0"):
        preactivation_moments(torch.ones(2), torch.ones(2), p=1.0, inverted=True)


def test_shape_mismatch_is_named():
    with pytest.raises(ValueError, match=r"w and x must be 1-D tensors of the same length, got shapes \(2,\) and \(3,\)"):
        preactivation_moments(torch.ones(2), torch.ones(3))

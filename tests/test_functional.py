"""Tests for dropoutlab.functional.dropout, after torch's test/nn/test_dropout.py.

Statistical checks use a fixed generator and a tolerance of SIGMAS = 6
standard deviations of the statistic (false-failure probability 2e-9).
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SIGMAS
from dropoutlab.functional import dropout

PS = [0.0, 0.2, 0.5, 1.0]
DTYPES = [torch.float32, torch.float64, torch.bfloat16]


def layouts(n_rows=256, n_cols=512, dtype=torch.float32):
    """The same values as a contiguous, a transposed and a strided tensor."""
    base = torch.linspace(0.5, 2.0, n_rows * n_cols, dtype=torch.float64).to(dtype)
    contiguous = base.reshape(n_rows, n_cols)
    transposed = base.reshape(n_cols, n_rows).t()
    strided = base.reshape(n_rows, 2 * (n_cols // 2))[:, ::2]
    return {"contiguous": contiguous, "transposed": transposed, "strided": strided}


@pytest.mark.parametrize("p", PS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided"])
def test_zero_fraction_and_kept_values(p, dtype, layout, generator):
    x = layouts(dtype=dtype)[layout]
    y = dropout(x, p, generator=generator)
    assert y.shape == x.shape and y.dtype == x.dtype
    dropped = y == 0
    n = x.numel()
    # the zero fraction is a mean of n Bernoulli(p) draws: sd sqrt(p (1 - p) / n)
    sigma = math.sqrt(p * (1 - p) / n)
    assert abs(dropped.float().mean().item() - p) <= SIGMAS * sigma
    if p < 1:
        # kept values are exactly x / q, computed in x's dtype
        expected = x * (1.0 / (1.0 - p))
        assert torch.equal(y[~dropped], expected[~dropped])


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_inverted_mean_is_unbiased(p, generator):
    n = 1_000_000
    y = dropout(torch.ones(n, dtype=torch.float64), p, generator=generator)
    # each y_i is 1/q with probability q and 0 otherwise: variance p / q
    sigma = math.sqrt(p / (1 - p) / n)
    assert abs(y.mean().item() - 1.0) <= SIGMAS * sigma


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_not_inverted_two_phases(p, generator):
    x = torch.randn(100_000, generator=generator, dtype=torch.float64)
    y = dropout(x, p, inverted=False, generator=generator)
    kept = y != 0
    assert torch.equal(y[kept], x[kept])  # training: x * m, no rescaling
    assert torch.equal(dropout(x, p, training=False, inverted=False), x * (1 - p))


@pytest.mark.parametrize("inverted", [True, False])
def test_p_zero_and_eval_return_input_itself(inverted):
    x = torch.randn(4, 5)
    assert dropout(x, 0.0, inverted=inverted) is x
    assert dropout(x, 0.0, training=False, inverted=inverted) is x
    assert dropout(x, 0.3, training=False) is x


@pytest.mark.parametrize("inverted", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_p_one_gives_zeros_with_zero_gradient_never_nan(inverted, training):
    if training is False and inverted:
        pytest.skip("inverted evaluation is the identity")
    x = torch.tensor([1.0, -2.0, float("inf"), float("-inf"), 3.0], requires_grad=True)
    y = dropout(x, 1.0, training=training, inverted=inverted)
    assert torch.equal(y, torch.zeros(5))
    y.sum().backward()
    assert torch.equal(x.grad, torch.zeros(5))


@pytest.mark.parametrize("p", [0.2, 0.5])
@pytest.mark.parametrize("inverted", [True, False])
def test_gradient_is_the_scaled_mask(p, inverted, generator):
    x = torch.randn(1000, requires_grad=True, generator=generator)
    y = dropout(x, p, inverted=inverted, generator=generator)
    y.sum().backward()
    scale = 1 / (1 - p) if inverted else 1.0
    kept = (y != 0).float()
    assert torch.equal(x.grad, kept * scale)


@pytest.mark.parametrize("inverted", [True, False])
def test_gradcheck_fp64(inverted):
    x = torch.randn(6, 7, dtype=torch.float64, requires_grad=True)
    # a fresh generator per call: gradcheck evaluates the function many times
    def f(t):
        return dropout(t, 0.4, inverted=inverted, generator=torch.Generator().manual_seed(7))
    assert torch.autograd.gradcheck(f, (x,))


def test_generator_determinism():
    x = torch.randn(50, 50)
    a = dropout(x, 0.5, generator=torch.Generator().manual_seed(3))
    b = dropout(x, 0.5, generator=torch.Generator().manual_seed(3))
    c = dropout(x, 0.5, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_input_is_never_modified(generator):
    x = torch.randn(100, generator=generator)
    before = x.clone()
    for inverted in (True, False):
        for training in (True, False):
            dropout(x, 0.5, training, inverted=inverted, generator=generator)
    assert torch.equal(x, before)


def test_matches_torch_dropout_in_distribution(generator):
    """Same zero fraction and same kept values as torch.nn.functional.dropout."""
    n, p = 400_000, 0.3
    x = torch.rand(n, generator=generator) + 0.5
    ours = dropout(x, p, generator=generator)
    torch.manual_seed(0)
    theirs = torch.nn.functional.dropout(x, p)
    sigma = math.sqrt(p * (1 - p) / n)
    for y in (ours, theirs):
        assert abs((y == 0).float().mean().item() - p) <= SIGMAS * sigma
        kept = y != 0
        torch.testing.assert_close(y[kept], x[kept] / (1 - p))


@settings(max_examples=50, deadline=None, derandomize=True)  # seeded: the same examples every run
@given(
    shape=st.lists(st.integers(0, 5), min_size=0, max_size=4),
    p=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31),
)
def test_any_shape_values_are_zero_or_scaled(shape, p, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    y = dropout(x, p, generator=g)
    assert y.shape == x.shape
    if p < 1:
        scaled = x * (1.0 / (1.0 - p))
        assert ((y == 0) | (y == scaled)).all()
    else:
        assert (y == 0).all()


@pytest.mark.parametrize("bad_p", [-0.1, 1.5, float("nan"), float("inf")])
def test_bad_p_value(bad_p):
    with pytest.raises(ValueError, match=r"dropout probability p must be in \[0, 1\], got"):
        dropout(torch.ones(3), bad_p)


@pytest.mark.parametrize("bad_p", ["0.5", None, True, torch.tensor(0.5), [0.5]])
def test_bad_p_type(bad_p):
    with pytest.raises(TypeError, match="dropout probability p must be a real number"):
        dropout(torch.ones(3), bad_p)


@pytest.mark.parametrize(
    "x, message",
    [
        ([1.0, 2.0], "x must be a torch.Tensor, got list"),
        (torch.ones(3, dtype=torch.int64), "x must be a floating-point tensor.*got dtype torch.int64"),
        (torch.ones(3, dtype=torch.bool), "x must be a floating-point tensor.*got dtype torch.bool"),
    ],
)
def test_bad_x(x, message):
    with pytest.raises(TypeError, match=message):
        dropout(x, 0.5)


@pytest.mark.parametrize("name", ["training", "inverted"])
def test_bad_flags(name):
    kwargs = {"training": True, "inverted": True, name: "yes"}
    with pytest.raises(TypeError, match=f"{name} must be True or False, got 'yes'"):
        dropout(torch.ones(3), 0.5, kwargs["training"], inverted=kwargs["inverted"])


def test_bad_generator():
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None, got int"):
        dropout(torch.ones(3), 0.5, generator=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.gpu
def test_generator_on_wrong_device():
    x = torch.ones(3, device="cuda")
    with pytest.raises(ValueError, match="generator must live on the input's device type 'cuda'"):
        dropout(x, 0.5, generator=torch.Generator())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.gpu
def test_cuda_zero_fraction():
    n, p = 1_000_000, 0.3
    g = torch.Generator(device="cuda").manual_seed(0)
    y = dropout(torch.ones(n, device="cuda"), p, generator=g)
    assert y.device.type == "cuda"
    assert abs((y == 0).float().mean().item() - p) <= SIGMAS * math.sqrt(p * (1 - p) / n)

"""The rules every variant in dropoutlab.functional shares, checked for each one.

- p == 0, or training=False, returns x itself;
- p == 1 returns zeros with zero, finite gradients (gaussian_dropout needs p < 1);
- the input is never modified; dtype, shape and device are kept;
- the mask follows the logical index, not the memory layout;
- the same generator seed gives the same output; fp64 gradcheck passes;
- bad p and non-floating input raise errors that name the argument.
"""

import pytest
import torch

import dropoutlab.functional as F

# name -> (function(x, p, training, generator), input shape)
VARIANTS = {
    "dropout": (lambda x, p, t, g: F.dropout(x, p, t, generator=g), (4, 6, 5, 5)),
    # above 2**15 elements dropout draws a hashed mask, below it uses torch.rand
    "dropout_hashed": (lambda x, p, t, g: F.dropout(x, p, t, generator=g), (4, 6, 40, 40)),
    "dropout_not_inverted": (lambda x, p, t, g: F.dropout(x, p, t, inverted=False, generator=g), (4, 6, 5, 5)),
    "gaussian_dropout": (lambda x, p, t, g: F.gaussian_dropout(x, p, t, generator=g), (4, 6, 5, 5)),
    "alpha_dropout": (lambda x, p, t, g: F.alpha_dropout(x, p, t, generator=g), (4, 6, 5, 5)),
    "channel_dropout": (lambda x, p, t, g: F.channel_dropout(x, p, t, generator=g), (4, 6, 5, 5)),
    "drop_path_row": (lambda x, p, t, g: F.drop_path(x, p, t, generator=g), (4, 6, 5, 5)),
    "drop_path_batch": (lambda x, p, t, g: F.drop_path(x, p, t, mode="batch", generator=g), (4, 6, 5, 5)),
    "drop_block": (lambda x, p, t, g: F.drop_block(x, p, 3, t, generator=g), (4, 6, 5, 5)),
    "locked_dropout": (lambda x, p, t, g: F.locked_dropout(x, p, t, generator=g), (4, 6, 5, 5)),
    "seeded_dropout": (lambda x, p, t, g: F.seeded_dropout(x, p, 11, t), (4, 6, 5, 5)),
}
NAMES = list(VARIANTS)


def call(name, x, p, training=True, seed=0):
    f, _ = VARIANTS[name]
    return f(x, p, training, torch.Generator().manual_seed(seed))


def make_input(name, dtype=torch.float32, requires_grad=False):
    _, shape = VARIANTS[name]
    g = torch.Generator().manual_seed(99)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype).requires_grad_(requires_grad)


@pytest.mark.parametrize("name", NAMES)
def test_p_zero_and_eval_return_input_itself(name):
    x = make_input(name)
    assert call(name, x, 0.0) is x
    if name != "dropout_not_inverted":  # the original scheme scales by q at evaluation
        assert call(name, x, 0.3, training=False) is x


@pytest.mark.parametrize("name", [n for n in NAMES if n != "gaussian_dropout"])
def test_p_one_gives_zeros_with_zero_finite_gradient(name):
    x = make_input(name, requires_grad=True)
    y = call(name, x, 1.0)
    assert torch.equal(y, torch.zeros_like(y))
    (grad,) = torch.autograd.grad(y.sum(), x)
    assert torch.equal(grad, torch.zeros_like(grad))


def test_gaussian_dropout_rejects_p_one():
    with pytest.raises(ValueError, match=r"dropout probability p must be in \[0, 1\), got 1.0"):
        F.gaussian_dropout(torch.ones(3), 1.0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_keeps_dtype_shape_and_never_modifies_input(name, dtype):
    x = make_input(name, dtype)
    before = x.clone()
    y = call(name, x, 0.4)
    assert y.dtype == dtype and y.shape == x.shape and y.device == x.device
    assert torch.equal(x, before)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output_and_layout_does_not_matter(name):
    x = make_input(name)
    # a non-contiguous view with the same logical values as `dense`
    strided = x.transpose(-1, -2).contiguous().transpose(-1, -2)
    assert not strided.is_contiguous() and torch.equal(strided, x)
    assert torch.equal(call(name, x, 0.4, seed=5), call(name, x, 0.4, seed=5))
    assert torch.equal(call(name, strided, 0.4, seed=5), call(name, x, 0.4, seed=5))


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_fp64(name):
    x = make_input(name, torch.float64, requires_grad=True)
    # fast mode checks random projections of the Jacobian: the full one of the
    # 38,400-element input would take minutes
    fast = x.numel() > 10_000
    assert torch.autograd.gradcheck(lambda t: call(name, t, 0.4, seed=3), (x,), fast_mode=fast)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad_p", [-0.5, 1.5, float("nan")])
def test_bad_p_is_named(name, bad_p):
    with pytest.raises(ValueError, match="dropout probability p must be in"):
        call(name, make_input(name), bad_p)


@pytest.mark.parametrize("name", NAMES)
def test_integer_input_is_a_type_error(name):
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        call(name, torch.ones(VARIANTS[name][1], dtype=torch.int64), 0.5)


@pytest.mark.parametrize("name", NAMES)
def test_training_flag_must_be_bool(name):
    with pytest.raises(TypeError, match="training must be True or False"):
        call(name, make_input(name), 0.5, training=1)

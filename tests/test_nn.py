"""Tests for dropoutlab.nn: thin modules that follow model.train() / model.eval()."""

import math

import pytest
import torch

from dropoutlab.nn import Dropout


def test_repr_shows_arguments():
    assert repr(Dropout()) == "Dropout(p=0.5, inverted=True)"
    assert repr(Dropout(0.1, inverted=False)) == "Dropout(p=0.1, inverted=False)"


def test_follows_train_and_eval():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Identity(), Dropout(0.5))
    x = torch.ones(10_000)
    assert (model(x) == 0).any()
    model.eval()
    assert model(x) is x


def test_not_inverted_module_scales_at_eval():
    layer = Dropout(0.25, inverted=False).eval()
    assert torch.equal(layer(torch.full((4,), 2.0)), torch.full((4,), 1.5))


def test_has_no_parameters_or_buffers():
    layer = Dropout(0.3)
    assert list(layer.parameters()) == [] and layer.state_dict() == {}


@pytest.mark.parametrize("bad_p", [-1, 2.0, float("nan")])
def test_validates_p_at_construction(bad_p):
    with pytest.raises(ValueError, match="dropout probability p must be in"):
        Dropout(bad_p)


def test_validates_inverted_at_construction():
    with pytest.raises(TypeError, match="inverted must be True or False, got 1"):
        Dropout(0.5, inverted=1)


# --- every module: repr, validation at construction, train/eval switching ---
import dropoutlab.nn as dnn  # noqa: E402

MODULES = {
    "GaussianDropout": (lambda: dnn.GaussianDropout(0.2), "GaussianDropout(p=0.2)", (4, 3, 5, 5)),
    "AlphaDropout": (lambda: dnn.AlphaDropout(0.2), "AlphaDropout(p=0.2)", (4, 3, 5, 5)),
    "ChannelDropout": (lambda: dnn.ChannelDropout(0.2), "ChannelDropout(p=0.2)", (4, 3, 5, 5)),
    "DropPath": (lambda: dnn.DropPath(0.2, mode="batch"), "DropPath(p=0.2, mode='batch')", (4, 3, 5, 5)),
    "DropBlock2d": (lambda: dnn.DropBlock2d(0.2, block_size=3), "DropBlock2d(p=0.2, block_size=3)", (4, 3, 5, 5)),
    "LockedDropout": (lambda: dnn.LockedDropout(0.2, time_dim=0), "LockedDropout(p=0.2, time_dim=0)", (4, 3, 5, 5)),
    "SeededDropout": (lambda: dnn.SeededDropout(0.2, seed=3), "SeededDropout(p=0.2, seed=3)", (4, 3, 5, 5)),
}


@pytest.mark.parametrize("name", MODULES)
def test_module_repr_and_modes(name):
    make, text, shape = MODULES[name]
    layer = make()
    assert repr(layer) == text
    assert isinstance(layer, dnn.DropoutLayer)
    x = torch.rand(shape) + 0.5
    torch.manual_seed(0)
    assert not torch.equal(layer(x), x)  # training: noise
    layer.eval()
    assert layer(x) is x


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: dnn.GaussianDropout(1.0), ValueError, r"p must be in \[0, 1\), got 1.0"),
        (lambda: dnn.AlphaDropout(-0.1), ValueError, "p must be in"),
        (lambda: dnn.ChannelDropout("0.1"), TypeError, "p must be a real number"),
        (lambda: dnn.DropPath(0.1, mode="rows"), ValueError, "mode must be one of"),
        (lambda: dnn.DropBlock2d(0.1, block_size=0), ValueError, r"block_size must be in \[1, inf\], got 0"),
        (lambda: dnn.LockedDropout(0.1, time_dim=1.0), TypeError, "time_dim must be an int"),
        (lambda: dnn.DropConnectLinear(0, 3), ValueError, r"in_features must be in \[1, inf\], got 0"),
        (lambda: dnn.EmbeddingDropout(10, 4, p=2), ValueError, "p must be in"),
        (lambda: dnn.SeededDropout(0.1, seed=-3), ValueError, "seed must be in"),
        (lambda: dnn.ConcreteDropout(init_p=0.0), ValueError, r"init_p must be in \(0, 1\), got 0.0"),
        (lambda: dnn.ConcreteDropout(temperature=-1), ValueError, "temperature must be > 0, got -1"),
    ],
)
def test_modules_validate_at_construction(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_dropconnect_linear_module():
    torch.manual_seed(0)
    layer = dnn.DropConnectLinear(6, 4, p=0.5)
    assert repr(layer) == "DropConnectLinear(in_features=6, out_features=4, p=0.5, bias=True)"
    assert layer.weight.shape == (4, 6) and layer.bias.shape == (4,)
    x = torch.randn(3, 6)
    layer.eval()
    assert torch.equal(layer(x), torch.nn.functional.linear(x, layer.weight, layer.bias))
    layer.train()
    layer(x).sum().backward()
    assert layer.weight.grad is not None
    assert dnn.DropConnectLinear(6, 4, bias=False).bias is None


def test_embedding_dropout_module():
    layer = dnn.EmbeddingDropout(20, 5, p=0.1)
    assert repr(layer) == "EmbeddingDropout(20, 5, p=0.1)"
    idx = torch.tensor([[0, 3, 19]])
    assert layer(idx).shape == (1, 3, 5)
    layer.eval()
    assert torch.equal(layer(idx), layer.weight[idx])


def test_seeded_dropout_module_new_mask_each_call_and_resumable():
    x = torch.ones(1000)
    a = dnn.SeededDropout(0.5, seed=10)
    first, second = a(x), a(x)
    assert not torch.equal(first, second)
    b = dnn.SeededDropout(0.5, seed=10)
    b.load_state_dict(a.state_dict())  # the call counter travels with the state dict
    assert torch.equal(b(x), a(x))


def test_concrete_dropout_learns_p_through_the_regulariser():
    torch.manual_seed(0)
    layer = dnn.ConcreteDropout(init_p=0.5, dropout_regularizer=1.0)
    assert repr(layer) == "ConcreteDropout(p=0.5, temperature=0.1)"
    weight = torch.zeros(3, 8)
    # with a zero weight term the regulariser is lambda_p K (p log p + (1-p) log(1-p)),
    # the negative entropy, at its minimum at p = 1/2: zero gradient there
    reg = layer.regularizer(weight)
    (grad,) = torch.autograd.grad(reg, layer.p_logit)
    assert abs(grad.item()) < 1e-6
    assert torch.isclose(reg, torch.tensor(8 * 2 * 0.5 * math.log(0.5)))
    y = layer(torch.ones(100))
    y.sum().backward()
    assert layer.p_logit.grad is not None
    layer.eval()
    x = torch.ones(4)
    assert layer(x) is x

"""Tests for dropoutlab.nn: thin modules that follow model.train() / model.eval()."""

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

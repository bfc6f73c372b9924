"""dropoutlab.data: offline loaders, seeded splits, training-set standardisation."""

import pytest
import torch

from dropoutlab import data


def test_digits_split_is_seeded_disjoint_and_standardised():
    a, b = data.digits(n_train=300, seed=1), data.digits(n_train=300, seed=1)
    assert torch.equal(a.X_train, b.X_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.X_train, data.digits(n_train=300, seed=2).X_train)
    assert a.X_train.shape == (300, 64) and a.X_test.shape == (1497, 64)
    # standardised with training statistics: per-pixel mean 0 on the training part
    assert a.X_train.mean(0).abs().max() < 1e-5
    assert set(a.y_train.unique().tolist()) <= set(range(10))


def test_constant_training_features_are_centred_not_blown_up():
    # with 30 training digits several border pixels are constant (all zero)
    split = data.digits(n_train=30, seed=0)
    constant = split.X_train.std(0) == 0
    assert constant.any()
    # the test values of those pixels stay on the scale of the raw pixels (0..16)
    assert split.X_test[:, constant].abs().max() <= 16


def test_diabetes_target_round_trips():
    split = data.diabetes(seed=0)
    from sklearn.datasets import load_diabetes

    original = torch.as_tensor(load_diabetes().target, dtype=torch.float64)
    restored = torch.cat([split.y_train, split.y_test]).double() * split.y_std + split.y_mean
    assert torch.allclose(restored.sort().values, original.sort().values, atol=1e-3)


def test_breast_cancer_shapes():
    split = data.breast_cancer(n_train=100)
    assert split.X_train.shape == (100, 30) and split.X_test.shape == (469, 30)


def test_gap_regression_leaves_the_gap_empty():
    x, y = data.gap_regression(n=500, gap=(-1.0, 1.5), seed=3)
    assert x.shape == y.shape == (500, 1)
    assert ((x < -1.0) | (x > 1.5)).all() and ((x >= -4) & (x <= 4)).all()
    assert torch.equal(x, data.gap_regression(n=500, gap=(-1.0, 1.5), seed=3)[0])


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: data.digits(n_train=0), ValueError, r"n_train must be in \[1, 1796\], got 0"),
        (lambda: data.digits(n_train=2.5), TypeError, "n_train must be an int"),
        (lambda: data.diabetes(test_fraction=1.5), ValueError, "test_fraction must be in"),
        (lambda: data.gap_regression(gap=(2.0, 1.0)), ValueError, "gap must satisfy"),
        (lambda: data.gap_regression(noise=-1.0), ValueError, "noise must be >= 0, got -1.0"),
    ],
)
def test_bad_arguments(call, error, message):
    with pytest.raises(error, match=message):
        call()

"""dropoutlab.train: the shared training loop."""

import pytest
import torch

from dropoutlab.nn import Dropout
from dropoutlab.train import evaluate, fit


def linear_problem():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 4, generator=g)
    return X, X @ torch.tensor([[1.0], [-1.0], [2.0], [0.0]])


def test_fit_learns_a_linear_map_and_leaves_eval_mode():
    X, y = linear_problem()
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    history = fit(model, X, y, epochs=150, lr=0.05, X_test=X, y_test=y)
    assert len(history.train_loss) == len(history.test_loss) == 150
    assert history.test_loss[-1] < 1e-3 < history.test_loss[0]
    assert not model.training


def test_fit_is_reproducible_with_seeds():
    X, y = linear_problem()

    def run():
        torch.manual_seed(1)
        model = torch.nn.Sequential(torch.nn.Linear(4, 16), Dropout(0.3), torch.nn.Linear(16, 1))
        return fit(model, X, y, epochs=5, seed=7).train_loss

    assert run() == run()


def test_classification_history_has_accuracy():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(300, 2, generator=g)
    y = (X[:, 0] > 0).long()
    torch.manual_seed(0)
    history = fit(torch.nn.Linear(2, 2), X, y, loss="cross_entropy", epochs=30, lr=0.05, X_test=X, y_test=y)
    assert history.test_accuracy[-1] > 0.95
    loss, acc = evaluate(torch.nn.Linear(2, 2), X, y, "cross_entropy")
    assert 0 <= acc <= 1


def test_penalty_is_added_to_the_loss():
    X, y = linear_problem()
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    # a huge L2 penalty pins the weights near zero
    fit(model, X, y, epochs=50, lr=0.05, penalty=lambda: 1e3 * model.weight.square().sum())
    assert model.weight.abs().max() < 0.05


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"epochs": 0}, ValueError, r"epochs must be in \[1, inf\], got 0"),
        ({"lr": 0.0}, ValueError, "lr must be > 0, got 0.0"),
        ({"loss": "hinge"}, ValueError, "loss must be one of 'mse', 'cross_entropy'"),
        ({"optimizer": "lbfgs"}, ValueError, "optimizer must be 'adam' or 'sgd', got 'lbfgs'"),
        ({"X_test": torch.ones(2, 4)}, ValueError, "X_test and y_test must be given together"),
    ],
)
def test_bad_arguments(kwargs, error, message):
    X, y = linear_problem()
    with pytest.raises(error, match=message):
        fit(torch.nn.Linear(4, 1), X, y, **kwargs)


def test_mismatched_rows():
    with pytest.raises(ValueError, match="X and y must have the same, non-zero number of rows, got 3 and 2"):
        fit(torch.nn.Linear(1, 1), torch.ones(3, 1), torch.ones(2, 1))


def test_mse_shape_mismatch_is_named_not_broadcast():
    X, y = linear_problem()
    with pytest.raises(ValueError, match=r"output and y must have the same shape, got \(64, 1\) and \(64,\)"):
        fit(torch.nn.Linear(4, 1), X, y[:, 0])

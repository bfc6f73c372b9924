"""Offline data sets for the chapters: scikit-learn's bundled sets and synthetic data.

Nothing here downloads. Every loader takes a ``seed`` for its split (a
``torch.Generator``, never the global RNG) and returns float tensors on the
requested device, standardised with statistics of the training part only.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ._validation import check_int, check_probability

__all__ = ["Split", "digits", "diabetes", "breast_cancer", "gap_regression"]


class Split(NamedTuple):
    """A train/test split; ``y_mean`` and ``y_std`` undo a standardised regression target."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    y_mean: float = 0.0
    y_std: float = 1.0


def _split(X, y, n_train, seed, device, dtype, *, standardise_y: bool) -> Split:
    X = torch.as_tensor(X, dtype=torch.float64)
    y = torch.as_tensor(y)
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))
    train, test = order[:n_train], order[n_train:]
    mean, std = X[train].mean(0), X[train].std(0)
    # A feature constant on the training part (a border pixel of a small digits
    # sample) is only centred: dividing by its tiny std would blow the test values up.
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    X = (X - mean) / std
    y_mean, y_std = 0.0, 1.0
    if standardise_y:
        y = y.to(torch.float64)
        y_mean, y_std = y[train].mean().item(), y[train].std().item()
        y = (y - y_mean) / y_std
        y = y.to(dtype)
    X = X.to(dtype)
    return Split(X[train].to(device), y[train].to(device), X[test].to(device), y[test].to(device), y_mean, y_std)


def _n_train(n_train, test_fraction, total) -> int:
    if n_train is None:
        test_fraction = check_probability(test_fraction, "test_fraction")
        return round(total * (1 - test_fraction))
    return check_int(n_train, "n_train", low=1, high=total - 1)


def digits(n_train: int | None = None, *, test_fraction: float = 0.3, seed: int = 0, device=None,
           dtype: torch.dtype = torch.float32) -> Split:
    """scikit-learn's 8x8 handwritten digits: 1,797 images, 64 pixels, 10 classes.

    Args:
        n_train: training examples (the rest is the test set); a small value
            gives the overfitting regime. Default: ``1 - test_fraction`` of the data.
        test_fraction: used when ``n_train`` is None.
        seed: seed of the random split.
        device: where the tensors go.
        dtype: floating dtype of the inputs.

    Returns:
        A :class:`Split` with inputs ``(n, 64)`` standardised per pixel with the
        training statistics and integer labels ``(n,)``.

    Example:
        >>> from dropoutlab.data import digits
        >>> split = digits(n_train=500)
        >>> split.X_train.shape, split.X_test.shape, split.y_train.dtype
        (torch.Size([500, 64]), torch.Size([1297, 64]), torch.int64)
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    n = _n_train(n_train, test_fraction, len(bunch.target))
    return _split(bunch.data, bunch.target, n, seed, device, dtype, standardise_y=False)


def diabetes(n_train: int | None = None, *, test_fraction: float = 0.1, seed: int = 0, device=None,
             dtype: torch.dtype = torch.float32) -> Split:
    """scikit-learn's diabetes regression set: 442 patients, 10 features, a scalar target.

    Inputs and target are standardised with the training statistics; the
    returned ``y_mean`` and ``y_std`` map predictions back to the original units.

    Example:
        >>> from dropoutlab.data import diabetes
        >>> split = diabetes(seed=1)
        >>> split.X_train.shape, split.X_test.shape, round(split.y_train.mean().item(), 6)
        (torch.Size([398, 10]), torch.Size([44, 10]), 0.0)
    """
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes()
    n = _n_train(n_train, test_fraction, len(bunch.target))
    return _split(bunch.data, bunch.target, n, seed, device, dtype, standardise_y=True)


def breast_cancer(n_train: int | None = None, *, test_fraction: float = 0.3, seed: int = 0, device=None,
                  dtype: torch.dtype = torch.float32) -> Split:
    """scikit-learn's breast-cancer set: 569 tumours, 30 features, 2 classes.

    Example:
        >>> from dropoutlab.data import breast_cancer
        >>> breast_cancer().X_train.shape
        torch.Size([398, 30])
    """
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    n = _n_train(n_train, test_fraction, len(bunch.target))
    return _split(bunch.data, bunch.target, n, seed, device, dtype, standardise_y=False)


def gap_regression(n: int = 200, *, noise: float = 0.1, gap: tuple[float, float] = (-1.0, 1.0),
                   low: float = -4.0, high: float = 4.0, seed: int = 0, device=None,
                   dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    r"""A 1-D regression set with no data in ``gap``: :math:`y = \sin(x) + 0.3 x + \varepsilon`.

    ``x`` is uniform on ``[low, high]`` outside ``gap``, and
    :math:`\varepsilon \sim \mathcal{N}(0, \text{noise}^2)`. Uncertainty
    estimates should grow inside the gap and beyond ``[low, high]``.

    Returns:
        ``(x, y)``, each of shape ``(n, 1)``.

    Example:
        >>> from dropoutlab.data import gap_regression
        >>> x, y = gap_regression(n=100)
        >>> x.shape, bool(((x < -1) | (x > 1)).all())
        (torch.Size([100, 1]), True)
    """
    check_int(n, "n", low=1)
    a, b = gap
    if not low < a < b < high:
        raise ValueError(f"gap must satisfy low < gap[0] < gap[1] < high, got gap={gap}, low={low}, high={high}")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    g = torch.Generator().manual_seed(seed)
    # draw on the two pieces in proportion to their lengths
    u = torch.rand(n, 1, generator=g, dtype=torch.float64) * ((a - low) + (high - b))
    x = torch.where(u < a - low, low + u, b + (u - (a - low)))
    y = torch.sin(x) + 0.3 * x + noise * torch.randn(n, 1, generator=g, dtype=torch.float64)
    return x.to(device=device, dtype=dtype), y.to(device=device, dtype=dtype)

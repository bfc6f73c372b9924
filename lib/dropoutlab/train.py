"""The one small training loop the book uses: mini-batch Adam or SGD, seeded, with a history.

Chapters call :func:`fit` instead of writing their own loops, so every
experiment trains the same way and differs only where the text says it does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as torch_F
from torch import nn

from ._validation import check_int, check_tensor

__all__ = ["History", "fit", "evaluate", "accuracy"]

_LOSSES = {"mse": torch_F.mse_loss, "cross_entropy": torch_F.cross_entropy}


@dataclass
class History:
    """Per-epoch records of :func:`fit`: losses, and test loss and accuracy when a test set is given."""

    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows whose arg-max matches the integer label."""
    return (logits.argmax(-1) == y).double().mean().item()


def _loss_fn(loss) -> Callable:
    if callable(loss):
        return loss
    if loss not in _LOSSES:
        raise ValueError(f"loss must be one of {', '.join(map(repr, _LOSSES))} or a callable, got {loss!r}")
    return _LOSSES[loss]


@torch.no_grad()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, loss="mse") -> tuple[float, float | None]:
    """Loss (and accuracy, for cross-entropy) of ``model`` in evaluation mode; restores its mode."""
    was_training = model.training
    model.eval()
    try:
        out = model(X)
        value = _loss_fn(loss)(out, y).item()
        acc = accuracy(out, y) if loss == "cross_entropy" else None
    finally:
        model.train(was_training)
    return value, acc


def fit(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    loss="mse",
    epochs: int = 100,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    optimizer: str = "adam",
    seed: int = 0,
    X_test: torch.Tensor | None = None,
    y_test: torch.Tensor | None = None,
    penalty: Callable[[], torch.Tensor] | None = None,
) -> History:
    """Train ``model`` on ``(X, y)`` with mini-batches, and return its :class:`History`.

    The batches are shuffled by a ``torch.Generator`` seeded with ``seed``, so a
    run is reproducible without touching the global RNG (dropout layers still
    draw from torch's default generator: seed it with :func:`dropoutlab.setup`).
    The model is in training mode while it trains and in evaluation mode when
    the test set is scored, after every epoch.

    Args:
        model: the network; trained in place.
        X: inputs, shape ``(n, *)``, on the model's device.
        y: targets, shape ``(n, *)``.
        loss: ``"mse"``, ``"cross_entropy"`` or a callable ``loss(output, target)``.
        epochs: passes over the data, >= 1.
        batch_size: rows per step, >= 1.
        lr: learning rate, > 0.
        weight_decay: L2 coefficient (coupled, as ``torch.optim``'s), >= 0.
        optimizer: ``"adam"`` or ``"sgd"``.
        seed: seed of the batch order.
        X_test, y_test: optional test set, scored after every epoch.
        penalty: optional callable returning a term added to every step's loss
            (e.g. Concrete dropout's regulariser).

    Returns:
        The :class:`History`; ``train_loss`` averages the epoch's batch losses.
        The model is left in evaluation mode.

    Example:
        >>> import torch
        >>> from dropoutlab.train import fit
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> X = torch.randn(256, 3); y = X @ torch.tensor([[1.0], [-2.0], [0.5]])
        >>> history = fit(torch.nn.Linear(3, 1), X, y, epochs=200, lr=0.05)
        >>> history.train_loss[-1] < 1e-3
        True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_tensor(X, "X", floating=False)
    check_tensor(y, "y", floating=False)
    if len(X) != len(y) or len(X) == 0:
        raise ValueError(f"X and y must have the same, non-zero number of rows, got {len(X)} and {len(y)}")
    check_int(epochs, "epochs", low=1)
    check_int(batch_size, "batch_size", low=1)
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    if (X_test is None) != (y_test is None):
        raise ValueError("X_test and y_test must be given together")
    loss_fn = _loss_fn(loss)
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)
    else:
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")

    g = torch.Generator().manual_seed(seed)
    history = History()
    n = len(X)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(n, generator=g).to(X.device)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            out = model(X[idx])
            if loss == "mse" and out.shape != y[idx].shape:
                # mse_loss would broadcast (n, 1) against (n,) into an (n, n) loss: a silent bug
                raise ValueError(
                    f"with loss='mse' the model's output and y must have the same shape, "
                    f"got {tuple(out.shape)} and {tuple(y[idx].shape)}"
                )
            batch_loss = loss_fn(out, y[idx])
            step_loss = batch_loss + penalty() if penalty is not None else batch_loss
            opt.zero_grad(set_to_none=True)
            step_loss.backward()
            opt.step()
            total += batch_loss.item() * len(idx)
        history.train_loss.append(total / n)
        if X_test is not None:
            test_loss, test_acc = evaluate(model, X_test, y_test, loss)
            history.test_loss.append(test_loss)
            if test_acc is not None:
                history.test_accuracy.append(test_acc)
    model.eval()
    return history

r"""Closed forms that the chapters check by simulation.

Notation follows the course: a unit with weights :math:`w`, input :math:`x`
and bias :math:`b` computes :math:`z = w^\top x + b`. Dropout on its inputs
multiplies :math:`x_i` by a mask :math:`m_i \sim \mathrm{Bernoulli}(q)`,
:math:`q = 1 - p`, giving :math:`z_{\text{drop}} = \sum_i m_i w_i x_i + b`.
"""

from __future__ import annotations

import torch

from ._validation import check_flag, check_probability, check_tensor

__all__ = ["preactivation_moments", "unscaled_bias_variance"]


def _check_weights_and_input(w, x) -> None:
    check_tensor(w, "w")
    check_tensor(x, "x")
    if w.shape != x.shape or w.dim() != 1:
        raise ValueError(
            f"w and x must be 1-D tensors of the same length, got shapes {tuple(w.shape)} and {tuple(x.shape)}"
        )


def preactivation_moments(
    w: torch.Tensor, x: torch.Tensor, b: float = 0.0, p: float = 0.5, *, inverted: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Mean and variance of a unit's pre-activation under input dropout.

    .. math::

        \text{not inverted:}\quad
        \mathbb{E}[z_{\text{drop}}] = q\, w^\top x + b,\qquad
        \operatorname{Var}[z_{\text{drop}}] = p(1-p) \sum_i w_i^2 x_i^2

        \text{inverted } (m_i / q):\quad
        \mathbb{E}[z_{\text{drop}}] = w^\top x + b,\qquad
        \operatorname{Var}[z_{\text{drop}}] = \frac{p}{1-p} \sum_i w_i^2 x_i^2

    Args:
        w: weights, shape :math:`(n,)`.
        x: one input, shape :math:`(n,)`.
        b: bias.
        p: drop probability, in [0, 1] (in [0, 1) when ``inverted``).
        inverted: whether kept inputs are rescaled by :math:`1/q`.

    Returns:
        ``(mean, variance)``, two 0-d tensors in ``w``'s dtype.

    Example:
        >>> import torch
        >>> from dropoutlab.theory import preactivation_moments
        >>> preactivation_moments(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 1.0]), b=0.5, p=0.5)
        (tensor(3.), tensor(3.2500))
    """
    _check_weights_and_input(w, x)
    check_flag(inverted, "inverted")
    p = check_probability(p, "p", allow_one=not inverted)
    q = 1.0 - p
    energy = (w * x).square().sum()
    if inverted:
        return w @ x + b, energy * (p / q)
    return q * (w @ x) + b, energy * (p * q)


def unscaled_bias_variance(w: torch.Tensor, x: torch.Tensor, p: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Squared bias and variance of the unscaled dropout predictor of :math:`f(x) = w^\top x`.

    Used as an estimate of :math:`f(x)`, the training-phase sum
    :math:`\hat f(x) = \sum_i m_i w_i x_i` has

    .. math::

        \bigl(\mathbb{E}[\hat f] - f\bigr)^2 = p^2 f(x)^2, \qquad
        \operatorname{Var}[\hat f] = p(1-p) \sum_i w_i^2 x_i^2,

    and its mean squared error is their sum.

    Args:
        w: weights, shape :math:`(n,)`.
        x: one input, shape :math:`(n,)`.
        p: drop probability, in [0, 1].

    Returns:
        ``(squared_bias, variance)``, two 0-d tensors.

    Example:
        >>> import torch
        >>> from dropoutlab.theory import unscaled_bias_variance
        >>> unscaled_bias_variance(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 1.0]), p=0.5)
        (tensor(6.2500), tensor(3.2500))
    """
    _check_weights_and_input(w, x)
    p = check_probability(p, "p")
    f = w @ x
    return (p * f) ** 2, (w * x).square().sum() * (p * (1.0 - p))

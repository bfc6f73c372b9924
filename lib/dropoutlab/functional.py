r"""Dropout as functions: the arithmetic of every variant lives here.

The modules in :mod:`dropoutlab.nn` are thin wrappers around these functions,
in the same order. Throughout, ``p`` is the **drop** probability, as in
:func:`torch.nn.functional.dropout`, and :math:`q = 1 - p` is the keep
probability. Randomness comes only from the ``generator`` argument (or torch's
default generator when it is ``None``); nothing here reseeds a global RNG.
"""

from __future__ import annotations

import torch

from ._validation import check_flag, check_generator, check_probability, check_tensor

__all__ = ["dropout"]


def _uniform_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Uniform draws on [0, 1) with ``x``'s shape and device.

    The draws are float32 (float64 for float64 inputs) even when ``x`` is
    float16 or bfloat16: bfloat16 has 8 bits of mantissa, so comparing a
    bfloat16 uniform with ``p`` would bias the keep probability.
    """
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    return torch.rand(x.shape, generator=generator, device=x.device, dtype=dtype)


def _zeros_keeping_graph(x: torch.Tensor) -> torch.Tensor:
    """Zeros shaped like ``x`` whose gradient with respect to ``x`` is exactly zero.

    ``x * 0`` would turn an infinite input into NaN; ``masked_fill`` writes
    the zeros instead, and its backward passes a zero gradient.
    """
    return x.masked_fill(torch.ones((), dtype=torch.bool, device=x.device), 0.0)


def dropout(
    x: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    *,
    inverted: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Zero each element of ``x`` independently with probability ``p``.

    With a mask :math:`m_i \sim \mathrm{Bernoulli}(q)`, :math:`q = 1 - p`,
    drawn independently for every element:

    .. math::

        \text{inverted (default):}\quad
        y_i = \begin{cases} m_i x_i / q & \text{training} \\ x_i & \text{evaluation} \end{cases}
        \qquad
        \text{not inverted:}\quad
        y_i = \begin{cases} m_i x_i & \text{training} \\ q\, x_i & \text{evaluation} \end{cases}

    Both schemes make the evaluation output equal to the training output in
    expectation, :math:`\mathbb{E}[y_i] = x_i` (inverted) or :math:`q x_i` (not
    inverted). The inverted scheme puts the correction in training, so
    evaluation is the plain network.

    Args:
        x: input tensor of floating dtype, any shape. It is never modified.
        p: drop probability, in [0, 1].
        training: apply the training-phase mask if True, the evaluation rule if False.
        inverted: rescale kept elements by :math:`1/q` during training (True,
            as :func:`torch.nn.functional.dropout`), or scale by :math:`q` at
            evaluation instead (False, the original two-phase scheme).
        generator: source of the mask's randomness, on ``x``'s device.

    Shape:
        Input: :math:`(*)`, any shape. Output: the same shape.

    Returns:
        A tensor like ``x``. When ``p == 0``, or when ``training`` is False and
        ``inverted`` is True, it is ``x`` itself. When ``p == 1`` in training
        it is all zeros, with a zero (never NaN) gradient.

    Raises:
        TypeError: ``x`` is not a floating-point tensor, ``p`` is not a real
            number, ``training``/``inverted`` are not bools, or ``generator``
            is not a ``torch.Generator``.
        ValueError: ``p`` is outside [0, 1] or NaN, or ``generator`` is on
            another device type than ``x``.

    Example:
        >>> import torch
        >>> from dropoutlab.functional import dropout
        >>> x = torch.ones(10_000)
        >>> y = dropout(x, p=0.2, generator=torch.Generator().manual_seed(0))
        >>> sorted(set(y.tolist()))  # dropped units are 0, kept ones 1 / q = 1.25
        [0.0, 1.25]
        >>> round((y == 0).float().mean().item(), 2)  # close to p
        0.2
        >>> dropout(x, p=0.2, training=False) is x
        True
        >>> dropout(x, p=0.2, training=False, inverted=False)[:3]
        tensor([0.8000, 0.8000, 0.8000])
    """
    check_tensor(x, "x")
    p = check_probability(p, "p")
    check_flag(training, "training")
    check_flag(inverted, "inverted")
    check_generator(generator, x)

    q = 1.0 - p
    if not training:
        if inverted or p == 0.0:
            return x
        return _zeros_keeping_graph(x) if p == 1.0 else x * q
    if p == 0.0:
        return x
    if p == 1.0:
        return _zeros_keeping_graph(x)

    # P(U >= p) = q for U uniform on [0, 1). masked_fill saves only the
    # one-byte boolean mask for backward, and writes zeros rather than
    # multiplying, so an infinite dropped input gives 0, not NaN.
    dropped = _uniform_like(x, generator) < p
    y = x.masked_fill(dropped, 0.0)
    return y * (1.0 / q) if inverted else y

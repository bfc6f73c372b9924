"""Element-wise dropout: every element gets its own, independent noise."""

from __future__ import annotations

import math

import torch

from .. import _hashmask
from .._validation import check_flag, check_generator, check_int, check_tensor
from ._common import _draw_dtype, _dropped, _prelude, _zeros_keeping_graph

__all__ = ["dropout", "gaussian_dropout", "alpha_dropout", "seeded_dropout", "concrete_dropout"]

# Up to this many elements, dropout draws its mask with torch.rand; above, with
# the hashed mask, whose fixed cost (a dozen kernel launches) then pays off.
_SMALL_NUMEL = 2**15


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
        ValueError: ``p`` is outside [0, 1] or NaN, ``generator`` is on
            another device type than ``x``, or ``x`` has :math:`2^{31}` elements or more.

    Note:
        Like :func:`torch.nn.functional.dropout`, a dropped element is
        multiplied by 0, so a dropped ``inf`` becomes NaN. Tensors of more
        than :math:`2^{15}` elements draw their mask as a hash of each
        element's index, keyed by two integers from ``generator`` (faster on
        the CPU); smaller ones use ``torch.rand``. Either way backward keeps
        only the boolean mask, 1 byte per element.

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
    p = _prelude(x, p, training, generator)
    check_flag(inverted, "inverted")
    if x.numel() > _hashmask.MAX_NUMEL:
        raise ValueError(f"x must have at most {_hashmask.MAX_NUMEL} elements, got {x.numel()}")

    q = 1.0 - p
    if not training:
        if inverted or p == 0.0:
            return x
        return _zeros_keeping_graph(x) if p == 1.0 else x * q
    if p == 0.0:
        return x
    if p == 1.0:
        return _zeros_keeping_graph(x)
    scale = 1.0 / q if inverted else 1.0
    if x.numel() <= _SMALL_NUMEL:
        # Few elements: four kernels beat the hash's dozen. Multiplying by the
        # boolean mask makes autograd save just that mask, 1 byte per element.
        y = x * (torch.rand(x.shape, generator=generator, device=x.device, dtype=_draw_dtype(x)) >= p)
        return y * scale if inverted else y
    # Many elements: the mask is a keyed hash of each element's index (see
    # _hashmask), with two int32 keys drawn from the generator; backward
    # reuses the boolean mask (1 byte per element).
    keys = _hashmask.random_keys(generator, x.device)
    return _hashmask.HashDropout.apply(x, p, scale, keys, True)


def gaussian_dropout(
    x: torch.Tensor, p: float = 0.5, training: bool = True, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    r"""Multiply ``x`` by Gaussian noise with the mean and variance of inverted dropout.

    .. math::

        y_i = x_i\, \varepsilon_i, \qquad \varepsilon_i \sim \mathcal{N}\!\left(1, \frac{p}{1-p}\right)

    The noise has the first two moments of the inverted mask :math:`m_i / q`
    (mean 1, variance :math:`p / q` with :math:`q = 1 - p`), the continuous
    analogue of dropout in :cite:t:`srivastava2014dropout`.

    Args:
        x: input of floating dtype, any shape. It is never modified.
        p: drop probability of the dropout it imitates, in [0, 1).
        training: add noise if True; return ``x`` if False.
        generator: source of the noise, on ``x``'s device.

    Shape:
        Input :math:`(*)`; output the same shape.

    Returns:
        ``x`` itself when ``p == 0`` or not training, else a new tensor.

    Raises:
        TypeError: bad types, as for :func:`dropout`.
        ValueError: ``p`` outside [0, 1) (the variance is infinite at 1).

    Example:
        >>> import torch
        >>> from dropoutlab.functional import gaussian_dropout
        >>> y = gaussian_dropout(torch.ones(100_000), p=0.5, generator=torch.Generator().manual_seed(0))
        >>> round(y.mean().item(), 1), round(y.var().item(), 1)  # 1 and p / q = 1
        (1.0, 1.0)
    """
    p = _prelude(x, p, training, generator, allow_one=False)
    if not training or p == 0.0:
        return x
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=_draw_dtype(x))
    return x * noise.mul_(math.sqrt(p / (1.0 - p))).add_(1.0).to(x.dtype)


# SELU's negative saturation value, -lambda * alpha (Klambauer et al. 2017).
_SELU_SATURATION = -1.0507009873554804934193349852946 * 1.6732632423543772848170429916717


def alpha_dropout(
    x: torch.Tensor, p: float = 0.5, training: bool = True, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    r"""Dropout for self-normalising (SELU) networks: keeps zero mean and unit variance.

    Dropped units are set to SELU's saturation value :math:`\alpha' = -\lambda\alpha`
    instead of 0, then an affine map restores the moments
    :cite:p:`klambauer2017self`:

    .. math::

        y_i = a\,\bigl(m_i x_i + (1 - m_i)\,\alpha'\bigr) + b, \qquad
        a = \bigl(q + \alpha'^2 q p\bigr)^{-1/2}, \quad b = -a\, p\, \alpha' ,

    with :math:`m_i \sim \mathrm{Bernoulli}(q)`, :math:`q = 1 - p`. For
    standard-normal inputs, :math:`y` has mean 0 and variance 1.

    Args:
        x: input of floating dtype, any shape. It is never modified.
        p: drop probability, in [0, 1].
        training: apply the noise if True; return ``x`` if False.
        generator: source of the mask, on ``x``'s device.

    Shape:
        Input :math:`(*)`; output the same shape.

    Returns:
        ``x`` itself when ``p == 0`` or not training; zeros (zero gradient) when ``p == 1``.

    Raises:
        TypeError, ValueError: bad arguments, as for :func:`dropout`.

    Example:
        >>> import torch
        >>> from dropoutlab.functional import alpha_dropout
        >>> g = torch.Generator().manual_seed(0)
        >>> y = alpha_dropout(torch.randn(200_000, generator=g), p=0.2, generator=g)
        >>> abs(y.mean().item()) < 0.01, round(y.std().item(), 1)
        (True, 1.0)
    """
    p = _prelude(x, p, training, generator)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return _zeros_keeping_graph(x)
    q = 1.0 - p
    a = (q + _SELU_SATURATION**2 * q * p) ** -0.5
    b = -a * p * _SELU_SATURATION
    dropped = _dropped(x.shape, p, x, generator)
    return x.masked_fill(dropped, _SELU_SATURATION) * a + b


def seeded_dropout(x: torch.Tensor, p: float = 0.5, seed: int = 0, training: bool = True) -> torch.Tensor:
    r"""Inverted dropout whose mask is a pure function of ``seed`` and each element's index.

    .. math::

        y_i = \frac{m_i}{q}\, x_i, \qquad
        m_i = \bigl[\, h(\text{seed}, i) \ge p \cdot 2^{24} \,\bigr]

    where :math:`i` is the element's row-major index and :math:`h` a 32-bit
    integer hash keeping 24 bits, so the drop rate is :math:`p` to within
    :math:`2^{-25}`. The same seed gives the same mask on CPU and GPU, whatever
    the state of any random generator, and backward recomputes the mask
    instead of saving it: no per-element tensor is kept for backward.

    Args:
        x: input of floating dtype, fewer than :math:`2^{31}` elements. It is never modified.
        p: drop probability, in [0, 1].
        seed: an int in :math:`[0, 2^{63})`.
        training: apply the mask if True; return ``x`` if False.

    Shape:
        Input :math:`(*)`; output the same. The mask depends on the shape
        only through the element count, and not on the memory layout.

    Returns:
        ``x`` itself when ``p == 0`` or not training; zeros when ``p == 1``.

    Raises:
        TypeError: bad types, or ``seed`` not an int.
        ValueError: bad ``p``, ``seed`` out of range, or too many elements.

    Example:
        >>> import torch
        >>> from dropoutlab.functional import seeded_dropout
        >>> x = torch.ones(8)
        >>> torch.equal(seeded_dropout(x, 0.5, seed=3), seeded_dropout(x, 0.5, seed=3))
        True
    """
    p = _prelude(x, p, training, None)
    check_int(seed, "seed", low=0, high=2**63 - 1)
    if x.numel() > _hashmask.MAX_NUMEL:
        raise ValueError(f"x must have at most {_hashmask.MAX_NUMEL} elements, got {x.numel()}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return _zeros_keeping_graph(x)
    return _hashmask.HashDropout.apply(x, p, 1.0 / (1.0 - p), _hashmask.split_seed(seed), False)


def concrete_dropout(
    x: torch.Tensor,
    p: torch.Tensor,
    temperature: float = 0.1,
    training: bool = True,
    *,
    eps: float = 1e-7,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Dropout with a relaxed, differentiable mask, so that ``p`` can be learned.

    The Bernoulli drop indicator is replaced by its Concrete relaxation
    :cite:p:`gal2017concrete`, with :math:`u \sim U(0, 1)` and temperature
    :math:`t`:

    .. math::

        \tilde z_i = \sigma\!\left(\frac{\log p - \log(1-p) + \log u_i - \log(1 - u_i)}{t}\right),
        \qquad y_i = \frac{(1 - \tilde z_i)\, x_i}{1 - p}

    As :math:`t \to 0`, :math:`\tilde z_i` becomes a Bernoulli(:math:`p`) drop
    indicator and :math:`y` inverted dropout.

    Args:
        x: input of floating dtype, any shape. It is never modified.
        p: drop probability, a 0-d tensor in (0, 1), usually ``sigmoid`` of a parameter.
        temperature: relaxation temperature, > 0.
        training: apply the relaxed mask if True; return ``x`` if False.
        eps: clamps ``p`` and ``u`` away from 0 and 1 inside the logarithms.
        generator: source of ``u``, on ``x``'s device.

    Shape:
        Input :math:`(*)`; output the same.

    Returns:
        ``x`` itself when not training, else the relaxed dropout of ``x``;
        gradients flow to both ``x`` and ``p``.

    Raises:
        TypeError: ``p`` not a floating tensor, or bad types as for :func:`dropout`.
        ValueError: ``p`` not 0-d, or ``temperature`` not positive.

    Example:
        >>> import torch
        >>> from dropoutlab.functional import concrete_dropout
        >>> p = torch.tensor(0.2, requires_grad=True)
        >>> y = concrete_dropout(torch.ones(1000), p, generator=torch.Generator().manual_seed(0))
        >>> y.mean().backward()
        >>> p.grad is not None
        True
    """
    check_tensor(x, "x")
    check_tensor(p, "p")
    if p.dim() != 0:
        raise ValueError(f"p must be a 0-d tensor, got shape {tuple(p.shape)}")
    check_flag(training, "training")
    check_generator(generator, x)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    if not training:
        return x
    p = p.clamp(eps, 1.0 - eps)
    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype).clamp_(eps, 1.0 - eps)
    logit = (torch.log(p) - torch.log1p(-p) + torch.log(u) - torch.log1p(-u)) / temperature
    return x * (1.0 - torch.sigmoid(logit)) / (1.0 - p)

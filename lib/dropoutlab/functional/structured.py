"""Structured dropout: one draw for a whole channel, sample, block, sequence, weight or word type."""

from __future__ import annotations

import torch
import torch.nn.functional as torch_F

from .._validation import check_choice, check_dim, check_int, check_min_dim, check_tensor
from ._common import _draw_dtype, _dropped, _mask_and_scale, _prelude, _zeros_keeping_graph
from .elementwise import dropout

__all__ = [
    "channel_dropout",
    "drop_path",
    "drop_block_gamma",
    "drop_block",
    "locked_dropout",
    "dropconnect_linear",
    "embedding_dropout",
]


def channel_dropout(
    x: torch.Tensor, p: float = 0.5, training: bool = True, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    r"""Drop whole channels: every element of a dropped ``(n, c)`` feature map is zero.

    .. math::

        y_{n c \dots} = \frac{m_{n c}}{q}\, x_{n c \dots}, \qquad m_{n c} \sim \mathrm{Bernoulli}(q)

    Neighbouring activations of a convolutional feature map are strongly
    correlated, so element-wise dropout removes little information; dropping
    the whole map does :cite:p:`tompson2015efficient`. Like
    :func:`torch.nn.functional.dropout2d`, for any number of spatial dimensions.

    Args:
        x: input of floating dtype, shape :math:`(N, C, *)`. It is never modified.
        p: drop probability of a channel, in [0, 1].
        training: apply the mask if True; return ``x`` if False.
        generator: source of the mask, on ``x``'s device.

    Shape:
        Input :math:`(N, C, *)` with at least 2 dimensions; output the same.
        The mask has shape :math:`(N, C, 1, \dots, 1)`.

    Returns:
        ``x`` itself when ``p == 0`` or not training; zeros when ``p == 1``.

    Raises:
        TypeError: bad types, as for :func:`dropout`.
        ValueError: bad ``p``, or ``x`` with fewer than 2 dimensions.

    Example:
        >>> import torch
        >>> from dropoutlab.functional import channel_dropout
        >>> y = channel_dropout(torch.ones(8, 16, 4, 4), p=0.5, generator=torch.Generator().manual_seed(0))
        >>> per_map = y.flatten(2)
        >>> bool(((per_map == 0).all(-1) | (per_map == 2).all(-1)).all())  # whole maps
        True
    """
    p = _prelude(x, p, training, generator)
    check_min_dim(x, "x", 2, "(N, C, *spatial)")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return _zeros_keeping_graph(x)
    mask_shape = x.shape[:2] + (1,) * (x.dim() - 2)
    return _mask_and_scale(x, _dropped(mask_shape, p, x, generator), 1.0 / (1.0 - p))


def drop_path(
    x: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    *,
    mode: str = "row",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Stochastic depth: drop a residual branch for whole samples, or for the whole batch.

    Applied to the output :math:`f(x)` of a residual branch, before it is
    added to the skip connection :cite:p:`huang2016deep`:

    .. math::

        y_{n \dots} = \frac{m_n}{q}\, x_{n \dots}, \qquad m_n \sim \mathrm{Bernoulli}(q)

    with one draw per sample (``mode="row"``, as timm's ``drop_path``) or one
    draw for the whole batch (``mode="batch"``, as in the original paper).

    Args:
        x: input of floating dtype, shape :math:`(N, *)`. It is never modified.
        p: drop probability, in [0, 1].
        training: apply the mask if True; return ``x`` if False.
        mode: ``"row"`` or ``"batch"``.
        generator: source of the mask, on ``x``'s device.

    Shape:
        Input :math:`(N, *)`, at least 1 dimension; output the same. The mask
        has shape :math:`(N, 1, \dots, 1)` in row mode and :math:`()` in batch mode.

    Returns:
        ``x`` itself when ``p == 0`` or not training; zeros when ``p == 1``.

    Raises:
        TypeError: bad types, as for :func:`dropout`.
        ValueError: bad ``p``, a 0-d ``x``, or ``mode`` not ``"row"``/``"batch"``.

    Example:
        >>> import torch
        >>> from dropoutlab.functional import drop_path
        >>> y = drop_path(torch.ones(6, 3), p=0.5, generator=torch.Generator().manual_seed(0))
        >>> y[:, 0].tolist() == y[:, 1].tolist() == y[:, 2].tolist()  # whole rows
        True
    """
    p = _prelude(x, p, training, generator)
    check_choice(mode, "mode", ("row", "batch"))
    check_min_dim(x, "x", 1, "(N, *)")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return _zeros_keeping_graph(x)
    mask_shape = (x.shape[0],) + (1,) * (x.dim() - 1) if mode == "row" else ()
    # a 0-d mask on the device: no host synchronisation in batch mode
    return _mask_and_scale(x, _dropped(mask_shape, p, x, generator), 1.0 / (1.0 - p))


def drop_block_gamma(p: float, block_size: int, height: int, width: int) -> float:
    r"""The seed rate :math:`\gamma` of DropBlock (Ghiasi et al. 2018, eq. 1).

    .. math::

        \gamma = \frac{p}{b^2} \cdot \frac{H W}{(H - b + 1)(W - b + 1)}

    Each seed drops a :math:`b \times b` block, and seeds are placed only where
    the block fits, so about a fraction :math:`p` of the map is dropped (less
    where blocks overlap). Clamped to [0, 1].
    """
    valid = (height - block_size + 1) * (width - block_size + 1)
    return min(1.0, p / block_size**2 * height * width / valid)


def drop_block(
    x: torch.Tensor,
    p: float = 0.1,
    block_size: int = 3,
    training: bool = True,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""DropBlock: drop contiguous ``block_size`` × ``block_size`` squares of each feature map.

    Seeds :math:`s_{nchw} \sim \mathrm{Bernoulli}(\gamma)` are drawn at every
    position where a whole block fits (its top-left corner), independently
    for each :math:`(n, c)`, and each seed drops the square below and to its
    right :cite:p:`ghiasi2018dropblock`. :math:`\gamma` is
    :func:`drop_block_gamma`, so about a fraction :math:`p` is dropped. The
    kept units are rescaled so the tensor's sum is preserved on average:

    .. math::

        y = x \odot M \cdot \frac{\operatorname{numel}(M)}{\sum M}

    Args:
        x: input of floating dtype, shape :math:`(N, C, H, W)`. It is never modified.
        p: target fraction of dropped units, in [0, 1].
        block_size: side of the square blocks, from 1 to :math:`\min(H, W)`.
            ``block_size=1`` is element-wise dropout with rate :math:`\approx p`.
        training: apply the mask if True; return ``x`` if False.
        generator: source of the seeds, on ``x``'s device.

    Shape:
        Input :math:`(N, C, H, W)`; output the same.

    Returns:
        ``x`` itself when ``p == 0`` or not training; zeros when ``p == 1``.
        If every unit happens to be dropped, zeros (never NaN).

    Raises:
        TypeError: bad types, or ``block_size`` not an int.
        ValueError: bad ``p``, ``x`` not 4-D, or ``block_size`` outside [1, min(H, W)].

    Example:
        >>> import torch
        >>> from dropoutlab.functional import drop_block
        >>> g = torch.Generator().manual_seed(0)
        >>> y = drop_block(torch.ones(64, 8, 16, 16), p=0.1, block_size=3, generator=g)
        >>> round((y == 0).float().mean().item(), 2)
        0.1
    """
    p = _prelude(x, p, training, generator)
    check_dim(x, "x", 4, "(N, C, H, W)")
    height, width = x.shape[-2:]
    check_int(block_size, "block_size", low=1, high=max(1, min(height, width)))
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return _zeros_keeping_graph(x)
    gamma = drop_block_gamma(p, block_size, height, width)
    seeds = _dropped(
        (x.shape[0], x.shape[1], height - block_size + 1, width - block_size + 1), gamma, x, generator
    )
    # Each seed marks a block's top-left corner: pad on all sides and take a
    # max over every block_size x block_size window, so a unit is dropped when
    # a seed lies up to block_size - 1 rows above and columns left of it.
    pad = block_size - 1
    dropped = torch_F.max_pool2d(
        torch_F.pad(seeds.to(_draw_dtype(x)), (pad, pad, pad, pad)), block_size, stride=1
    ).bool()
    kept = dropped.numel() - dropped.sum()
    # a 0-d tensor (no host sync), divided in float64 so that float64 inputs keep full precision
    scale = (dropped.numel() / kept.clamp_min(1).to(torch.float64)).to(x.dtype)
    return _mask_and_scale(x, dropped, scale)


def locked_dropout(
    x: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    *,
    time_dim: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Variational (locked) dropout: one mask per sequence, shared over time.

    .. math::

        y_{\dots t \dots} = \frac{m}{q} \odot x_{\dots t \dots}
        \quad\text{with the same } m \text{ for every } t

    Gal & Ghahramani's dropout for recurrent networks
    :cite:p:`gal2016theoretically`: a unit dropped at one time step is dropped
    at all of them, so the noise does not wash out the recurrent memory.

    Args:
        x: input of floating dtype, at least 2 dimensions, e.g. ``(N, T, H)``
            (batch first, ``time_dim=1``) or ``(T, N, H)`` (``time_dim=0``).
        p: drop probability, in [0, 1].
        training: apply the mask if True; return ``x`` if False.
        time_dim: the dimension the mask is shared along, in [-x.dim(), x.dim()).
        generator: source of the mask, on ``x``'s device.

    Shape:
        Input :math:`(*)` with at least 2 dimensions; output the same. The
        mask has ``x``'s shape with size 1 at ``time_dim``.

    Returns:
        ``x`` itself when ``p == 0`` or not training; zeros when ``p == 1``.

    Raises:
        TypeError: bad types, or ``time_dim`` not an int.
        ValueError: bad ``p``, ``x`` with fewer than 2 dimensions, or ``time_dim`` out of range.

    Example:
        >>> import torch
        >>> from dropoutlab.functional import locked_dropout
        >>> y = locked_dropout(torch.ones(2, 5, 4), p=0.5, generator=torch.Generator().manual_seed(0))
        >>> bool((y == y[:, :1]).all())  # every time step has the same mask
        True
    """
    p = _prelude(x, p, training, generator)
    check_min_dim(x, "x", 2, "(e.g. batch, time, features)")
    check_int(time_dim, "time_dim", low=-x.dim(), high=x.dim() - 1)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return _zeros_keeping_graph(x)
    mask_shape = list(x.shape)
    mask_shape[time_dim] = 1
    return _mask_and_scale(x, _dropped(mask_shape, p, x, generator), 1.0 / (1.0 - p))


def dropconnect_linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    p: float = 0.5,
    training: bool = True,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""A linear layer whose *weights* are dropped (DropConnect), not its inputs.

    .. math::

        y = x \left(\frac{M \odot W}{q}\right)^{\!\top} + b, \qquad M_{jk} \sim \mathrm{Bernoulli}(q)

    :cite:p:`wan2013regularization`. One inverted mask :math:`M` is drawn per
    call and shared by every row of the batch (the cheap form used by
    AWD-LSTM's weight drop); evaluation uses :math:`W` itself.

    Args:
        x: input of floating dtype, shape :math:`(*, \text{in})`. It is never modified.
        weight: weights, shape :math:`(\text{out}, \text{in})`.
        bias: optional bias, shape :math:`(\text{out},)`.
        p: drop probability of each weight, in [0, 1].
        training: drop weights if True; the plain linear layer if False.
        generator: source of the mask, on ``x``'s device.

    Shape:
        Input :math:`(*, \text{in})`; output :math:`(*, \text{out})`.

    Returns:
        The layer's output. With ``p == 1`` every weight is dropped: the output
        is the bias (zeros without one), and the weights get zero gradients.

    Raises:
        TypeError: bad types, as for :func:`dropout`.
        ValueError: bad ``p``, or shapes of ``x``, ``weight`` and ``bias`` that do not match.

    Example:
        >>> import torch
        >>> from dropoutlab.functional import dropconnect_linear
        >>> x, w = torch.ones(4, 3), torch.ones(2, 3)
        >>> dropconnect_linear(x, w, p=0.5, training=False)
        tensor([[3., 3.],
                [3., 3.],
                [3., 3.],
                [3., 3.]])
    """
    p = _prelude(x, p, training, generator)
    check_tensor(weight, "weight")
    if weight.dim() != 2 or x.dim() < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"weight must have shape (out_features, in_features) with in_features = x.shape[-1], "
            f"got x of shape {tuple(x.shape)} and weight of shape {tuple(weight.shape)}"
        )
    if bias is not None:
        check_tensor(bias, "bias")
        if bias.shape != weight.shape[:1]:
            raise ValueError(f"bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    return torch_F.linear(x, dropout(weight, p, training, generator=generator), bias)


def embedding_dropout(
    indices: torch.Tensor,
    weight: torch.Tensor,
    p: float = 0.1,
    training: bool = True,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Look up embeddings with whole rows (word types) of the matrix dropped.

    .. math::

        e_{t} = \frac{m_{i_t}}{q}\, W_{i_t}, \qquad m_v \sim \mathrm{Bernoulli}(q)
        \text{ for each row } v

    A dropped word type is zero at every position of every sequence in the
    batch :cite:p:`gal2016theoretically`, unlike dropout on the looked-up
    vectors, which would drop each occurrence separately.

    Args:
        indices: integer tensor of row indices in [0, num_embeddings), any shape.
        weight: embedding matrix of floating dtype, shape :math:`(V, D)`.
        p: drop probability of each row, in [0, 1].
        training: drop rows if True; a plain lookup if False.
        generator: source of the mask, on ``weight``'s device.

    Shape:
        Indices :math:`(*)`; output :math:`(*, D)`.

    Returns:
        The embeddings of ``indices``.

    Raises:
        TypeError: ``indices`` not an integer tensor, or bad types as for :func:`dropout`.
        ValueError: bad ``p``, ``weight`` not 2-D, or an index out of range.

    Example:
        >>> import torch
        >>> from dropoutlab.functional import embedding_dropout
        >>> w = torch.ones(10, 3)
        >>> e = embedding_dropout(torch.tensor([[1, 2, 1]]), w, p=0.5, generator=torch.Generator().manual_seed(0))
        >>> torch.equal(e[0, 0], e[0, 2])  # the same word type has the same fate
        True
    """
    p = _prelude(weight, p, training, generator)
    check_dim(weight, "weight", 2, "(num_embeddings, embedding_dim)")
    check_tensor(indices, "indices", floating=False)
    if indices.is_floating_point() or indices.is_complex() or indices.dtype == torch.bool:
        raise TypeError(f"indices must be an integer tensor, got dtype {indices.dtype}")
    if indices.numel() and (indices.min() < 0 or indices.max() >= weight.shape[0]):
        raise ValueError(
            f"indices must be in [0, {weight.shape[0]}), got values in "
            f"[{indices.min().item()}, {indices.max().item()}]"
        )
    if training and 0.0 < p:
        if p == 1.0:
            weight = _zeros_keeping_graph(weight)
        else:
            rows = _dropped((weight.shape[0], 1), p, weight, generator)
            weight = _mask_and_scale(weight, rows, 1.0 / (1.0 - p))
    return torch_F.embedding(indices, weight)

r"""Monte Carlo dropout: predictions with uncertainty, and the metrics that score them.

Averaging :math:`T` passes with dropout on approximates a Bayesian network's
predictive distribution :cite:p:`gal2016dropout`. :func:`predict` draws the
passes; the other functions measure their uncertainty and score them. Logarithms are natural.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
from torch import nn

from . import nn as dnn
from ._validation import check_int, check_tensor
from .plotting import PALETTE

__all__ = ["MAX_CHUNK_ELEMENTS", "MCPrediction", "predict", "predictive_entropy", "mutual_information",
           "expected_calibration_error", "gaussian_nll", "reliability_diagram"]

#: :func:`predict` folds at most this many input elements (``chunk * x.numel()``) into one forward, with at
#: least one pass per chunk. 2**16 keeps a CPU forward near cache size (bench/bench_mc.py: 1.1x the loop's
#: speed at N=256, T=100, against 0.85x with 2**22); on a GPU, a larger value saves kernel launches.
MAX_CHUNK_ELEMENTS = 2**16

_DROPOUT_TYPES = (nn.modules.dropout._DropoutNd, dnn.DropoutLayer)


def _shares_mask_across_rows(m: nn.Module) -> bool:
    """Whether ``m`` draws one mask per forward for the whole batch (so folding passes into rows is wrong)."""
    return isinstance(m, (dnn.DropConnectLinear, dnn.EmbeddingDropout)) or (
        isinstance(m, dnn.DropPath) and m.mode == "batch"
    )


def _check_shape(x, name: str, dim: int, layout: str) -> None:
    """Check that ``x`` is a floating tensor with ``dim`` dimensions, laid out as ``layout``."""
    check_tensor(x, name)
    if x.dim() != dim:
        raise ValueError(f"{name} must be a {dim}-D tensor of shape {layout}, got shape {tuple(x.shape)}")


def _entropy(p: torch.Tensor) -> torch.Tensor:
    # entr(0) = 0, so no NaN; "+ 0.0" turns the -0.0 of entr(1) into 0.0.
    return torch.special.entr(p).sum(-1) + 0.0


@dataclass(frozen=True, eq=False)
class MCPrediction:
    """What :func:`predict` returns: the passes ``samples``, :math:`(T, N, *)`, and their mean and variance."""

    mean: torch.Tensor
    variance: torch.Tensor
    samples: torch.Tensor

    def __repr__(self) -> str:
        return f"MCPrediction(samples={self.samples.shape[0]}, shape={tuple(self.mean.shape)})"


def predict(model: nn.Module, x: torch.Tensor, samples: int = 100) -> MCPrediction:
    r"""Run ``samples`` stochastic forward passes of ``model`` with dropout on, without gradients.

    Every dropout module (torch's ``_DropoutNd`` and :class:`dropoutlab.nn.DropoutLayer` subclasses) runs in
    training mode, every other module (BatchNorm, ...) in evaluation mode. With :math:`\hat y_t` the output of pass t:

    .. math::

        \bar y = \frac{1}{T} \sum_{t=1}^{T} \hat y_t, \qquad
        s^2 = \frac{1}{T} \sum_{t=1}^{T} (\hat y_t - \bar y)^2
        \quad \text{(population variance, } \texttt{unbiased=False}\text{; 0 when } T = 1).

    The passes are vectorised: ``x`` is repeated ``chunk`` times along dim 0 and the model runs once on the
    ``chunk * N`` rows, in chunks of at most ``MAX_CHUNK_ELEMENTS`` input elements. This is exact because dropout
    draws its mask independently for every row, so the copies are independent passes. It assumes that a row's
    output depends on that row only. BatchNorm is fine (it stays in evaluation mode). A layer that shares one
    mask across the batch would give every pass of a chunk the same mask: :mod:`dropoutlab.nn`'s
    ``DropConnectLinear``, ``EmbeddingDropout`` and ``DropPath(mode="batch")`` are detected and get one pass
    per forward, but another such layer, or one that mixes rows, breaks the assumption; loop over passes for
    such a model. Dropout inside a module that is not a dropout module (e.g.
    :class:`torch.nn.MultiheadAttention`'s ``dropout``) stays off.

    Args:
        model: the network. Every module's ``training`` flag is restored on return, also when the forward raises.
        x: a batch of inputs, any dtype; dim 0 is the batch. It is never modified.
        samples: the number of passes :math:`T`, an int >= 1.

    Shape:
        ``x`` and the model's output :math:`(N, *)`; ``samples`` :math:`(T, N, *)`; ``mean`` and ``variance``
        :math:`(N, *)`.

    Returns:
        An :class:`MCPrediction` with fields ``mean``, ``variance`` and ``samples``.

    Raises:
        TypeError: ``model`` is not an ``nn.Module``, ``x`` or the output not a tensor, ``samples`` not an int.
        ValueError: ``x`` is 0-d, ``samples < 1``, or the output has not ``chunk * N`` rows.

    Example:
        >>> import torch
        >>> from dropoutlab import mc
        >>> from dropoutlab.nn import Dropout
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 8), Dropout(0.2), torch.nn.Linear(8, 1)).eval()
        >>> pred = mc.predict(model, torch.randn(5, 3), samples=50)
        >>> pred.samples.shape, pred.mean.shape
        (torch.Size([50, 5, 1]), torch.Size([5, 1]))
        >>> bool((pred.variance > 0).all()), model.training  # the model is left in eval mode
        (True, False)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_tensor(x, "x", floating=False)
    if x.dim() == 0:
        raise ValueError("x must have a batch dimension (at least 1-D), got a 0-d tensor")
    samples = check_int(samples, "samples", low=1)
    n, row = x.shape[0], x.shape[1:]
    chunk = max(1, min(samples, MAX_CHUNK_ELEMENTS // max(x.numel(), 1)))
    if any(_shares_mask_across_rows(m) for m in model.modules()):
        chunk = 1
    flags = [(m, m.training) for m in model.modules()]
    try:
        for m, _ in flags:  # assign, not .train(): .train() recurses into the children
            m.training = isinstance(m, _DROPOUT_TYPES)
        with torch.no_grad():
            out = None
            for start in range(0, samples, chunk):
                c = min(chunk, samples - start)
                y = model(x.repeat(c, *[1] * len(row)))  # a copy, even for c = 1: x is safe from in-place layers
                if not isinstance(y, torch.Tensor):
                    raise TypeError(f"model must return a tensor, got {type(y).__name__}")
                if y.dim() == 0 or y.shape[0] != c * n:
                    raise ValueError(
                        f"the model's output must keep the batch dimension: predict folds {c} samples of {n} "
                        f"inputs into {c * n} rows, got an output of shape {tuple(y.shape)}"
                    )
                if out is None:
                    out = y.new_empty((samples, n, *y.shape[1:]))
                out[start : start + c] = y.reshape(c, n, *y.shape[1:])
    finally:
        for m, flag in flags:
            m.training = flag
    return MCPrediction(mean=out.mean(0), variance=out.var(0, correction=0), samples=out)


def predictive_entropy(probs: torch.Tensor) -> torch.Tensor:
    r"""Entropy of each row of class probabilities, in nats.

    .. math::

        \mathbb{H}[p] = -\sum_{k=1}^{K} p_k \log p_k, \qquad 0 \log 0 = 0.

    Args:
        probs: class probabilities, e.g. a softmax of ``predict(...).mean``. Rows should sum to one (not checked).

    Shape:
        ``probs``: :math:`(N, K)`. Output: :math:`(N,)`.

    Returns:
        A tensor in ``probs``' dtype with values in :math:`[0, \log K]`, never NaN.

    Raises:
        TypeError: ``probs`` is not a floating-point tensor.
        ValueError: ``probs`` is not 2-D.

    Example:
        >>> import torch
        >>> from dropoutlab.mc import predictive_entropy
        >>> predictive_entropy(torch.tensor([[0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0]]))  # log 4, 0
        tensor([1.3863, 0.0000])
    """
    _check_shape(probs, "probs", 2, "(N, K)")
    return _entropy(probs)


def mutual_information(sample_probs: torch.Tensor) -> torch.Tensor:
    r"""BALD (Houlsby et al., 2011): the mutual information between the prediction and the dropout mask, in nats.

    With :math:`p_t` the class probabilities of pass :math:`t`:

    .. math::

        \mathbb{I} = \mathbb{H}\Bigl[\frac{1}{T}\sum_{t=1}^{T} p_t\Bigr] - \frac{1}{T}\sum_{t=1}^{T} \mathbb{H}[p_t].

    It is large when the passes are confident but disagree (epistemic uncertainty). Entropy is concave, so
    :math:`\mathbb{I} \ge 0`; in floating point the difference of two nearly equal entropies can land a few ulps
    below zero, so the result is clamped at 0.

    Args:
        sample_probs: class probabilities of each pass, e.g. a softmax of ``predict(...).samples``.

    Shape:
        ``sample_probs``: :math:`(T, N, K)`. Output: :math:`(N,)`.

    Returns:
        A tensor in ``sample_probs``' dtype with values in :math:`[0, \log K]`.

    Raises:
        TypeError: ``sample_probs`` is not a floating-point tensor.
        ValueError: ``sample_probs`` is not 3-D, or T = 0.

    Example:
        >>> import torch
        >>> from dropoutlab.mc import mutual_information
        >>> mutual_information(torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]]))  # two confident passes disagree: log 2
        tensor([0.6931])
    """
    _check_shape(sample_probs, "sample_probs", 3, "(T, N, K)")
    if sample_probs.shape[0] == 0:
        raise ValueError(f"sample_probs must hold at least one pass (T >= 1), got shape {tuple(sample_probs.shape)}")
    return (_entropy(sample_probs.mean(0)) - _entropy(sample_probs).mean(0)).clamp(min=0)


def _calibration_bins(probs, labels, n_bins):
    """Validate, then bin the top-class confidences into ``n_bins`` equal-width bins ``(lo, hi]``.

    Confidence 0 goes in the first bin. Returns the bin edges and, per bin, the count, the summed confidence and
    the number correct. The sums run in at least float32: a float16 sum over many points loses the third digit.
    """
    _check_shape(probs, "probs", 2, "(N, K)")
    integer = isinstance(labels, torch.Tensor) and not (labels.is_floating_point() or labels.is_complex())
    if not integer or labels.dtype == torch.bool:
        kind = labels.dtype if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise TypeError(f"labels must be an integer tensor of class indices, got {kind}")
    n, k = probs.shape
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape (N,) = ({n},) to match probs, got {tuple(labels.shape)}")
    if n == 0 or k == 0:
        raise ValueError(f"probs must have at least one row and one class, got shape {tuple(probs.shape)}")
    n_bins = check_int(n_bins, "n_bins", low=1)
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= k:
        raise ValueError(f"labels must be in [0, {k}) for K = {k} classes, got values in [{low}, {high}]")
    dtype = torch.promote_types(probs.dtype, torch.float32)
    confidence, predicted = probs.to(dtype).max(dim=1)
    edges = torch.linspace(0, 1, n_bins + 1, dtype=dtype, device=probs.device)
    index = torch.bucketize(confidence, edges[1:-1])  # right=False: edges[b] < confidence <= edges[b + 1]
    zeros = torch.zeros(n_bins, dtype=dtype, device=probs.device)
    correct = zeros.index_add(0, index, (predicted == labels).to(dtype))
    return edges, torch.bincount(index, minlength=n_bins), zeros.index_add(0, index, confidence), correct


def _ece(count, confidence_sum, correct) -> float:
    # |B_b| / N * |acc_b - conf_b| = |correct_b - confidence_sum_b| / N: no division by an empty bin
    return ((correct - confidence_sum).abs().sum() / count.sum()).item()


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    r"""Expected calibration error of the top-class confidence, over equal-width bins (Guo et al., 2017).

    With confidence :math:`c_i = \max_k p_{ik}` and bins
    :math:`B_b = \{i : c_i \in (\frac{b-1}{M}, \frac{b}{M}]\}` (confidence 0 in :math:`B_1`):

    .. math::

        \mathrm{ECE} = \sum_{b=1}^{M} \frac{|B_b|}{N} \bigl|\operatorname{acc}(B_b) - \operatorname{conf}(B_b)\bigr|.

    Args:
        probs: class probabilities; the prediction is the arg max (the first one on ties).
        labels: the true classes, an integer tensor with values in [0, K).
        n_bins: the number of bins :math:`M`, an int >= 1.

    Shape:
        ``probs``: :math:`(N, K)`, ``labels``: :math:`(N,)`.

    Returns:
        The ECE as a Python float in [0, 1], a score to print or compare (binning gives it no useful gradient).

    Raises:
        TypeError: ``probs`` is not a floating tensor, ``labels`` not an integer tensor, ``n_bins`` not an int.
        ValueError: mismatched shapes, N = 0 or K = 0, labels outside [0, K), or ``n_bins < 1``.

    Example:
        >>> import torch
        >>> from dropoutlab.mc import expected_calibration_error
        >>> probs = torch.tensor([[0.95, 0.05], [0.85, 0.15], [0.35, 0.65], [0.45, 0.55]])
        >>> labels = torch.tensor([0, 1, 1, 1])  # the second prediction is wrong
        >>> round(expected_calibration_error(probs, labels, n_bins=10), 4)  # (0.05 + 0.85 + 0.35 + 0.45) / 4
        0.425
    """
    return _ece(*_calibration_bins(probs, labels, n_bins)[1:])


def gaussian_nll(samples: torch.Tensor, y: torch.Tensor, tau: float) -> torch.Tensor:
    r"""Negative MC-dropout test log-likelihood per point, for regression :cite:p:`gal2016dropout`.

    With :math:`T` passes :math:`\hat y_t` and model precision :math:`\tau` (noise variance :math:`\tau^{-1}`),
    the predictive density is a mixture of :math:`T` Gaussians; for a target :math:`y \in \mathbb{R}^D`

    .. math::

        \log p(y) \approx \operatorname{logsumexp}_{t=1}^{T}\Bigl(-\frac{\tau}{2}\lVert y - \hat y_t \rVert^2\Bigr)
        - \log T - \frac{D}{2}\log 2\pi + \frac{D}{2}\log\tau,

    and the result is :math:`-\frac{1}{N}\sum_{n=1}^{N} \log p(y_n)`: lower is better.

    Args:
        samples: the passes' predictions, e.g. ``predict(...).samples``.
        y: the targets.
        tau: the model precision :math:`\tau`, a finite real number > 0.

    Shape:
        ``samples`` :math:`(T, N)` with ``y`` :math:`(N,)` (:math:`D = 1`), or :math:`(T, N, D)` with :math:`(N, D)`.

    Returns:
        A 0-d tensor in ``samples``' dtype, differentiable with respect to ``samples``.

    Raises:
        TypeError: ``samples`` or ``y`` is not a floating tensor, or ``tau`` not a real number.
        ValueError: mismatched shapes, T = 0 or N = 0, or ``tau`` not in (0, inf).

    Example:
        >>> import math, torch
        >>> from dropoutlab.mc import gaussian_nll
        >>> nll = gaussian_nll(torch.zeros(1, 3), torch.zeros(3), tau=1.0)  # one pass, no error
        >>> math.isclose(nll.item(), 0.5 * math.log(2 * math.pi), rel_tol=1e-6)
        True
    """
    check_tensor(samples, "samples")
    check_tensor(y, "y")
    if samples.dim() not in (2, 3) or y.shape != samples.shape[1:]:
        raise ValueError(
            "samples and y must have shapes (T, N) and (N,), or (T, N, D) and (N, D), "
            f"got {tuple(samples.shape)} and {tuple(y.shape)}"
        )
    if samples.shape[0] == 0 or samples.shape[1] == 0:
        raise ValueError(f"samples must hold at least one pass and one point, got shape {tuple(samples.shape)}")
    if isinstance(tau, bool) or not isinstance(tau, numbers.Real):
        raise TypeError(f"tau must be a real number, got {tau!r} of type {type(tau).__name__}")
    tau = float(tau)
    if not 0.0 < tau < math.inf:  # NaN fails too
        raise ValueError(f"tau must be in (0, inf), got {tau}")
    d = 1 if samples.dim() == 2 else samples.shape[2]
    squared = (y - samples).square()
    if samples.dim() == 3:
        squared = squared.sum(-1)
    log_lik = torch.logsumexp(-0.5 * tau * squared, dim=0) - math.log(samples.shape[0])
    return -(log_lik.mean() + 0.5 * d * math.log(tau / (2 * math.pi)))


def reliability_diagram(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15, ax=None):
    r"""Plot accuracy against confidence per bin, beside the diagonal of perfect calibration.

    The bins are those of :func:`expected_calibration_error`: blue bars show each non-empty bin's accuracy,
    hatched outlines the gap to its mean confidence, and the title gives the ECE.

    Args:
        probs: class probabilities, :math:`(N, K)`.
        labels: the true classes, an integer tensor :math:`(N,)` with values in [0, K).
        n_bins: the number of equal-width bins, an int >= 1.
        ax: the matplotlib Axes to draw on; a new 5 x 5 inch figure when None.

    Returns:
        The Axes.

    Raises:
        TypeError, ValueError: as :func:`expected_calibration_error`.

    Example:
        >>> import matplotlib.pyplot as plt, torch
        >>> from dropoutlab.mc import reliability_diagram
        >>> ax = reliability_diagram(torch.softmax(torch.randn(200, 3), dim=1), torch.randint(0, 3, (200,)))
        >>> ax.get_xlabel(), ax.get_ylabel()
        ('Confidence (top-class probability)', 'Accuracy')
        >>> plt.close(ax.figure)
    """
    edges, count, confidence_sum, correct = _calibration_bins(probs, labels, n_bins)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(5.0, 5.0))
    filled = count > 0
    left = edges[:-1][filled].tolist()
    accuracy = (correct[filled] / count[filled]).tolist()
    gap = ((confidence_sum[filled] - correct[filled]) / count[filled]).tolist()
    bars = dict(width=1.0 / n_bins, align="edge", edgecolor="white")
    ax.bar(left, accuracy, color=PALETTE["blue"], label="Accuracy", **bars)
    # An outlined, hatched bar: where accuracy exceeds confidence the gap bar
    # lies over the accuracy bar, and a translucent fill would blend the colours.
    ax.bar(left, gap, bottom=accuracy, facecolor="none", hatch="//", label="Gap to confidence",
           **{**bars, "edgecolor": PALETTE["vermillion"]})
    ax.plot([0, 1], [0, 1], linestyle="--", color=PALETTE["black"], label="Perfect calibration")
    ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal", xlabel="Confidence (top-class probability)", ylabel="Accuracy")
    ax.set_title(f"Reliability diagram (ECE = {_ece(count, confidence_sum, correct):.3f})")
    ax.legend(loc="upper left")
    return ax

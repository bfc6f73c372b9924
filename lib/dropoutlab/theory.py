r"""Closed forms that the chapters check by simulation.

Notation follows the course: a unit with weights :math:`w`, input :math:`x`
and bias :math:`b` computes :math:`z = w^\top x + b`. Dropout on its inputs
multiplies :math:`x_i` by a mask :math:`m_i \sim \mathrm{Bernoulli}(q)`,
:math:`q = 1 - p`, giving :math:`z_{\text{drop}} = \sum_i m_i w_i x_i + b`.
Beyond one unit: dropout as ridge regression, the ensemble view, and
:func:`enumerate_masks`, which lists every mask for exact ensembles.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import torch

from ._validation import check_flag, check_probability, check_tensor

__all__ = ["preactivation_moments", "unscaled_bias_variance", "jensen_gap_quadratic", "dropout_ridge_penalty",
           "dropout_ridge_solution", "AmbiguityDecomposition", "ambiguity_decomposition", "nwgm", "enumerate_masks"]


def _check_pair(a, a_name: str, b, b_name: str) -> None:
    """Check two floating-point tensors share a dtype (else ``TypeError``) and a device (else ``ValueError``)."""
    check_tensor(a, a_name)
    check_tensor(b, b_name)
    if a.dtype != b.dtype:
        raise TypeError(f"{a_name} and {b_name} must have the same dtype, got {a.dtype} and {b.dtype}")
    if a.device != b.device:
        raise ValueError(f"{a_name} and {b_name} must be on the same device, got {a.device} and {b.device}")


def _check_design(X, X_name: str, v, v_name: str, axis: int) -> None:
    """Check that ``X`` is ``(n, d)`` and ``v`` is 1-D of length ``X.shape[axis]``."""
    _check_pair(X, X_name, v, v_name)
    if X.dim() != 2 or v.dim() != 1 or X.shape[axis] != v.shape[0]:
        layout = "(d,)" if axis == 1 else "(n,)"
        raise ValueError(f"{X_name} and {v_name} must have shapes (n, d) and {layout}, "
                         f"got {tuple(X.shape)} and {tuple(v.shape)}")


def _check_mixture_weights(weights, m: int, like: torch.Tensor, like_name: str) -> torch.Tensor:
    """Weights ``(m,)``: uniform if ``None``, else checked (>= 0, sum 1 within sqrt(eps)) and divided by their sum."""
    if weights is None:
        return torch.full((m,), 1.0 / m, dtype=like.dtype, device=like.device)
    _check_pair(like, like_name, weights, "weights")
    if weights.shape != (m,):
        raise ValueError(f"weights must have shape (M,) = ({m},) to match {like_name} of shape "
                         f"{tuple(like.shape)}, got {tuple(weights.shape)}")
    low, total = weights.min().item(), weights.sum().item()
    tol = torch.finfo(weights.dtype).eps ** 0.5
    if not (low >= 0.0 and abs(total - 1.0) <= tol):  # NaN fails too
        raise ValueError(f"weights must be non-negative and sum to 1 (within {tol:.1e}), "
                         f"got min {low} and sum {total}")
    return weights / weights.sum()


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


def jensen_gap_quadratic(w: torch.Tensor, x: torch.Tensor, p: float = 0.5) -> torch.Tensor:
    r"""Jensen gap of :math:`\varphi(z) = z^2` under non-inverted input dropout.

    With :math:`z_{\text{drop}} = \sum_i m_i w_i x_i`, :math:`m_i \sim \mathrm{Bernoulli}(q)`,
    :math:`q = 1 - p` (``p`` is the drop probability), over the masks:

    .. math::

        \mathbb{E}[\varphi(z_{\text{drop}})] - \varphi(\mathbb{E}[z_{\text{drop}}])
        = \operatorname{Var}[z_{\text{drop}}] = p(1-p) \sum_i w_i^2 x_i^2 \ge 0,

    the variance of :func:`unscaled_bias_variance`. A bias leaves it unchanged.

    Args:
        w: weights, shape :math:`(n,)`.
        x: one input, shape :math:`(n,)`.
        p: drop probability, in [0, 1].

    Returns:
        A 0-d tensor in ``w``'s dtype.

    Raises:
        TypeError: ``w`` or ``x`` is not a floating-point tensor, or ``p`` not a real number.
        ValueError: ``w``, ``x`` are not 1-D of one length, or ``p`` is outside [0, 1].

    Example:
        >>> import torch
        >>> from dropoutlab.theory import jensen_gap_quadratic
        >>> w, x = torch.tensor([2.0, 1.0, 2.0]), torch.tensor([2.0, 4.0, 1.0])
        >>> (w * x).square().sum(), jensen_gap_quadratic(w, x, p=0.3)  # 0.3 * 0.7 * 36
        (tensor(36.), tensor(7.5600))
    """
    return unscaled_bias_variance(w, x, p)[1]


def dropout_ridge_penalty(X: torch.Tensor, w: torch.Tensor, p: float = 0.5) -> torch.Tensor:
    r"""Ridge penalty that inverted input dropout adds to linear least squares.

    Dropping each entry of :math:`X` independently, :math:`M_{ij} \sim \mathrm{Bernoulli}(q)`,
    :math:`q = 1 - p`, and rescaling by :math:`1/q` gives exactly (Wager et al., 2013)

    .. math::

        \mathbb{E}_M \bigl\| y - (M \odot X / q)\, w \bigr\|^2
        = \| y - X w \|^2 + \frac{p}{1-p} \sum_j w_j^2 \sum_i X_{ij}^2 ,

    a ridge penalty scaled by each feature's energy.

    Args:
        X: design matrix, one example per row.
        w: weights.
        p: drop probability, in [0, 1).

    Shape:
        X: :math:`(n, d)`. w: :math:`(d,)`.

    Returns:
        The penalty, a 0-d tensor in ``X``'s dtype.

    Raises:
        TypeError: ``X`` or ``w`` is not floating, their dtypes differ, or ``p`` is not a real number.
        ValueError: the shapes do not match, or ``p`` is outside [0, 1).

    Example:
        >>> import torch
        >>> from dropoutlab.theory import dropout_ridge_penalty
        >>> X = torch.tensor([[1.0, 2.0], [3.0, 0.0], [0.0, 1.0]])
        >>> dropout_ridge_penalty(X, torch.tensor([1.0, -1.0]), p=0.5)  # (0.5 / 0.5) * (10 + 5)
        tensor(15.)
    """
    _check_design(X, "X", w, "w", axis=1)
    p = check_probability(p, "p", allow_one=False)
    return (X.square().sum(0) * w.square()).sum() * (p / (1.0 - p))


def dropout_ridge_solution(X: torch.Tensor, y: torch.Tensor, p: float = 0.5) -> torch.Tensor:
    r"""Weights minimising the expected least-squares loss under inverted input dropout.

    The zero of the gradient of :func:`dropout_ridge_penalty`'s expected loss (:math:`q = 1 - p`):

    .. math::

        \hat w = \Bigl( X^\top X + \frac{p}{1-p} \operatorname{diag}(X^\top X) \Bigr)^{-1} X^\top y .

    At :math:`p = 0` it is ordinary least squares; for orthogonal columns, that shrunk by :math:`q`.

    Args:
        X: design matrix, one example per row.
        y: targets.
        p: drop probability, in [0, 1).

    Shape:
        X: :math:`(n, d)`. y: :math:`(n,)`. Output: :math:`(d,)`.

    Returns:
        The weights in ``X``'s dtype. float16 and bfloat16 are solved in float32,
        as ``torch.linalg.solve`` has no half-precision kernels.

    Raises:
        TypeError: ``X`` or ``y`` is not floating, their dtypes differ, or ``p`` is not a real number.
        ValueError: the shapes do not match, or ``p`` is outside [0, 1).
        torch.linalg.LinAlgError: singular system (a zero column, or ``p == 0`` and ``n < d``).

    Example:
        >>> import torch
        >>> from dropoutlab.theory import dropout_ridge_solution
        >>> X, y = torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([1.0, 1.0])
        >>> dropout_ridge_solution(X, y, p=0.0), dropout_ridge_solution(X, y, p=0.5)
        (tensor([1.0000, 0.5000]), tensor([0.5000, 0.2500]))
    """
    _check_design(X, "X", y, "y", axis=0)
    p = check_probability(p, "p", allow_one=False)
    work = torch.float32 if X.dtype in (torch.float16, torch.bfloat16) else X.dtype
    Xw = X.to(work)  # float16/bfloat16: torch.linalg.solve has no half-precision kernels
    gram = Xw.T @ Xw
    system = gram + torch.diag(gram.diagonal() * (p / (1.0 - p)))
    return torch.linalg.solve(system, Xw.T @ y.to(work)).to(X.dtype)


class AmbiguityDecomposition(NamedTuple):
    """What :func:`ambiguity_decomposition` returns; every field is a 0-d tensor."""

    ensemble_error: torch.Tensor
    mean_member_error: torch.Tensor
    diversity: torch.Tensor


def ambiguity_decomposition(member_preds: torch.Tensor, y: torch.Tensor,
                            weights: torch.Tensor | None = None) -> AmbiguityDecomposition:
    r"""Split an ensemble's squared error into its members' mean error minus their diversity.

    For members :math:`f_m` with weights :math:`w_m \ge 0`, :math:`\sum_m w_m = 1`,
    and the ensemble :math:`\bar f = \sum_m w_m f_m` (Krogh & Vedelsby, 1995):

    .. math::

        \underbrace{(\bar f - y)^2}_{\text{ensemble error}}
        = \underbrace{\textstyle\sum_m w_m (f_m - y)^2}_{\text{mean member error}}
        - \underbrace{\textstyle\sum_m w_m (f_m - \bar f)^2}_{\text{diversity}\ \ge\ 0},

    each term summed over outputs :math:`D` and averaged over inputs :math:`N`.

    Args:
        member_preds: predictions of the :math:`M` members.
        y: targets.
        weights: members' weights, :math:`\ge 0`, summing to 1 within :math:`\sqrt{\epsilon}`
            of their dtype (then divided by their sum). Default: uniform.

    Shape:
        member_preds: :math:`(M, N)` or :math:`(M, N, D)`. y: :math:`(N,)` or :math:`(N, D)`. weights: :math:`(M,)`.

    Returns:
        ``AmbiguityDecomposition(ensemble_error, mean_member_error, diversity)``, where
        ``ensemble_error == mean_member_error - diversity`` up to rounding.

    Raises:
        TypeError: an argument is not a floating-point tensor, or the dtypes differ.
        ValueError: the shapes do not match, :math:`M` or :math:`N` is 0, or bad ``weights``.

    Example:
        >>> import torch
        >>> from dropoutlab.theory import ambiguity_decomposition
        >>> ambiguity_decomposition(torch.tensor([[1.0, 2.0], [3.0, 2.0]]), torch.tensor([2.0, 1.0]))
        AmbiguityDecomposition(ensemble_error=tensor(0.5000), mean_member_error=tensor(1.), diversity=tensor(0.5000))
    """
    _check_pair(member_preds, "member_preds", y, "y")
    if member_preds.dim() not in (2, 3) or member_preds.shape[1:] != y.shape or 0 in member_preds.shape[:2]:
        raise ValueError("member_preds and y must have shapes (M, N) and (N,), or (M, N, D) and (N, D), "
                         f"with M, N >= 1, got {tuple(member_preds.shape)} and {tuple(y.shape)}")
    weights = _check_mixture_weights(weights, member_preds.shape[0], member_preds, "member_preds")
    f = member_preds if member_preds.dim() == 3 else member_preds.unsqueeze(-1)  # (M, N, D)
    target, w = y.reshape(f.shape[1:]), weights.view(-1, 1)  # (N, D), (M, 1)
    ensemble = torch.einsum("m,mnd->nd", weights, f)
    ensemble_error = (ensemble - target).square().sum(-1).mean()
    member_error = (w * (f - target).square().sum(-1)).sum(0).mean()
    diversity = (w * (f - ensemble).square().sum(-1)).sum(0).mean()
    return AmbiguityDecomposition(ensemble_error, member_error, diversity)


def nwgm(probs: torch.Tensor | None = None, weights: torch.Tensor | None = None, *,
         logits: torch.Tensor | None = None) -> torch.Tensor:
    r"""Normalised weighted geometric mean of sub-networks' sigmoid outputs.

    For :math:`M` outputs :math:`p_m` with weights :math:`w_m` (Baldi & Sadowski, 2013):

    .. math::

        \mathrm{NWGM} = \frac{G}{G + G'},\quad G = \prod_m p_m^{w_m},\quad
        G' = \prod_m (1 - p_m)^{w_m},\quad\text{i.e.}\quad
        \mathrm{NWGM} = \sigma\Bigl(\sum_m w_m \operatorname{logit} p_m\Bigr),

    computed in the last, log-space form, which cannot underflow (even with :math:`2^{16}` members).

    **Theorem.** For one sigmoid unit :math:`\sigma(\sum_i m_i w_i x_i + b)` over *all* masks,
    weighted by their probabilities under :math:`m_i \sim \mathrm{Bernoulli}(q)`, :math:`q = 1 - p`
    (see :func:`enumerate_masks`), :math:`\mathrm{NWGM} = \sigma(\mathbb{E}[z]) = \sigma(q\, w^\top x + b)` exactly.

    A sigmoid rounds to exactly 1 above :math:`z \approx 37` in float64 (17 in float32), losing
    the logit: pass ``logits`` for saturated units. ``probs`` exactly 0 or 1 give the limit;
    0 and 1 in one output (:math:`G = G' = 0`) raise.

    Args:
        probs: members' probabilities, in [0, 1].
        weights: members' weights, as in :func:`ambiguity_decomposition`. Default: uniform.
        logits: members' logits :math:`z_m`, instead of ``probs`` (keyword only).

    Shape:
        probs or logits: :math:`(M, *)`. weights: :math:`(M,)`. Output: :math:`(*)`.

    Returns:
        The NWGM, a probability, in the input's dtype.

    Raises:
        TypeError: an argument is not a floating-point tensor, or the dtypes differ.
        ValueError: not one of ``probs``/``logits``; :math:`M = 0` or 0-d; NaN; ``probs``
            outside [0, 1]; 0 and 1 (logits :math:`\pm\infty`) in one output; bad ``weights``.

    Example:
        >>> import torch
        >>> from dropoutlab.theory import enumerate_masks, nwgm
        >>> z = torch.tensor([-1.0, 3.0])
        >>> nwgm(torch.sigmoid(z)), torch.sigmoid(z).mean()  # geometric vs arithmetic mean
        (tensor(0.7311), tensor(0.6108))
        >>> nwgm(logits=torch.tensor([40.0, -40.0]))
        tensor(0.5000)
        >>> w, x, b, p = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.3, 0.1, 2.0]), 0.2, 0.25
        >>> masks, prob = enumerate_masks(3, p, dtype=torch.float32)
        >>> nwgm(torch.sigmoid(masks @ (w * x) + b), prob), torch.sigmoid((1 - p) * w @ x + b)
        (tensor(0.7359), tensor(0.7359))
    """
    if (probs is None) == (logits is None):
        raise ValueError("exactly one of probs and logits must be given")
    name, z = ("probs", probs) if logits is None else ("logits", logits)
    check_tensor(z, name)  # first, so that a non-tensor gets a TypeError naming it
    if z.dim() == 0 or z.shape[0] == 0:
        raise ValueError(f"{name} must have shape (M, *) with M >= 1, got {tuple(z.shape)}")
    weights = _check_mixture_weights(weights, z.shape[0], z, name)
    if torch.isnan(z).any():
        raise ValueError(f"{name} must not contain NaN")
    if logits is None:
        low, high = probs.min().item(), probs.max().item()
        if not (low >= 0.0 and high <= 1.0):
            raise ValueError(f"probs must be in [0, 1], got values in [{low}, {high}]")
        z = torch.log(probs) - torch.log1p(-probs)  # exact near 0, as exact as 1 - p allows near 1
    w = weights.view(-1, *([1] * (z.dim() - 1)))
    # Zero-weight members are left out, so that 0 * inf cannot make a NaN.
    total = torch.where(w > 0, w * z, torch.zeros((), dtype=z.dtype, device=z.device)).sum(0)
    if torch.isnan(total).any():
        raise ValueError(f"{name} has members at {'0 and 1' if logits is None else '-inf and inf'} "
                         "for one output, where G = G' = 0 and the NWGM is undefined")
    return torch.sigmoid(total)


def enumerate_masks(n: int, p: float = 0.5, *, dtype: torch.dtype = torch.float64,
                    device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""All :math:`2^n` binary masks of :math:`n` units, with their probabilities.

    Each unit is kept independently, :math:`m_i \sim \mathrm{Bernoulli}(q)`, :math:`q = 1 - p`:

    .. math::

        P(m) = q^{\sum_i m_i}\, p^{\,n - \sum_i m_i}, \qquad \sum_m P(m) = 1 .

    Row :math:`k` is :math:`k` in binary, first unit most significant, as in
    ``itertools.product([0, 1], repeat=n)``. The float64 masks take 3.2 GB at ``n = 24``.

    Args:
        n: number of units, in [1, 24].
        p: drop probability, in [0, 1].
        dtype: floating dtype of both outputs.
        device: device of both outputs.

    Shape:
        masks: :math:`(2^n, n)`, entries 0 or 1. Probabilities: :math:`(2^n,)`.

    Returns:
        ``(masks, probabilities)``.

    Raises:
        TypeError: ``n`` is not an int, ``p`` not a real number, or ``dtype`` not floating.
        ValueError: ``n`` is outside [1, 24], or ``p`` outside [0, 1].

    Example:
        >>> from dropoutlab.theory import enumerate_masks
        >>> masks, prob = enumerate_masks(2, p=0.25)
        >>> masks.tolist(), prob.tolist()
        ([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], [0.0625, 0.1875, 0.1875, 0.5625])
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an int, got {n!r} of type {type(n).__name__}")
    if not 1 <= n <= 24:
        raise ValueError(f"n must be in [1, 24], got {n}")
    n, p = int(n), check_probability(p, "p")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    shifts = torch.arange(n - 1, -1, -1, dtype=torch.int32, device=device)
    masks = ((torch.arange(2**n, dtype=torch.int32, device=device).unsqueeze(1) >> shifts) & 1).to(dtype)
    kept = masks.sum(1)
    q_, p_ = (torch.tensor(v, dtype=dtype, device=masks.device) for v in (1.0 - p, p))
    return masks, q_**kept * p_ ** (n - kept)

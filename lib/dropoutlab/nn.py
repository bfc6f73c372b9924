"""Dropout as modules: thin wrappers around :mod:`dropoutlab.functional`.

Each module validates its hyper-parameters in ``__init__``, shows them in its
``repr`` and calls its function with ``self.training``, so ``model.train()``
and ``model.eval()`` switch it as they switch :class:`torch.nn.Dropout`.
"""

from __future__ import annotations

import torch
from torch import nn

from . import functional as F
import math

from ._validation import check_choice, check_flag, check_int, check_probability

__all__ = [
    "DropoutLayer",
    "Dropout",
    "GaussianDropout",
    "AlphaDropout",
    "ChannelDropout",
    "DropPath",
    "DropBlock2d",
    "LockedDropout",
    "DropConnectLinear",
    "EmbeddingDropout",
    "SeededDropout",
    "ConcreteDropout",
]


class DropoutLayer(nn.Module):
    """Base class of every dropout module in :mod:`dropoutlab.nn`.

    It marks a module as a dropout layer, so that :func:`dropoutlab.mc.predict`
    can switch all of them (and torch's own) to training mode while the rest of
    a model stays in evaluation mode. Subclasses with a drop probability store
    it as ``self.p``, validated at construction.
    """


class _SimpleDropout(DropoutLayer):
    """A module with one drop probability ``p`` around a function ``f(x, p, training)``."""

    allow_one = True

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = check_probability(p, "p", allow_one=self.allow_one)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Dropout(DropoutLayer):
    r"""Element-wise dropout, inverted or in the original two-phase form.

    See :func:`dropoutlab.functional.dropout` for the math. ``p`` is the drop
    probability; :math:`q = 1 - p` is the keep probability.

    Args:
        p: drop probability, in [0, 1].
        inverted: scale kept units by :math:`1/q` in training (True), or scale
            by :math:`q` in evaluation (False).

    Shape:
        Input: :math:`(*)`. Output: the same shape.

    Raises:
        TypeError, ValueError: at construction, for a bad ``p`` or ``inverted``.

    Example:
        >>> import torch
        >>> from dropoutlab.nn import Dropout
        >>> layer = Dropout(p=0.25, inverted=False)
        >>> layer
        Dropout(p=0.25, inverted=False)
        >>> layer.eval()(torch.ones(3))
        tensor([0.7500, 0.7500, 0.7500])
    """

    def __init__(self, p: float = 0.5, inverted: bool = True) -> None:
        super().__init__()
        self.p = check_probability(p, "p")
        self.inverted = check_flag(inverted, "inverted")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.p, self.training, inverted=self.inverted)

    def extra_repr(self) -> str:
        return f"p={self.p}, inverted={self.inverted}"


class GaussianDropout(_SimpleDropout):
    r"""Multiplicative Gaussian noise :math:`\mathcal{N}(1, p/(1-p))`; see :func:`dropoutlab.functional.gaussian_dropout`.

    Args:
        p: drop probability of the dropout it imitates, in [0, 1).

    Example:
        >>> from dropoutlab.nn import GaussianDropout
        >>> GaussianDropout(0.2)
        GaussianDropout(p=0.2)
    """

    allow_one = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gaussian_dropout(x, self.p, self.training)


class AlphaDropout(_SimpleDropout):
    """Dropout for SELU networks; see :func:`dropoutlab.functional.alpha_dropout`.

    Args:
        p: drop probability, in [0, 1].

    Example:
        >>> from dropoutlab.nn import AlphaDropout
        >>> AlphaDropout(0.1)
        AlphaDropout(p=0.1)
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.alpha_dropout(x, self.p, self.training)


class ChannelDropout(_SimpleDropout):
    """Drops whole channels of ``(N, C, *)`` inputs; see :func:`dropoutlab.functional.channel_dropout`.

    Args:
        p: drop probability of a channel, in [0, 1].

    Example:
        >>> from dropoutlab.nn import ChannelDropout
        >>> ChannelDropout(0.3)
        ChannelDropout(p=0.3)
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.channel_dropout(x, self.p, self.training)


class DropPath(_SimpleDropout):
    """Stochastic depth for a residual branch; see :func:`dropoutlab.functional.drop_path`.

    Args:
        p: drop probability, in [0, 1].
        mode: ``"row"`` (one draw per sample) or ``"batch"`` (one for the batch).

    Example:
        >>> from dropoutlab.nn import DropPath
        >>> DropPath(0.1, mode="batch")
        DropPath(p=0.1, mode='batch')
    """

    def __init__(self, p: float = 0.5, mode: str = "row") -> None:
        super().__init__(p)
        self.mode = check_choice(mode, "mode", ("row", "batch"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.drop_path(x, self.p, self.training, mode=self.mode)

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode!r}"


class DropBlock2d(_SimpleDropout):
    """DropBlock on ``(N, C, H, W)`` maps; see :func:`dropoutlab.functional.drop_block`.

    Args:
        p: target fraction of dropped units, in [0, 1].
        block_size: side of the square blocks, at least 1 (and at most the map's side).

    Example:
        >>> from dropoutlab.nn import DropBlock2d
        >>> DropBlock2d(0.1, block_size=5)
        DropBlock2d(p=0.1, block_size=5)
    """

    def __init__(self, p: float = 0.1, block_size: int = 3) -> None:
        super().__init__(p)
        self.block_size = check_int(block_size, "block_size", low=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.drop_block(x, self.p, self.block_size, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, block_size={self.block_size}"


class LockedDropout(_SimpleDropout):
    """Variational dropout with one mask shared along ``time_dim``; see :func:`dropoutlab.functional.locked_dropout`.

    Args:
        p: drop probability, in [0, 1].
        time_dim: the dimension the mask is shared along (1 for batch-first sequences).

    Example:
        >>> from dropoutlab.nn import LockedDropout
        >>> LockedDropout(0.3, time_dim=0)
        LockedDropout(p=0.3, time_dim=0)
    """

    def __init__(self, p: float = 0.5, time_dim: int = 1) -> None:
        super().__init__(p)
        self.time_dim = check_int(time_dim, "time_dim")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.locked_dropout(x, self.p, self.training, time_dim=self.time_dim)

    def extra_repr(self) -> str:
        return f"p={self.p}, time_dim={self.time_dim}"


class DropConnectLinear(DropoutLayer):
    """A linear layer with DropConnect on its weights; see :func:`dropoutlab.functional.dropconnect_linear`.

    Its parameters are initialised as :class:`torch.nn.Linear`'s.

    Args:
        in_features: size of each input sample, at least 1.
        out_features: size of each output sample, at least 1.
        p: drop probability of each weight, in [0, 1].
        bias: whether to learn an additive bias.

    Example:
        >>> from dropoutlab.nn import DropConnectLinear
        >>> DropConnectLinear(4, 2, p=0.5)
        DropConnectLinear(in_features=4, out_features=2, p=0.5, bias=True)
    """

    def __init__(self, in_features: int, out_features: int, p: float = 0.5, bias: bool = True) -> None:
        super().__init__()
        self.in_features = check_int(in_features, "in_features", low=1)
        self.out_features = check_int(out_features, "out_features", low=1)
        self.p = check_probability(p, "p")
        check_flag(bias, "bias")
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # the same initialisation as torch.nn.Linear
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropconnect_linear(x, self.weight, self.bias, self.p, self.training)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"p={self.p}, bias={self.bias is not None}"
        )


class EmbeddingDropout(DropoutLayer):
    r"""An embedding whose rows (word types) are dropped; see :func:`dropoutlab.functional.embedding_dropout`.

    The weights are initialised from :math:`\mathcal{N}(0, 1)`, as :class:`torch.nn.Embedding`'s.

    Args:
        num_embeddings: vocabulary size, at least 1.
        embedding_dim: size of each embedding vector, at least 1.
        p: drop probability of each row, in [0, 1].

    Example:
        >>> from dropoutlab.nn import EmbeddingDropout
        >>> EmbeddingDropout(100, 8, p=0.1)
        EmbeddingDropout(100, 8, p=0.1)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, p: float = 0.1) -> None:
        super().__init__()
        self.num_embeddings = check_int(num_embeddings, "num_embeddings", low=1)
        self.embedding_dim = check_int(embedding_dim, "embedding_dim", low=1)
        self.p = check_probability(p, "p")
        self.weight = nn.Parameter(torch.randn(num_embeddings, embedding_dim))

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        return F.embedding_dropout(indices, self.weight, self.p, self.training)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, p={self.p}"


class SeededDropout(_SimpleDropout):
    """Seeded, device-independent dropout; see :func:`dropoutlab.functional.seeded_dropout`.

    Call ``k`` in training mode uses the seed ``seed + k``, so every step gets a
    new mask and a run is reproducible on any device. The call counter is part
    of the ``state_dict`` (as extra state), so a resumed run continues the
    sequence of masks.

    Args:
        p: drop probability, in [0, 1].
        seed: an int in :math:`[0, 2^{63})`.

    Example:
        >>> import torch
        >>> from dropoutlab.nn import SeededDropout
        >>> a, b = SeededDropout(0.5, seed=7), SeededDropout(0.5, seed=7)
        >>> x = torch.ones(16)
        >>> first, second = a(x), a(x)
        >>> torch.equal(first, b(x)), torch.equal(first, second)  # same seed, new mask each call
        (True, False)
    """

    def __init__(self, p: float = 0.5, seed: int = 0) -> None:
        super().__init__(p)
        self.seed = check_int(seed, "seed", low=0, high=2**63 - 1)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        seed = (self.seed + self.calls) % 2**63
        self.calls += 1
        return F.seeded_dropout(x, self.p, seed, True)

    def get_extra_state(self) -> dict:
        return {"calls": self.calls}

    def set_extra_state(self, state: dict) -> None:
        self.calls = int(state["calls"])

    def extra_repr(self) -> str:
        return f"p={self.p}, seed={self.seed}"


class ConcreteDropout(DropoutLayer):
    r"""Dropout with a learned drop probability (Concrete dropout, Gal et al. 2017).

    The drop probability is :math:`p = \sigma(\ell)` for a learned logit
    :math:`\ell`, and the mask is relaxed so that gradients reach it; see
    :func:`dropoutlab.functional.concrete_dropout`. Training must add
    :meth:`regularizer` to the loss, or :math:`p` simply shrinks to 0:

    .. math::

        R(p) = \frac{\lambda_w}{1 - p}\, \lVert W \rVert^2
               + \lambda_p\, K \bigl(p \log p + (1 - p) \log (1 - p)\bigr)

    where :math:`W` are the weights of the layer the dropped input feeds,
    :math:`K` its input dimension, and :math:`\lambda_w, \lambda_p` the
    weight and dropout regularisers (the paper's :math:`l^2/(\tau N)` and
    :math:`2/(\tau N)`).

    Args:
        init_p: initial drop probability, in (0, 1).
        temperature: relaxation temperature, > 0.
        weight_regularizer: :math:`\lambda_w`, >= 0.
        dropout_regularizer: :math:`\lambda_p`, >= 0.

    Example:
        >>> import torch
        >>> from dropoutlab.nn import ConcreteDropout
        >>> layer = ConcreteDropout(init_p=0.2)
        >>> round(layer.p.item(), 6)
        0.2
        >>> reg = layer.regularizer(torch.nn.Linear(8, 4).weight)
        >>> reg.requires_grad
        True
    """

    def __init__(
        self,
        init_p: float = 0.1,
        temperature: float = 0.1,
        weight_regularizer: float = 1e-6,
        dropout_regularizer: float = 1e-5,
    ) -> None:
        super().__init__()
        init_p = check_probability(init_p, "init_p")
        if not 0.0 < init_p < 1.0:
            raise ValueError(f"init_p must be in (0, 1), got {init_p}")
        for name, value, low_ok in (
            ("temperature", temperature, False),
            ("weight_regularizer", weight_regularizer, True),
            ("dropout_regularizer", dropout_regularizer, True),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a real number, got {value!r}")
            if not (value > 0 or (low_ok and value == 0)):
                raise ValueError(f"{name} must be {'>= 0' if low_ok else '> 0'}, got {value}")
        self.temperature = float(temperature)
        self.weight_regularizer = float(weight_regularizer)
        self.dropout_regularizer = float(dropout_regularizer)
        self.p_logit = nn.Parameter(torch.tensor(math.log(init_p) - math.log1p(-init_p)))

    @property
    def p(self) -> torch.Tensor:
        r"""The current drop probability, :math:`\sigma(\ell)`, a 0-d tensor."""
        return torch.sigmoid(self.p_logit)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.concrete_dropout(x, self.p, self.temperature, self.training)

    def regularizer(self, weight: torch.Tensor) -> torch.Tensor:
        """:math:`R(p)` for the weights ``weight`` of shape ``(out, in)`` of the next layer."""
        if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
            raise ValueError(f"weight must be a 2-D tensor (out_features, in_features), got {weight!r:.60}")
        p = self.p
        input_dim = weight.shape[1]
        weight_term = self.weight_regularizer * weight.square().sum() / (1 - p)
        entropy_term = p * torch.log(p) + (1 - p) * torch.log1p(-p)
        return weight_term + self.dropout_regularizer * input_dim * entropy_term

    def extra_repr(self) -> str:
        return f"p={self.p.item():.4g}, temperature={self.temperature}"

r"""Dropout as functions: the arithmetic of every variant lives here.

The modules in :mod:`dropoutlab.nn` are thin wrappers around these functions,
in the same order. Throughout, ``p`` is the **drop** probability, as in
:func:`torch.nn.functional.dropout`, and :math:`q = 1 - p` is the keep
probability. Randomness comes only from the ``generator`` argument (or torch's
default generator when it is ``None``), or from ``seed`` for
:func:`seeded_dropout`; nothing here reseeds a global RNG.

Element-wise variants live in ``dropoutlab.functional.elementwise``,
structured ones (channels, samples, blocks, time steps, weights, embedding rows)
in ``dropoutlab.functional.structured``.
"""

from .elementwise import alpha_dropout, concrete_dropout, dropout, gaussian_dropout, seeded_dropout
from .structured import (
    channel_dropout,
    drop_block,
    drop_block_gamma,
    drop_path,
    dropconnect_linear,
    embedding_dropout,
    locked_dropout,
)

__all__ = [
    "dropout",
    "gaussian_dropout",
    "alpha_dropout",
    "channel_dropout",
    "drop_path",
    "drop_block",
    "drop_block_gamma",
    "locked_dropout",
    "dropconnect_linear",
    "embedding_dropout",
    "seeded_dropout",
    "concrete_dropout",
]

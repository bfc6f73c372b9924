"""Counter-based dropout masks: each keep/drop decision is a hash of (key, element index).

Two reasons to hash instead of calling ``torch.rand``:

- **Speed and memory.** 32-bit integer arithmetic on the element index is
  several times cheaper than torch's CPU uniform generator, and the mask can be
  recomputed in backward from two 32-bit keys, so no per-element tensor is
  saved for backward.
- **Portability.** torch's generators differ between devices (Mersenne Twister
  on the CPU, Philox on CUDA). Integer arithmetic does not, so a fixed key gives
  bitwise the same mask on every device (:func:`dropoutlab.functional.seeded_dropout`).

The hash is "lowbias32" (C. Wellons' hash-prospector) applied to
``(index * golden + k1) ^ k2``, with two 32-bit keys ``k1`` and ``k2``.
"""

from __future__ import annotations

import torch

# Hash constants as signed int32, so int32 tensors can multiply by them;
# products wrap modulo 2**32 on every device, which is the hash's arithmetic.
_GOLDEN = 0x9E3779B9 - 2**32
_MUL_1 = 0x7FEB352D
_MUL_2 = 0x846CA68B - 2**32
BITS = 24  # the uniform draw is the top 24 bits of the hash
MAX_NUMEL = 2**31 - 1  # indices are int32


def _xorshift_right_(h: torch.Tensor, shift: int, scratch: torch.Tensor) -> torch.Tensor:
    # h ^= h >>> shift. torch's >> is arithmetic on signed integers, so mask
    # off the copies of the sign bit to make it a logical shift. `scratch`
    # is reused so the hash allocates one temporary buffer, not one per step.
    torch.bitwise_right_shift(h, shift, out=scratch).bitwise_and_((1 << (32 - shift)) - 1)
    return h.bitwise_xor_(scratch)


def _lowbias32_top_(h: torch.Tensor) -> torch.Tensor:
    """lowbias32 in place, without its last step ``h ^= h >>> 16``.

    That step changes only the low 16 bits, and the mask reads the top 24 bits,
    so it would move an element's draw by less than 2**-16: not worth a pass.
    """
    scratch = torch.empty_like(h)
    _xorshift_right_(h, 16, scratch).mul_(_MUL_1)
    return _xorshift_right_(h, 15, scratch).mul_(_MUL_2)


def split_seed(seed: int) -> tuple[int, int]:
    """Two signed 32-bit keys from a seed in [0, 2**63)."""

    def signed(v: int) -> int:
        return v - 2**32 if v >= 2**31 else v

    return signed(seed & 0xFFFFFFFF), signed((seed >> 32) ^ 0x5BD1E995)


def random_keys(generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Two int32 keys drawn from ``generator``, kept on ``device`` (no host sync)."""
    return torch.randint(-(2**31), 2**31, (2,), generator=generator, device=device, dtype=torch.int64).to(
        torch.int32
    )


def keep_mask(numel: int, p: float, keys, device: torch.device) -> torch.Tensor:
    """A flat boolean tensor, True where an element is kept; P(drop) = round(p * 2**24) / 2**24.

    ``keys`` is a pair of ints or an int32 tensor of two keys.
    """
    h = torch.arange(numel, dtype=torch.int32, device=device)
    # spread consecutive indices over the 32-bit range, key them, then hash
    _lowbias32_top_(h.mul_(_GOLDEN).add_(keys[0]).bitwise_xor_(keys[1]))
    # The draw is the top 24 bits, u = (h >> 8) + 2**23 as a signed value,
    # uniform on [0, 2**24). u >= t is h >= (t - 2**23) * 2**8, since
    # flooring division by 2**8 is monotone: one comparison, no shift pass.
    threshold = round(p * 2**BITS)
    return h >= (threshold - 2 ** (BITS - 1)) << (32 - BITS)


class HashDropout(torch.autograd.Function):
    """``x * keep * scale``, where ``keep`` is :func:`keep_mask`.

    With ``save_mask`` the boolean mask is saved for backward (1 byte per
    element); without it, backward regenerates the mask from the keys and
    nothing per element is saved.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float, scale: float, keys, save_mask: bool) -> torch.Tensor:
        keep = keep_mask(x.numel(), p, keys, x.device).view(x.shape)
        ctx.p, ctx.scale, ctx.keys = p, scale, None
        if save_mask:
            ctx.save_for_backward(keep)
        elif isinstance(keys, torch.Tensor):
            ctx.save_for_backward(keys)  # two int32 values, whatever the size of x
        else:
            ctx.keys = keys
        ctx.save_mask = save_mask
        return _apply(x, keep, scale)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        if ctx.save_mask:
            (keep,) = ctx.saved_tensors
        else:
            keys = ctx.saved_tensors[0] if ctx.keys is None else ctx.keys
            keep = keep_mask(grad.numel(), ctx.p, keys, grad.device).view(grad.shape)
        return _apply(grad, keep, ctx.scale), None, None, None, None


def _apply(x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
    # Converting the mask to x's dtype first is faster on the CPU than a
    # mixed-dtype multiply, and addcmul applies mask and scale in one pass;
    # the scale is a Python float, applied in x's compute precision.
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    return torch.addcmul(zero, x, keep.to(x.dtype), value=scale)

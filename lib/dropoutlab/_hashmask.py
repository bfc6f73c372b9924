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
# On the CPU the mask is made and applied in chunks of this many elements, so
# the hash's temporaries stay in cache: about 3x faster on a 2-core machine
# than whole-tensor passes (bench/bench_functional.py). A GPU takes one chunk.
CPU_CHUNK = 2**20


def _xorshift_right_(h: torch.Tensor, shift: int, scratch: torch.Tensor) -> torch.Tensor:
    # h ^= h >>> shift. torch's >> is arithmetic on signed integers, so mask
    # off the copies of the sign bit to make it a logical shift.
    torch.bitwise_right_shift(h, shift, out=scratch).bitwise_and_((1 << (32 - shift)) - 1)
    return h.bitwise_xor_(scratch)


def _lowbias32_top_(h: torch.Tensor, scratch: torch.Tensor) -> torch.Tensor:
    """lowbias32 in place, without its last step ``h ^= h >>> 16``.

    That step changes only the low 16 bits, and the mask reads the top 24 bits,
    so it would move an element's draw by less than 2**-16: not worth a pass.
    """
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


def _keep_chunks(numel: int, p: float, keys, device: torch.device, keep_out: torch.Tensor | None = None):
    """Yield ``(start, stop, keep)``: the keep indicator of elements ``start..stop-1`` as a bool tensor.

    ``keep`` is ``keep_out[start:stop]`` when ``keep_out`` is given, else a
    buffer reused by the next chunk. ``keys`` is a pair of ints or an int32
    tensor of two keys. P(drop) = round(p * 2**24) / 2**24.
    """
    chunk = max(1, min(numel, CPU_CHUNK) if device.type == "cpu" else numel)
    h = torch.empty(chunk, dtype=torch.int32, device=device)
    scratch = torch.empty(chunk, dtype=torch.int32, device=device)
    keep_buffer = torch.empty(chunk, dtype=torch.bool, device=device) if keep_out is None else None
    # The draw is the top 24 bits, u = (h >> 8) + 2**23 as a signed value,
    # uniform on [0, 2**24). u >= t is h >= (t - 2**23) * 2**8, since
    # flooring division by 2**8 is monotone: one comparison, no shift pass.
    threshold = (round(p * 2**BITS) - 2 ** (BITS - 1)) << (32 - BITS)
    for start in range(0, numel, chunk):
        stop = min(start + chunk, numel)
        hh, ss = h[: stop - start], scratch[: stop - start]
        torch.arange(start, stop, dtype=torch.int32, device=device, out=hh)
        # spread consecutive indices over the 32-bit range, key them, then hash
        _lowbias32_top_(hh.mul_(_GOLDEN).add_(keys[0]).bitwise_xor_(keys[1]), ss)
        keep = keep_out[start:stop] if keep_out is not None else keep_buffer[: stop - start]
        yield start, stop, torch.ge(hh, threshold, out=keep)


def _scaled_product(src: torch.Tensor, chunks, scale: float) -> torch.Tensor:
    """``src * keep * scale`` for a flat ``src``, chunk by chunk, with ``keep`` from ``chunks``.

    The multiplier is float32 for float16/bfloat16 inputs, so each output is
    rounded once, from ``x * scale`` computed in float32.
    """
    out = torch.empty_like(src)
    work = torch.float32 if src.dtype in (torch.float16, torch.bfloat16) else src.dtype
    multiplier = None
    for start, stop, keep in chunks:
        if multiplier is None:
            multiplier = torch.empty(stop - start, dtype=work, device=src.device)
        m = multiplier[: stop - start].copy_(keep)
        if scale != 1.0:
            m.mul_(scale)
        torch.mul(src[start:stop], m, out=out[start:stop])
    return out


def _saved_chunks(keep: torch.Tensor):
    chunk = max(1, min(keep.numel(), CPU_CHUNK) if keep.device.type == "cpu" else keep.numel())
    for start in range(0, keep.numel(), chunk):
        stop = min(start + chunk, keep.numel())
        yield start, stop, keep[start:stop]


class HashDropout(torch.autograd.Function):
    """``x * keep * scale``, where ``keep`` is the hashed mask of :func:`_keep_chunks`.

    With ``save_mask`` the boolean mask is saved for backward (1 byte per
    element); without it, backward regenerates the mask from the keys and
    nothing per element is saved.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float, scale: float, keys, save_mask: bool) -> torch.Tensor:
        flat = x.reshape(-1)  # row-major: the mask follows the logical index, not the layout
        ctx.p, ctx.scale, ctx.keys, ctx.save_mask = p, scale, None, save_mask
        if save_mask:
            keep = torch.empty(flat.numel(), dtype=torch.bool, device=x.device)
            out = _scaled_product(flat, _keep_chunks(flat.numel(), p, keys, x.device, keep), scale)
            ctx.save_for_backward(keep)
        else:
            out = _scaled_product(flat, _keep_chunks(flat.numel(), p, keys, x.device), scale)
            if isinstance(keys, torch.Tensor):
                ctx.save_for_backward(keys)  # two int32 values, whatever the size of x
            else:
                ctx.keys = keys
        return out.view(x.shape)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        flat = grad.reshape(-1)
        if ctx.save_mask:
            (keep,) = ctx.saved_tensors
            chunks = _saved_chunks(keep)
        else:
            keys = ctx.saved_tensors[0] if ctx.keys is None else ctx.keys
            chunks = _keep_chunks(flat.numel(), ctx.p, keys, grad.device)
        return _scaled_product(flat, chunks, ctx.scale).view(grad.shape), None, None, None, None

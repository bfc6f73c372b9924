"""Exercises ``channel_dropout`` and ``drop_block_mask``: dropout for feature maps.

The learner writes two functions:

- ``channel_dropout(x, p, training=True, generator=None)`` drops whole
  ``(n, c)`` feature maps of an ``(N, C, H, W)`` input. The checks run it on
  48 x 64 maps of 5 x 6 standard normals (no exact zeros, so a zero in the
  output is a dropped unit; H != W so that a transposed mask shows) at
  ``p = 0.3``. Whether the kept-indicator is constant along each of the four
  dimensions tells the wrong mask shapes apart.
- ``drop_block_mask(shape, p, block_size, generator)`` returns DropBlock's
  boolean keep mask. The checks ask for 64 x 16 maps of 10 x 13 with
  ``block_size = 3`` and ``p = 0.2``. The dropped set of each map must be a
  union of whole 3 x 3 squares inside the map (an erosion followed by a
  dilation gives it back), and the drop rate must match the exact rate that
  ``gamma`` implies, overlaps included, with the sigma derived below.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as torch_F

from .._core import SIGMAS, Exercise, Mistake, register
from ._dropout_like import (
    all_equal_to,
    check_generator,
    check_no_mutation,
    check_p_one,
    kept_ratios,
    run_on_copy,
    zero_fraction,
)

# ---- channel_dropout ---------------------------------------------------------------------

P_CHANNEL = 0.3
N, C, H, W = 48, 64, 5, 6

CHANNEL = register(Exercise(
    id="channel_dropout",
    title="Channel dropout",
    notebook="structured_dropout",
    answer_name="channel_dropout",
    mistakes={
        "element_wise": "Element-wise mask: single units are dropped, not whole channels. Draw one mask value "
                        "per (sample, channel), of shape (N, C, 1, 1), and let it broadcast over H and W.",
        "one_mask_for_batch": "One channel mask for the whole batch: every sample drops the same channels. "
                              "Draw the mask with shape (N, C, 1, 1), not (1, C, 1, 1) or (C, 1, 1).",
        "whole_samples": "Whole samples dropped: the mask has one value per sample, shape (N, 1, 1, 1). "
                         "Draw one value per (sample, channel), shape (N, C, 1, 1).",
        "spatial_mask": "The mask runs over the spatial dimensions: rows, columns or positions of the maps are "
                        "dropped instead of whole maps. The mask must have size 1 along H and W: (N, C, 1, 1).",
        "keep_drop_mixup": "Keep/drop mix-up: your function keeps each channel with probability p. p is the "
                           "probability of DROPPING a channel: keep it with probability 1 - p.",
        "no_rescale": "No rescaling: the kept channels keep their value, so the output's mean is (1 - p) x. "
                      "Divide the kept channels by 1 - p.",
        "divide_by_p": "Divided by p: kept channels must be divided by the keep probability 1 - p, not by p.",
        "ignore_training": "training=False is ignored: channels are still dropped at evaluation. "
                           "Return x when not training.",
        "nan_at_p1": "p = 1 gives NaN or an error: x * mask / (1 - p) is 0/0 there. "
                     "Handle p == 1 by returning zeros.",
        "in_place": "Modified the input in place (e.g. x *= mask or x.mul_): the caller's x changed. "
                    "Build a new tensor instead.",
        "ignore_generator": "Ignored the generator: identically seeded generators gave different masks, or "
                            "differently seeded ones the same mask. Pass generator=generator to torch.rand "
                            "(or bernoulli_).",
        "returns_x": "Returned x unchanged while training: nothing was dropped.",
    },
))


def _maps(probe, stream=0):
    return torch.randn(N, C, H, W, generator=probe.generator(stream))


def _constant_along(mask, dim):
    return bool((mask == mask.narrow(dim, 0, 1)).all())


@CHANNEL.check("returns a tensor shaped like x, with x's dtype")
def _channel_returns_tensor(answer, probe):
    run_on_copy(answer, probe, _maps(probe), P_CHANNEL)


@CHANNEL.check("never modifies x")
def _channel_no_mutation(answer, probe):
    check_no_mutation(answer, probe, _maps(probe), P_CHANNEL)


@CHANNEL.check("drops whole (n, c) maps, drawn independently for every sample and channel")
def _channel_structure(answer, probe):
    x = _maps(probe)
    out = run_on_copy(answer, probe, x, P_CHANNEL)
    kept = out != 0
    const = [_constant_along(kept, d) for d in range(4)]
    # A correct answer is constant along H and W. It is constant along C only
    # if every sample keeps or drops all its 64 channels together, probability
    # (0.3^64 + 0.7^64)^48 < 1e-400, and along N with a smaller probability still.
    if const[2] and const[3]:
        if const[0] and const[1]:
            if kept.all():
                raise Mistake("returns_x" if torch.equal(out, x) else None, f"at p = {P_CHANNEL} nothing was dropped")
            raise Mistake(None, f"at p = {P_CHANNEL} every unit was dropped")
        if const[0]:
            raise Mistake("one_mask_for_batch", f"all {N} samples drop the same channels")
        if const[1]:
            raise Mistake("whole_samples", f"in each of the {N} samples all {C} channels are kept or dropped together")
        return
    partial = (kept.flatten(2).any(-1) & ~kept.flatten(2).all(-1)).double().mean().item()
    detail = f"{partial:.0%} of the (n, c) maps are partly dropped; each map must be kept or dropped whole"
    if not any(const):
        raise Mistake("element_wise", detail)
    raise Mistake("spatial_mask", detail)


@CHANNEL.check("drops a fraction p of the channels while training")
def _channel_rate(answer, probe):
    x = _maps(probe)
    out = run_on_copy(answer, probe, x, P_CHANNEL)
    rate = zero_fraction(out)
    # For a correct answer the zero fraction is the fraction of dropped maps,
    # Binomial(N C, p) / (N C): sigma = sqrt(p (1 - p) / (N C)).
    tol = SIGMAS * math.sqrt(P_CHANNEL * (1 - P_CHANNEL) / (N * C))
    if abs(rate - P_CHANNEL) <= tol:
        return
    if torch.equal(out, x):
        raise Mistake("returns_x")
    detail = f"at p = {P_CHANNEL} it dropped a fraction {rate:.4f} of the units, expected {P_CHANNEL} ± {tol:.4f}"
    if abs(rate - (1 - P_CHANNEL)) <= tol:
        raise Mistake("keep_drop_mixup", detail)
    raise Mistake(None, detail)


@CHANNEL.check("rescales the kept channels by 1/(1 - p)")
def _channel_rescale(answer, probe):
    x = _maps(probe)
    out = run_on_copy(answer, probe, x, P_CHANNEL)
    ratios = kept_ratios(out, x)
    q = 1 - P_CHANNEL
    if ratios.numel() == 0:
        raise Mistake(None, f"at p = {P_CHANNEL} every unit was dropped, so no kept value can be checked")
    if all_equal_to(ratios, 1 / q):
        return
    detail = f"kept values are {ratios.median().item():.3f} x at p = {P_CHANNEL}, expected 1/(1 - p) = {1 / q:.3f}"
    for code, target in (("no_rescale", 1.0), ("divide_by_p", 1 / P_CHANNEL)):
        if all_equal_to(ratios, target):
            raise Mistake(code, detail)
    raise Mistake(None, detail)


@CHANNEL.check("training=False returns x unchanged")
def _channel_eval(answer, probe):
    x = _maps(probe)
    out = run_on_copy(answer, probe, x, P_CHANNEL, training=False)
    if torch.equal(out, x):
        return
    rate = zero_fraction(out)
    if rate > 0:
        raise Mistake("ignore_training", f"with training=False it still dropped {rate:.3f} of the units")
    raise Mistake(None, "with training=False the output differs from x")


@CHANNEL.check("p = 0 keeps everything and p = 1 gives zeros, never NaN")
def _channel_edges(answer, probe):
    x = _maps(probe)[:8, :8]  # 64 maps, 1920 units
    check_p_one(answer, probe, x)
    out0 = run_on_copy(answer, probe, x, 0.0)
    # `rand > p` drops a map whose uniform draw is exactly 0 (probability 2**-24
    # each, float32): allow one such map among 64 (two: probability < 1e-11).
    changed = (out0 != x).flatten(2).any(-1).sum().item()
    if changed > 1:
        raise Mistake(None, f"at p = 0, {changed} of 64 maps differ from x; p = 0 must keep every map as it is")


@CHANNEL.check("draws its mask from the generator it is given")
def _channel_generator(answer, probe):
    # 3072 independent maps: two correct masks coincide with probability 0.58^3072 < 1e-700
    check_generator(answer, probe, _maps(probe), P_CHANNEL, fixed_code="ignore_generator")


# ---- drop_block_mask ---------------------------------------------------------------------

P_BLOCK = 0.2
BLOCK = 3
BN, BC, BH, BW = 64, 16, 10, 13

BLOCK_MASK = register(Exercise(
    id="drop_block_mask",
    title="DropBlock mask",
    notebook="structured_dropout",
    answer_name="drop_block_mask",
    mistakes={
        "gamma_is_p": "Seed rate gamma = p: every seed drops block_size**2 units, so far too much is dropped. "
                      "Use gamma = p / block_size**2 * H W / ((H - block_size + 1) (W - block_size + 1)).",
        "gamma_missing_factor": "gamma lacks the factor H W / ((H - block_size + 1) (W - block_size + 1)): seeds "
                                "are drawn only where a block fits, so their rate must be raised to make up for "
                                "the positions without seeds.",
        "element_wise": "Element-wise mask: single units are dropped, block_size is ignored. Draw seeds and "
                        "drop the whole block_size x block_size square below and to the right of each seed "
                        "(e.g. pad the seeds and take a max_pool2d with kernel block_size and stride 1).",
        "returns_drop_mask": "Returned the DROP mask: True must mean KEPT. Return the negation of the "
                             "dropped squares (~dropped).",
        "clipped_blocks": "Blocks clipped at the border: seeds are drawn where a whole block does not fit, "
                          "so partial blocks appear at the edges. Draw seeds only at the (H - block_size + 1) x "
                          "(W - block_size + 1) top-left corners where a whole block fits.",
        "block_off_by_one": "The blocks have the wrong size (block_size - 1 or block_size + 1): check the padding "
                            "and the pooling kernel, which must both give squares of exactly block_size x "
                            "block_size.",
        "shared_mask": "One mask shared across channels (or samples): draw seeds of shape "
                       "(N, C, H - block_size + 1, W - block_size + 1), one set per (n, c) map.",
        "ignore_generator": "Ignored the generator: identically seeded generators gave different masks, or "
                            "differently seeded ones the same mask. Pass generator=generator when you draw the seeds.",
    },
))

SHAPE = (BN, BC, BH, BW)


def _gamma(p, b, h, w):
    return min(1.0, p / b**2 * h * w / ((h - b + 1) * (w - b + 1)))


def _block_mask(answer, probe, stream=1):
    """The learner's keep mask for SHAPE, P_BLOCK, BLOCK, drawn from generator ``stream``."""
    out = probe.call(answer, SHAPE, P_BLOCK, BLOCK, probe.generator(stream))
    return probe.tensor(out, "the mask", shape=SHAPE, dtype=torch.bool)


def _union_of_squares(dropped, s, *, outside_dropped=False):
    """Per map: is the dropped set a union of s x s squares lying inside the map?

    An erosion (min-pool, kernel s) marks the top-left corners of the s x s
    squares that are wholly dropped; a dilation (max-pool of the padded
    corners) gives back their union, which equals the dropped set exactly
    when every dropped unit lies in such a square. With ``outside_dropped``
    the squares may stick out of the map (the border counts as dropped).
    """
    d = dropped.reshape(-1, 1, *dropped.shape[-2:]).to(torch.float32)
    h, w = d.shape[-2:]
    if s > min(h, w) and not outside_dropped:  # no square fits: only an empty set is a union of them
        return ~d.flatten(1).any(-1).bool()
    if outside_dropped:
        d = torch_F.pad(d, (s - 1,) * 4, value=1.0)
    corners = -torch_F.max_pool2d(-d, s, stride=1)
    union = torch_F.max_pool2d(torch_F.pad(corners, (s - 1,) * 4), s, stride=1)
    if outside_dropped:
        union, d = union[..., s - 1:s - 1 + h, s - 1:s - 1 + w], d[..., s - 1:s - 1 + h, s - 1:s - 1 + w]
    return (union == d).flatten(1).all(-1)


def _cover(n, b):
    """A[i, r] = 1 when the block with top-left row r (of the n - b + 1 valid ones) covers row i."""
    i = torch.arange(n, dtype=torch.float64)[:, None]
    r = torch.arange(n - b + 1, dtype=torch.float64)[None, :]
    return ((r <= i) & (i <= r + b - 1)).to(torch.float64)


def _rate_moments(gamma, b, h, w):
    """Exact mean and variance of the dropped fraction of ONE h x w map.

    Unit a is covered by k_a valid seeds (k_a = k_row(i) k_col(j)); it is kept
    when none of them fires: P(kept) = (1 - gamma)^k_a, so the expected rate is
    the mean of 1 - (1 - gamma)^k_a. Units a and b are both kept when none of
    the k_a + k_b - k_ab seeds covering either fires, where k_ab counts the
    seeds covering both, so Cov(D_a, D_b) = (1-g)^(k_a + k_b - k_ab) - (1-g)^(k_a + k_b)
    and Var(rate) = sum_ab Cov / (h w)^2.
    """
    a_h, a_w = _cover(h, b), _cover(w, b)
    k = (a_h.sum(1)[:, None] * a_w.sum(1)[None, :]).reshape(-1)
    k_ab = torch.kron(a_h @ a_h.T, a_w @ a_w.T)
    log_q = math.log1p(-gamma) if gamma < 1 else -math.inf
    kept = torch.exp(k * log_q)
    both = torch.exp((k[:, None] + k[None, :] - k_ab) * log_q)
    cov = both - kept[:, None] * kept[None, :]
    return (1 - kept).mean().item(), max(cov.sum().item(), 0.0) / k.numel() ** 2


@BLOCK_MASK.check("returns a bool tensor of the given shape")
def _block_returns_tensor(answer, probe):
    _block_mask(answer, probe)


@BLOCK_MASK.check("drops only whole block_size x block_size squares lying inside the map")
def _block_structure(answer, probe):
    keep = _block_mask(answer, probe)
    dropped = ~keep
    n_maps = BN * BC
    fits = _union_of_squares(dropped, BLOCK)
    if fits.all():
        # Blocks one too large, whole or cut off at the edge of the map. A map
        # whose only seed lies off the border rows and columns (54 of the 88
        # seed positions: probability 54 gamma (1 - gamma)^87 = 0.097 for each
        # of the 1024 maps) holds a lone 3 x 3 square, which is not a union of
        # 4 x 4 squares, even ones sticking out of the map: a correct mask is
        # taken for one with blocks too large with probability 0.903^1024 < 1e-45.
        if dropped.any() and _union_of_squares(dropped, BLOCK + 1, outside_dropped=True).all():
            raise Mistake("block_off_by_one", f"every dropped region is made of {BLOCK + 1} x {BLOCK + 1} "
                                              f"squares; blocks should be {BLOCK} x {BLOCK}")
        return
    bad = (~fits).sum().item()
    detail = f"in {bad} of {n_maps} maps the dropped set is not a union of whole {BLOCK} x {BLOCK} squares inside the map"
    if keep.any() and _union_of_squares(keep, BLOCK).all():
        raise Mistake("returns_drop_mask", "the True entries form the blocks: " + detail)
    if _union_of_squares(dropped, BLOCK, outside_dropped=True).all():
        raise Mistake("clipped_blocks", detail + "; they would be if blocks could stick out of the map")
    if _union_of_squares(dropped, BLOCK - 1).all():
        raise Mistake("block_off_by_one", detail + f"; it is a union of {BLOCK - 1} x {BLOCK - 1} squares")
    lone = dropped & ~_has_dropped_neighbour(dropped)
    if lone.double().mean().item() > 0.01:
        raise Mistake("element_wise", detail + f"; {lone.double().mean().item():.1%} of the units are dropped "
                                               "on their own, with no dropped neighbour")
    raise Mistake(None, detail)


def _has_dropped_neighbour(dropped):
    """Units that have at least one dropped 4-neighbour."""
    d = dropped.to(torch.float32).reshape(-1, 1, *dropped.shape[-2:])
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]).reshape(1, 1, 3, 3)
    return (torch_F.conv2d(d, kernel, padding=1) > 0).reshape(dropped.shape)


@BLOCK_MASK.check("drops the fraction of units that gamma implies, overlaps included")
def _block_rate(answer, probe):
    keep = _block_mask(answer, probe)
    rate = (~keep).double().mean().item()
    n_maps = BN * BC

    def near(gamma):
        # The N C maps are independent, so the overall rate (the mean of the
        # maps' rates) has sigma = sqrt(Var(one map's rate) / (N C)).
        mean, var = _rate_moments(gamma, BLOCK, BH, BW)
        tol = SIGMAS * math.sqrt(var / n_maps)
        return abs(rate - mean) <= tol, mean, tol

    gamma = _gamma(P_BLOCK, BLOCK, BH, BW)
    ok, mean, tol = near(gamma)
    if ok:
        return
    detail = (f"with p = {P_BLOCK}, block_size = {BLOCK} on {BH} x {BW} maps (gamma = {gamma:.4f}) it dropped "
              f"a fraction {rate:.4f} of the units, expected {mean:.4f} ± {tol:.4f}")
    if abs((1 - rate) - mean) <= tol:
        raise Mistake("returns_drop_mask", detail)
    for code, wrong_gamma in (("gamma_is_p", P_BLOCK), ("gamma_missing_factor", P_BLOCK / BLOCK**2)):
        if near(wrong_gamma)[0]:
            raise Mistake(code, detail + f"; gamma = {wrong_gamma:.4f} explains it")
    raise Mistake(None, detail)


@BLOCK_MASK.check("draws an independent mask for every (n, c) map")
def _block_independent(answer, probe):
    keep = _block_mask(answer, probe)
    # Two independent maps are alike with probability below 0.01 (both empty:
    # (1 - gamma)^176 = 0.003, or the same seeds); all 16 channels alike in all
    # 64 samples (or all 64 samples alike) has probability < 1e-1000.
    if _constant_along(keep, 1):
        raise Mistake("shared_mask", f"all {BC} channels of each sample have the same mask")
    if _constant_along(keep, 0):
        raise Mistake("shared_mask", f"all {BN} samples have the same mask in each channel")


@BLOCK_MASK.check("draws its seeds from the generator it is given")
def _block_generator(answer, probe):
    def draw(g):
        return probe.tensor(probe.call(answer, SHAPE, P_BLOCK, BLOCK, g), "the mask", shape=SHAPE)

    g_a = probe.generator(7)
    a, b = draw(g_a), draw(probe.generator(7))
    if not torch.equal(a, b):
        raise Mistake("ignore_generator", "two generators seeded alike gave different masks")
    # 1024 independent maps: two correct masks coincide with probability < 1e-600
    if torch.equal(a, draw(probe.generator(8))) or torch.equal(a, draw(g_a)):
        raise Mistake("ignore_generator", "generators with different seeds or states gave the same mask")

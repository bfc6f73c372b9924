"""The ``channel_dropout`` and ``drop_block_mask`` checks: right answers pass however
they are written, and each known wrong answer is rejected with its own hint."""

import pytest
import torch
import torch.nn.functional as F

from dropoutlab.functional import channel_dropout as library_channel_dropout
from dropoutlab.functional import drop_block, drop_block_gamma
from dropoutlab.grading import EXERCISES, check, exercise_ids

SEEDS = [0, 1, 12345]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # The checks work on tensors of ~1e5 elements: one thread is fastest, and
    # on a shared machine intra-op threads make this file several times slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _keep_maps(x, p, generator):
    return torch.rand(x.shape[:2] + (1, 1), generator=generator) >= p


# ---- channel_dropout: correct answers, written differently ------------------------------

def rand_mask(x, p, training=True, generator=None):
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    return x * _keep_maps(x, p, generator) / (1 - p)


def bernoulli_mask(x, p, training=True, generator=None):
    if not training:
        return x
    q = 1 - p
    if q == 0:
        return torch.zeros_like(x)
    mask = x.new_empty(x.shape[0], x.shape[1]).bernoulli_(q, generator=generator)
    return x * mask[:, :, None, None] / q


def where_uniform(x, p, training=True, generator=None):
    if not training:
        return x.clone()
    if p >= 1:
        return torch.zeros_like(x)
    u = torch.empty(x.shape[:2], dtype=x.dtype).uniform_(generator=generator)
    return torch.where((u < p)[..., None, None], torch.zeros_like(x), x / (1 - p))


def library(x, p, training=True, generator=None):
    return library_channel_dropout(x, p, training, generator=generator)


CHANNEL_CORRECT = [rand_mask, bernoulli_mask, where_uniform, library]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("answer", CHANNEL_CORRECT, ids=lambda f: f.__name__)
def test_channel_correct_variants_pass(answer, seed):
    report = check("channel_dropout", answer, seed=seed)
    assert report.passed, report.feedback
    assert report.score == report.max_score and report.mistakes == ()


# ---- channel_dropout: the known mistakes ------------------------------------------------

def _channel_with(name, mask_shape=None, *, scale=None, keep_prob=None, eval_identity=True):
    """A wrong channel dropout built from one deliberate change."""

    def answer(x, p, training=True, generator=None):
        if eval_identity and not training:
            return x
        if p == 1:
            return x * 0
        shape = x.shape[:2] + (1, 1) if mask_shape is None else mask_shape(x)
        u = torch.rand(shape, generator=generator)
        keep = u < (1 - p if keep_prob is None else keep_prob(p))
        return x * keep * (1 / (1 - p) if scale is None else scale(p))

    answer.__name__ = name
    return answer


element_wise = _channel_with("element_wise", lambda x: x.shape)
one_mask_for_batch = _channel_with("one_mask_for_batch", lambda x: (1, x.shape[1], 1, 1))
one_mask_for_batch_3d = _channel_with("one_mask_for_batch_3d", lambda x: (x.shape[1], 1, 1))
whole_samples = _channel_with("whole_samples", lambda x: (x.shape[0], 1, 1, 1))
rows_dropped = _channel_with("rows_dropped", lambda x: x.shape[:3] + (1,))
spatial_positions = _channel_with("spatial_positions", lambda x: (1, 1) + x.shape[2:])
keep_drop_mixup = _channel_with("keep_drop_mixup", keep_prob=lambda p: p)
no_rescale = _channel_with("no_rescale", scale=lambda p: 1.0)
divide_by_p = _channel_with("divide_by_p", scale=lambda p: 1 / p)
ignore_training = _channel_with("ignore_training", eval_identity=False)


def nan_at_p1(x, p, training=True, generator=None):
    if not training:
        return x
    return x * _keep_maps(x, p, generator) / torch.tensor(1 - p)


def zero_division_at_p1(x, p, training=True, generator=None):
    if not training:
        return x
    return x * _keep_maps(x, p, generator) * (1 / (1 - p))


def in_place(x, p, training=True, generator=None):
    if not training:
        return x
    if p == 1:
        return x.zero_()
    return x.mul_(_keep_maps(x, p, generator)).div_(1 - p)


def channel_ignore_generator(x, p, training=True, generator=None):
    return rand_mask(x, p, training, None)


def channel_fixed_generator(x, p, training=True, generator=None):
    return rand_mask(x, p, training, torch.Generator().manual_seed(0))


def returns_x(x, p, training=True, generator=None):
    return x


def returns_numpy(x, p, training=True, generator=None):
    return rand_mask(x, p, training, generator).numpy()


def raises_other(x, p, training=True, generator=None):
    return x @ torch.ones(3)  # a shape error from inside torch


CHANNEL_WRONG = [
    (element_wise, "element_wise"),
    (one_mask_for_batch, "one_mask_for_batch"),
    (one_mask_for_batch_3d, "one_mask_for_batch"),
    (whole_samples, "whole_samples"),
    (rows_dropped, "spatial_mask"),
    (spatial_positions, "spatial_mask"),
    (keep_drop_mixup, "keep_drop_mixup"),
    (no_rescale, "no_rescale"),
    (divide_by_p, "divide_by_p"),
    (ignore_training, "ignore_training"),
    (nan_at_p1, "nan_at_p1"),
    (zero_division_at_p1, "nan_at_p1"),
    (in_place, "in_place"),
    (channel_ignore_generator, "ignore_generator"),
    (channel_fixed_generator, "ignore_generator"),
    (returns_x, "returns_x"),
    (returns_numpy, "wrong_type"),
    (raises_other, "raised"),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("answer", "mistake"), CHANNEL_WRONG, ids=[f.__name__ for f, _ in CHANNEL_WRONG])
def test_channel_wrong_answer_is_named(answer, mistake, seed):
    report = check("channel_dropout", answer, seed=seed)
    assert not report.passed
    assert report.score < report.max_score
    assert mistake in report.mistakes, report.feedback


# ---- drop_block_mask: correct answers, written differently ------------------------------

def maxpool_mask(shape, p, block_size, generator):
    n, c, h, w = shape
    gamma = p / block_size**2 * h * w / ((h - block_size + 1) * (w - block_size + 1))
    seeds = torch.rand(n, c, h - block_size + 1, w - block_size + 1, generator=generator) < gamma
    pad = block_size - 1
    dropped = F.max_pool2d(F.pad(seeds.float(), (pad, pad, pad, pad)), block_size, stride=1)
    return dropped == 0


def shifted_or_mask(shape, p, block_size, generator=None):
    n, c, h, w = shape
    b = block_size
    gamma = drop_block_gamma(p, b, h, w)
    seeds = torch.bernoulli(torch.full((n, c, h - b + 1, w - b + 1), gamma), generator=generator).bool()
    dropped = torch.zeros(shape, dtype=torch.bool)
    for di in range(b):
        for dj in range(b):
            dropped[:, :, di:di + h - b + 1, dj:dj + w - b + 1] |= seeds
    return ~dropped


def transposed_conv_mask(shape, p, block_size, generator):
    n, c, h, w = shape
    b = block_size
    gamma = p * h * w / (b * b * (h - b + 1) * (w - b + 1))
    seeds = (torch.rand(n * c, 1, h - b + 1, w - b + 1, generator=generator) < gamma).double()
    counts = F.conv_transpose2d(seeds, torch.ones(1, 1, b, b, dtype=torch.float64))
    return (counts == 0).reshape(shape)


def library_mask(shape, p, block_size, generator):
    return drop_block(torch.ones(shape), p, block_size, generator=generator) != 0


BLOCK_CORRECT = [maxpool_mask, shifted_or_mask, transposed_conv_mask, library_mask]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("answer", BLOCK_CORRECT, ids=lambda f: f.__name__)
def test_block_correct_variants_pass(answer, seed):
    report = check("drop_block_mask", answer, seed=seed)
    assert report.passed, report.feedback
    assert report.score == report.max_score and report.mistakes == ()


# ---- drop_block_mask: the known mistakes ------------------------------------------------

def _block_with(name, *, gamma=None, size=None, seeds_everywhere=False, seed_shape=None, gen=lambda g: g, drop=False):
    """A wrong DropBlock mask built from one deliberate change."""

    def answer(shape, p, block_size, generator):
        n, c, h, w = shape
        b = block_size
        s = b if size is None else size(b)
        g = drop_block_gamma(p, b, h, w) if gamma is None else gamma(p, b, h, w)
        corners = (h, w) if seeds_everywhere else (h - b + 1, w - b + 1)
        draw = (n, c) + corners if seed_shape is None else seed_shape(n, c) + corners
        seeds = (torch.rand(draw, generator=gen(generator)) < g).expand((n, c) + corners)
        # each seed drops the s x s square below and to its right, cut off at the map's edge
        dropped = torch.zeros(n, c, h + s, w + s, dtype=torch.bool)
        for di in range(s):
            for dj in range(s):
                dropped[:, :, di:di + corners[0], dj:dj + corners[1]] |= seeds
        dropped = dropped[:, :, :h, :w]
        return dropped if drop else ~dropped

    answer.__name__ = name
    return answer


gamma_is_p = _block_with("gamma_is_p", gamma=lambda p, b, h, w: p)
gamma_missing_factor = _block_with("gamma_missing_factor", gamma=lambda p, b, h, w: p / b**2)
returns_drop_mask = _block_with("returns_drop_mask", drop=True)
clipped_top_left = _block_with("clipped_top_left", seeds_everywhere=True)
block_too_small = _block_with("block_too_small", size=lambda b: b - 1)
block_too_large = _block_with("block_too_large", size=lambda b: b + 1)


def block_too_large_inside(shape, p, block_size, generator):
    # seeds only where a (block_size + 1) square fits: whole squares, one too large
    return maxpool_mask(shape, p, block_size + 1, generator)
shared_across_channels = _block_with("shared_across_channels", seed_shape=lambda n, c: (n, 1))
shared_across_batch = _block_with("shared_across_batch", seed_shape=lambda n, c: (1, c))
block_ignore_generator = _block_with("block_ignore_generator", gen=lambda g: None)
block_fixed_generator = _block_with("block_fixed_generator", gen=lambda g: torch.Generator().manual_seed(0))


def element_wise_mask(shape, p, block_size, generator):
    return torch.rand(shape, generator=generator) >= p


def clipped_centred(shape, p, block_size, generator):
    # seeds at every position, each the centre of a block: timm's default
    n, c, h, w = shape
    seeds = (torch.rand(shape, generator=generator) < drop_block_gamma(p, block_size, h, w)).float()
    return F.max_pool2d(seeds, block_size, stride=1, padding=block_size // 2) == 0


def returns_float(shape, p, block_size, generator):
    return maxpool_mask(shape, p, block_size, generator).float()


def returns_wrong_shape(shape, p, block_size, generator):
    return maxpool_mask(shape, p, block_size, generator)[0]


BLOCK_WRONG = [
    (gamma_is_p, "gamma_is_p"),
    (gamma_missing_factor, "gamma_missing_factor"),
    (element_wise_mask, "element_wise"),
    (returns_drop_mask, "returns_drop_mask"),
    (clipped_top_left, "clipped_blocks"),
    (clipped_centred, "clipped_blocks"),
    (block_too_small, "block_off_by_one"),
    (block_too_large, "block_off_by_one"),
    (block_too_large_inside, "block_off_by_one"),
    (shared_across_channels, "shared_mask"),
    (shared_across_batch, "shared_mask"),
    (block_ignore_generator, "ignore_generator"),
    (block_fixed_generator, "ignore_generator"),
    (returns_float, "wrong_dtype"),
    (returns_wrong_shape, "wrong_shape"),
    (raises_other, "raised"),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("answer", "mistake"), BLOCK_WRONG, ids=[f.__name__ for f, _ in BLOCK_WRONG])
def test_block_wrong_answer_is_named(answer, mistake, seed):
    report = check("drop_block_mask", answer, seed=seed)
    assert not report.passed
    assert report.score < report.max_score
    assert mistake in report.mistakes, report.feedback


# ---- both -------------------------------------------------------------------------------

@pytest.mark.parametrize(("exercise_id", "table"), [("channel_dropout", CHANNEL_WRONG),
                                                    ("drop_block_mask", BLOCK_WRONG)])
def test_every_declared_mistake_is_exercised(exercise_id, table):
    assert exercise_id in exercise_ids()  # also loads the exercise modules
    declared = set(EXERCISES[exercise_id].mistakes)
    covered = {m for _, m in table}
    assert declared <= covered, declared - covered


def _stub(*args, **kwargs):
    raise NotImplementedError("not implemented yet")


@pytest.mark.parametrize("exercise_id", ["channel_dropout", "drop_block_mask"])
def test_stub_is_not_implemented(exercise_id):
    report = check(exercise_id, _stub)
    assert report.mistakes == ("not_implemented",)
    assert report.score == 0

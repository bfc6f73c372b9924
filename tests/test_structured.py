"""Variant-specific checks for dropoutlab.functional.structured.

Statistical checks use a fixed generator and SIGMAS = 6 standard deviations of
the statistic (two-sided false-failure probability 2e-9).
"""

import math

import pytest
import torch
import torch.nn.functional as torch_F

import dropoutlab.functional as F
from conftest import SIGMAS


def assert_rate(dropped: torch.Tensor, p: float):
    """The fraction of True in `dropped` (independent draws) is p within SIGMAS sd."""
    n = dropped.numel()
    assert abs(dropped.double().mean().item() - p) <= SIGMAS * math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("shape", [(64, 32), (64, 32, 7), (16, 16, 4, 4), (8, 8, 2, 3, 3)])
def test_channel_dropout_drops_whole_channels(shape, generator):
    p = 0.3
    x = torch.rand(shape, generator=generator) + 0.5
    y = F.channel_dropout(x, p, generator=generator)
    per_channel = (y == 0).flatten(2) if len(shape) > 2 else (y == 0).unsqueeze(-1)
    assert (per_channel.all(-1) | ~per_channel.any(-1)).all()  # all or nothing per (n, c)
    assert_rate(per_channel.all(-1), p)
    kept = y != 0
    assert torch.equal(y[kept], (x * (1 / (1 - p)))[kept])


def test_channel_dropout_needs_two_dims():
    with pytest.raises(ValueError, match=r"x must have at least 2 dimensions \(N, C, \*spatial\), got shape \(5,\)"):
        F.channel_dropout(torch.ones(5), 0.5)


def test_drop_path_row_mode_drops_whole_samples(generator):
    p = 0.25
    y = F.drop_path(torch.ones(20_000, 3, 4), p, generator=generator)
    rows = (y == 0).flatten(1)
    assert (rows.all(1) | ~rows.any(1)).all()
    assert_rate(rows.all(1), p)
    assert torch.equal(y[y != 0], torch.full_like(y[y != 0], 1 / (1 - p)))


def test_drop_path_batch_mode_is_all_or_nothing(generator):
    p, calls = 0.3, 4000
    outcomes = []
    for _ in range(calls):
        y = F.drop_path(torch.ones(8, 5), p, mode="batch", generator=generator)
        assert (y == 0).all() or (y == 1 / (1 - p)).all()
        outcomes.append(bool((y == 0).all()))
    assert_rate(torch.tensor(outcomes), p)


def test_drop_path_bad_mode():
    with pytest.raises(ValueError, match="mode must be one of 'row', 'batch', got 'sample'"):
        F.drop_path(torch.ones(2, 2), 0.5, mode="sample")


def full_blocks_cover(dropped: torch.Tensor, block_size: int) -> torch.Tensor:
    """Union of every block_size x block_size square inside the map that is entirely dropped."""
    as_float = dropped.double()
    # a square is entirely dropped where the min over the window is 1
    full = -torch_F.max_pool2d(-as_float, block_size, stride=1)
    pad = block_size - 1
    return torch_F.max_pool2d(torch_F.pad(full, (pad, pad, pad, pad)), block_size, stride=1).bool()


@pytest.mark.parametrize("block_size", [1, 3, 5])
def test_drop_block_regions_are_unions_of_whole_blocks(block_size, generator):
    y = F.drop_block(torch.ones(16, 4, 12, 12), 0.2, block_size, generator=generator)
    dropped = y == 0
    assert dropped.any()
    assert torch.equal(full_blocks_cover(dropped, block_size), dropped)


def expected_drop_fraction(p, block_size, height, width):
    """Exact E[dropped fraction]: a unit is dropped unless none of the seeds covering it fires."""
    gamma = F.drop_block_gamma(p, block_size, height, width)
    seeds = torch.ones(1, 1, height - block_size + 1, width - block_size + 1, dtype=torch.float64)
    pad = block_size - 1
    covering = torch_F.avg_pool2d(torch_F.pad(seeds, (pad, pad, pad, pad)), block_size, stride=1) * block_size**2
    return (1 - (1 - gamma) ** covering).mean().item()


@pytest.mark.parametrize("p, block_size", [(0.1, 3), (0.2, 5), (0.1, 1)])
def test_drop_block_rate(p, block_size, generator):
    n_maps, size = 4096, 16
    y = F.drop_block(torch.ones(n_maps, 1, size, size), p, block_size, generator=generator)
    per_map = (y == 0).double().mean((1, 2, 3))
    expected = expected_drop_fraction(p, block_size, size, size)
    # maps are independent: the mean of n_maps per-map fractions has sd std / sqrt(n_maps)
    assert abs(per_map.mean().item() - expected) <= SIGMAS * per_map.std().item() / math.sqrt(n_maps)
    # Ghiasi et al.'s gamma makes the dropped fraction close to p
    assert abs(expected - p) <= 0.2 * p


def test_drop_block_rescales_by_numel_over_kept(generator):
    x = torch.ones(8, 3, 10, 10, dtype=torch.float64)
    y = F.drop_block(x, 0.3, 3, generator=generator)
    kept = (y != 0).sum().item()
    assert torch.allclose(y[y != 0], torch.full((kept,), x.numel() / kept, dtype=torch.float64))
    assert math.isclose(y.sum().item(), x.numel(), rel_tol=1e-12)


def test_drop_block_everything_dropped_gives_zeros_not_nan(generator):
    # one valid block position and gamma = 0.999: the whole map is dropped almost surely
    x = torch.ones(4, 4, 2, 2, requires_grad=True)
    y = F.drop_block(x, 0.999, 2, generator=generator)
    assert torch.isfinite(y).all()
    (grad,) = torch.autograd.grad(y.sum(), x)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize(
    "shape, block_size, error, message",
    [
        ((2, 3, 8), 3, ValueError, r"x must have 4 dimensions \(N, C, H, W\), got shape \(2, 3, 8\)"),
        ((2, 3, 8, 8), 0, ValueError, r"block_size must be in \[1, 8\], got 0"),
        ((2, 3, 8, 4), 5, ValueError, r"block_size must be in \[1, 4\], got 5"),
        ((2, 3, 8, 8), 2.0, TypeError, "block_size must be an int, got 2.0"),
    ],
)
def test_drop_block_bad_input(shape, block_size, error, message):
    with pytest.raises(error, match=message):
        F.drop_block(torch.ones(shape), 0.1, block_size)


@pytest.mark.parametrize("time_dim", [0, 1, -1])
def test_locked_dropout_shares_the_mask_over_time(time_dim, generator):
    p = 0.4
    x = torch.rand(30, 40, 50, generator=generator) + 0.5
    y = F.locked_dropout(x, p, time_dim=time_dim, generator=generator)
    dropped = y == 0
    first = dropped.narrow(time_dim, 0, 1)
    assert torch.equal(dropped, first.expand_as(dropped))
    assert_rate(first, p)


def test_locked_dropout_bad_time_dim():
    with pytest.raises(ValueError, match=r"time_dim must be in \[-3, 2\], got 3"):
        F.locked_dropout(torch.ones(2, 3, 4), 0.5, time_dim=3)
    with pytest.raises(ValueError, match="x must have at least 2 dimensions"):
        F.locked_dropout(torch.ones(4), 0.5)


def test_dropconnect_drops_weights_shared_across_the_batch(generator):
    p, d_in, d_out = 0.5, 64, 48
    w = torch.rand(d_out, d_in, generator=generator, dtype=torch.float64) + 0.5
    b = torch.randn(d_out, generator=generator, dtype=torch.float64)
    eye = torch.eye(d_in, dtype=torch.float64)
    y = F.dropconnect_linear(torch.cat([eye, 2 * eye]), w, b, p, generator=generator)
    w_dropped = (y[:d_in] - b).T  # row i of the output is column i of the dropped weights
    assert torch.allclose(y[d_in:] - b, 2 * (y[:d_in] - b))  # the same mask for every row
    zero = w_dropped.abs() < 1e-12
    assert torch.allclose(w_dropped[~zero], (w / (1 - p))[~zero])
    assert_rate(zero, p)


def test_dropconnect_eval_p_one_and_shapes(generator):
    x, w, b = torch.randn(5, 3), torch.randn(4, 3, requires_grad=True), torch.randn(4)
    assert torch.equal(F.dropconnect_linear(x, w, b, 0.5, training=False), torch_F.linear(x, w, b))
    y = F.dropconnect_linear(x, w, b, 1.0)
    assert torch.equal(y, b.expand(5, 4))  # every weight dropped: the bias alone
    (grad,) = torch.autograd.grad(y.sum(), w)
    assert torch.equal(grad, torch.zeros_like(w))
    with pytest.raises(ValueError, match=r"got x of shape \(5, 3\) and weight of shape \(4, 2\)"):
        F.dropconnect_linear(x, torch.randn(4, 2), p=0.5)
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\), got \(3,\)"):
        F.dropconnect_linear(x, w, torch.randn(3), p=0.5)


def test_embedding_dropout_drops_word_types_everywhere(generator):
    p, vocab = 0.3, 5000
    w = torch.rand(vocab, 8, generator=generator) + 0.5
    indices = torch.arange(vocab).repeat(3, 1)  # every type, in three sequences
    e = F.embedding_dropout(indices, w, p, generator=generator)
    dropped = (e == 0).all(-1)
    assert torch.equal(dropped, dropped[:1].expand_as(dropped))  # the same fate in every sequence
    assert ((e == 0).any(-1) == dropped).all()  # whole rows
    assert_rate(dropped[0], p)
    assert torch.allclose(e[~dropped], (w[indices] / (1 - p))[~dropped])


def test_embedding_dropout_eval_and_bad_indices():
    w = torch.randn(10, 4)
    idx = torch.tensor([[1, 2], [3, 9]])
    assert torch.equal(F.embedding_dropout(idx, w, 0.5, training=False), torch_F.embedding(idx, w))
    with pytest.raises(TypeError, match="indices must be an integer tensor, got dtype torch.float32"):
        F.embedding_dropout(idx.float(), w, 0.5)
    with pytest.raises(ValueError, match=r"indices must be in \[0, 10\), got values in \[1, 10\]"):
        F.embedding_dropout(torch.tensor([1, 10]), w, 0.5)
    with pytest.raises(ValueError, match="weight must have 2 dimensions"):
        F.embedding_dropout(idx, torch.randn(10), 0.5)

"""Benchmark dropoutlab.functional against torch and plain references, side by side.

Every row times forward + backward of two functions on the same input, in
alternation, and prints the ratio of their best times; the absolute times are
printed for context only. Run: .venv/bin/python bench/bench_functional.py
"""

from __future__ import annotations

import argparse
import math
import platform
import time

import torch
import torch.nn.functional as TF
from torch.autograd.graph import saved_tensors_hooks

import dropoutlab.functional as F

P = 0.5


def best_times(fns, x, repeats):
    """Best forward+backward time of each function, interleaving them so drift hits all alike."""
    grad = None
    best = [math.inf] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            x.grad = None
            start = time.perf_counter()
            y = fn(x)
            if grad is None or grad.shape != y.shape:
                grad = torch.ones_like(y)
            y.backward(grad)
            if x.device.type == "cuda":
                torch.cuda.synchronize()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def saved_bytes_per_element(fn, x):
    sizes = []

    def pack(t):
        sizes.append(t.numel() * t.element_size())
        return t

    with saved_tensors_hooks(pack, lambda t: t):
        fn(x)
    return sum(sizes) / x.numel()


# plain references for variants with no twin in torch: the obvious few lines
def ref_gaussian(x):
    return x * (1 + math.sqrt(P / (1 - P)) * torch.randn_like(x))


def ref_drop_path(x):
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1 - P)
    return x * mask / (1 - P)


def ref_locked(x):
    mask = x.new_empty((x.shape[0], 1, x.shape[2])).bernoulli_(1 - P)
    return x * mask / (1 - P)


def ref_drop_block(x, p=0.1, block_size=3):
    # torchvision.ops.drop_block2d's recipe: seeds over the valid region, max-pool, rescale
    n, c, h, w = x.shape
    gamma = F.drop_block_gamma(p, block_size, h, w)
    seeds = x.new_empty((n, c, h - block_size + 1, w - block_size + 1)).bernoulli_(gamma)
    seeds = TF.pad(seeds, [block_size - 1] * 4)
    mask = 1 - TF.max_pool2d(seeds, block_size, stride=1)
    return x * mask * (mask.numel() / mask.sum().clamp_min(1))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--numel", type=int, default=4 * 2**20)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    n = args.numel
    flat = torch.randn(n, device=device, requires_grad=True)
    maps = torch.randn(n // 256, 16, 4, 4, device=device, requires_grad=True)  # (N, C, H, W)
    seq = torch.randn(n // (64 * 64), 64, 64, device=device, requires_grad=True)  # (N, T, H)
    w = torch.randn(1024, 1024, device=device, requires_grad=True)
    x_lin = torch.randn(n // 1024, 1024, device=device)
    emb = torch.randn(50_000, 64, device=device, requires_grad=True)
    idx = torch.randint(0, 50_000, (n // 64,), device=device)

    rows = [
        # (what, input, ours, reference, target ratio)
        ("dropout vs torch dropout", flat, lambda t: F.dropout(t, P), lambda t: TF.dropout(t, P), 0.4),
        ("dropout vs floor x * 2.0", flat, lambda t: F.dropout(t, P), lambda t: t * 2.0, 5.0),
        ("seeded_dropout vs torch dropout", flat, lambda t: F.seeded_dropout(t, P, seed=1), lambda t: TF.dropout(t, P), 1.2),
        ("gaussian_dropout vs plain reference", flat, lambda t: F.gaussian_dropout(t, P), ref_gaussian, 1.2),
        ("alpha_dropout vs torch alpha_dropout", flat, lambda t: F.alpha_dropout(t, P), lambda t: TF.alpha_dropout(t, P, True), 1.2),
        ("channel_dropout vs torch dropout2d", maps, lambda t: F.channel_dropout(t, P), lambda t: TF.dropout2d(t, P), 1.2),
        ("drop_path vs plain reference", maps, lambda t: F.drop_path(t, P), ref_drop_path, 1.2),
        ("drop_block vs torchvision recipe", maps, lambda t: F.drop_block(t, 0.1, 3), ref_drop_block, 1.2),
        ("locked_dropout vs plain reference", seq, lambda t: F.locked_dropout(t, P), ref_locked, 1.2),
        ("dropconnect_linear vs linear(dropout(W))", w, lambda t: F.dropconnect_linear(x_lin, t, p=P),
         lambda t: TF.linear(x_lin, TF.dropout(t, P)), 1.2),
        ("embedding_dropout vs plain reference", emb, lambda t: F.embedding_dropout(idx, t, P),
         lambda t: TF.embedding(idx, t * t.new_empty(t.shape[0], 1).bernoulli_(1 - P) / (1 - P)), 1.2),
    ]
    print(f"device: {device} ({platform.machine()}, {platform.processor() or 'unknown cpu'}), "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, {n:,} elements, fp32, "
          f"forward + backward, best of {args.repeats}")
    print(f"| {'figure':<42} | {'ours ms':>8} | {'ref ms':>8} | {'ratio':>6} | target  | |")
    print(f"|{'-' * 44}|{'-' * 10}|{'-' * 10}|{'-' * 8}|---------|------|")
    for what, x, ours, ref, target in rows:
        t_ours, t_ref = best_times([ours, ref], x, args.repeats)
        ratio = t_ours / t_ref
        verdict = "PASS" if ratio <= target else "MISS"
        print(f"| {what:<42} | {t_ours * 1e3:8.2f} | {t_ref * 1e3:8.2f} | {ratio:6.2f} | <= {target:<4} | {verdict} |")
    print()
    print("| bytes saved for backward per element | value | target |")
    print("|---|---|---|")
    for what, fn, target in [
        ("dropout", lambda t: F.dropout(t, P), "<= 1"),
        ("seeded_dropout", lambda t: F.seeded_dropout(t, P, seed=1), "0"),
        ("torch dropout (reference)", lambda t: TF.dropout(t, P), ""),
    ]:
        print(f"| {what} | {saved_bytes_per_element(fn, flat):.3f} | {target} |")


if __name__ == "__main__":
    main()

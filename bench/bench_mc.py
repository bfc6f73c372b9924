"""Time dropoutlab.mc.predict against the usual Python loop over passes, in the same run.

The loop is what a course reader writes first:

    model.eval(); switch the dropout modules to train
    with torch.no_grad():
        outs = [model(x) for _ in range(T)]
    samples = torch.stack(outs); mean, var = samples.mean(0), samples.var(0, unbiased=False)

It computes the same three tensors as ``mc.predict``. Each timing is the
minimum over repeats of ``time.perf_counter`` (the least disturbed run), after
a warm-up, with the two contenders interleaved in every repeat. The script
prints ratios and PASS/MISS against the targets and asserts nothing: timings
depend on the machine, and on a shared one they move by 20% between runs.

Run: ``.venv/bin/python bench/bench_mc.py [--device cuda] [--repeats 20]``
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from dropoutlab import mc
from dropoutlab.nn import Dropout as LabDropout


DROPOUTS = {"torch.nn.Dropout": torch.nn.Dropout, "dropoutlab.nn.Dropout": LabDropout}


def mlp(widths: list[int], p: float, dropout=torch.nn.Dropout) -> torch.nn.Sequential:
    """Linear layers of the given widths, ReLU and ``dropout`` after each hidden layer."""
    layers: list[torch.nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(torch.nn.Linear(d_in, d_out))
        if i < len(widths) - 2:
            layers += [torch.nn.ReLU(), dropout(p)]
    return torch.nn.Sequential(*layers)


def python_loop(model: torch.nn.Module, x: torch.Tensor, samples: int):
    model.eval()
    for m in model.modules():
        if isinstance(m, (torch.nn.Dropout, LabDropout)):
            m.train()
    with torch.no_grad():
        outs = []
        for _ in range(samples):
            outs.append(model(x))
        stacked = torch.stack(outs)
        return stacked.mean(0), stacked.var(0, unbiased=False), stacked


def timer(fn, device: torch.device):
    """A function that runs ``fn`` once and returns its wall time in seconds."""

    def once() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    return once


def best_times(fns, device: torch.device, repeats: int) -> list[float]:
    """Minimum wall time of each function, with the functions interleaved in every repeat.

    Interleaving exposes both to the same background load, so a busy spell on a
    shared machine slows both rather than one; the minimum is the least disturbed run.
    """
    timers = [timer(fn, device) for fn in fns]
    for _ in range(3):  # warm-up: allocator, kernels, caches
        for once in timers:
            once()
    best = [float("inf")] * len(timers)
    for _ in range(repeats):
        for i, once in enumerate(timers):
            best[i] = min(best[i], once())
    return best


CASES = [
    # name, widths, N inputs, T passes, target speed-up (loop time / predict time)
    ("(a) T=1000, N=16, MLP 1-64-64-1", [1, 64, 64, 1], 16, 1000, 5.0),
    ("(b) T=100, N=256, MLP 20-256-256-1", [20, 256, 256, 1], 256, 100, 0.9),
]


def cpu_model() -> str:
    """The CPU's name from /proc/cpuinfo, where platform.processor() is empty (Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        return names[0] if names else "(processor not reported)"
    except OSError:
        return "(processor not reported)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)

    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}")
    print(f"machine: {platform.machine()} {platform.processor() or cpu_model()}")
    if device.type == "cuda":
        print(f"gpu: {torch.cuda.get_device_name(device)}")
    print(f"min over {args.repeats} interleaved repeats; ratio = loop time / predict time (higher is better)\n")
    header = f"{'case':<38} {'dropout layer':<22} {'loop ms':>9} {'predict ms':>11} {'ratio':>7} {'target':>7}  result"
    print(header)
    print("-" * len(header))
    for name, widths, n, samples, target in CASES:
        for layer_name, layer in DROPOUTS.items():
            model = mlp(widths, p=0.1, dropout=layer).to(device)
            x = torch.randn(n, widths[0], device=device)
            loop, vectorised = best_times(
                [lambda: python_loop(model, x, samples), lambda: mc.predict(model, x, samples)], device, args.repeats
            )
            ratio = loop / vectorised
            verdict = "PASS" if ratio >= target else "MISS"
            print(f"{name:<38} {layer_name:<22} {loop * 1e3:>9.2f} {vectorised * 1e3:>11.2f} {ratio:>6.1f}x {target:>6.1f}x  {verdict}")


if __name__ == "__main__":
    main()

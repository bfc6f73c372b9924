"""dropoutlab: the dropout variants, closed forms and helpers of the Dropout course.

The package is laid out by job:

- :mod:`dropoutlab.functional`: the arithmetic of every variant (like ``torch.nn.functional``);
- :mod:`dropoutlab.nn`: thin modules over those functions;
- :mod:`dropoutlab.mc`: Monte Carlo dropout and uncertainty metrics;
- :mod:`dropoutlab.theory`: closed forms that the chapters check by simulation;
- :mod:`dropoutlab.data`: offline data sets (scikit-learn's bundled sets, synthetic data);
- :mod:`dropoutlab.train`: the one small training loop the book uses;
- :mod:`dropoutlab.plotting`: the book's figure style;
- :mod:`dropoutlab.grading`: checks for the hands-on exercises, student notebooks and
  a batch grader (imported on demand: ``from dropoutlab.grading import check``).
"""

from __future__ import annotations

import random

import numpy as np
import torch

from . import data, functional, mc, nn, plotting, theory, train
from ._validation import check_flag, check_int

__all__ = ["functional", "nn", "mc", "theory", "data", "train", "plotting", "setup"]
__version__ = "0.1.0"


def setup(seed: int = 0, *, prefer_gpu: bool = True, cpu_threads: int | None = 1) -> torch.device:
    """Prepare a notebook: seed every RNG, set the plot style, pick a device.

    Seeds Python's ``random``, NumPy's legacy global RNG and torch's default
    generators (CPU and CUDA), so a notebook run twice prints the same numbers.
    It also flushes subnormal floats to zero on the CPU, where they make the
    small training runs of the book many times slower.

    It sets the number of CPU threads torch uses within an operation (one by
    default). A sum split over more threads adds in another order, so a long
    training run ends elsewhere on a machine with another number of cores; with a
    fixed count, a laptop reproduces the numbers of the book's 2-core build. The
    book's networks are small, so one thread costs them little.

    Args:
        seed: the seed, an integer in [0, 2**63).
        prefer_gpu: return ``cuda`` when a GPU is available (True), else ``cpu``.
        cpu_threads: torch's intra-op CPU threads, >= 1; ``None`` leaves the
            setting alone (torch's default: one per core).

    Returns:
        The device to put tensors and models on.

    Example:
        >>> import dropoutlab
        >>> dropoutlab.setup(seed=1, prefer_gpu=False)
        device(type='cpu')
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r} of type {type(seed).__name__}")
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed must be in [0, 2**63), got {seed}")
    check_flag(prefer_gpu, "prefer_gpu")
    if cpu_threads is not None:
        check_int(cpu_threads, "cpu_threads", low=1)
        torch.set_num_threads(cpu_threads)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    # Adam's moment estimates for ReLU units that never fire decay into
    # subnormal floats, which many CPUs process 10-20x more slowly; flushing
    # them to zero changes no result of the book and keeps small nets fast.
    torch.set_flush_denormal(True)
    plotting.use_style()
    if prefer_gpu and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")

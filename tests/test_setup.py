import random

import numpy as np
import pytest
import torch

import dropoutlab


def draws():
    return random.random(), np.random.rand(), torch.rand(()).item()


def test_setup_makes_runs_repeatable():
    dropoutlab.setup(seed=5, prefer_gpu=False)
    first = draws()
    dropoutlab.setup(seed=5, prefer_gpu=False)
    assert draws() == first
    dropoutlab.setup(seed=6, prefer_gpu=False)
    assert draws() != first


def test_setup_returns_cpu_without_gpu_preference():
    assert dropoutlab.setup(prefer_gpu=False) == torch.device("cpu")


@pytest.mark.parametrize("seed, error", [(-1, ValueError), (1.5, TypeError), (True, TypeError)])
def test_bad_seed(seed, error):
    with pytest.raises(error, match="seed must be"):
        dropoutlab.setup(seed=seed)


def test_setup_fixes_the_cpu_thread_count():
    before = torch.get_num_threads()
    try:
        dropoutlab.setup(prefer_gpu=False, cpu_threads=2)
        assert torch.get_num_threads() == 2
        dropoutlab.setup(prefer_gpu=False)  # the default: one thread, as the book's build
        assert torch.get_num_threads() == 1
        dropoutlab.setup(prefer_gpu=False, cpu_threads=None)  # leaves it alone
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("threads, error", [(0, ValueError), (1.5, TypeError), (True, TypeError)])
def test_bad_cpu_threads(threads, error):
    with pytest.raises(error, match="cpu_threads"):
        dropoutlab.setup(cpu_threads=threads)

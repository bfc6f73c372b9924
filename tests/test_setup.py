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

import pytest
import torch

# Six standard deviations: a correct implementation fails a two-sided check
# with probability 2 * Phi(-6) = 2.0e-9, far below the 1e-6 we allow.
SIGMAS = 6.0


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(1234)

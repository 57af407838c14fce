import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    # Determinism and a fair share of the 2-core machine.
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)

"""Fixtures shared by every test folder.

- Each test runs torch on one thread: results are deterministic, and a test gets a fair share of
  the 2-core machines CI runs on. Code that varies the thread count on purpose (the calibration of
  tolerances, executors with ``threads=``) sets it itself and restores it.
- ``digits``: scikit-learn's bundled digits, split once per session (train / val / test).
"""

import pytest
import torch

from deai.learn.data import prepare


@pytest.fixture(autouse=True)
def _one_thread():
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


@pytest.fixture(scope="session")
def digits():
    return prepare("digits", seed=0)

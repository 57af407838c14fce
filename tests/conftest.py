"""Fixtures shared by every test folder.

- Each test runs torch on one thread: results are deterministic, and a test gets a fair share of
  the 2-core machines CI runs on. Code that varies the thread count on purpose (the calibration of
  tolerances, executors with ``threads=``) sets it itself and restores it.
- ``digits``: scikit-learn's bundled digits, split once per session (train / val / test).
- ``require_data``: loads data a test needs; absent data skips the test with how to install it, except
  under ``CI=true``, where it fails.
"""

import os
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
import torch

from deai.learn.data import prepare
from deai.learn.errors import MissingData

T = TypeVar("T")


@pytest.fixture(autouse=True)
def _one_thread():
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


@pytest.fixture(scope="session")
def digits():
    return prepare("digits", seed=0)


def _require_data(load: Callable[[], T]) -> T:
    try:
        return load()
    except MissingData as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true, so data tests must run, but: {exc}")
        pytest.skip(str(exc))


@pytest.fixture
def require_data() -> Callable[[Callable[[], Any]], Any]:
    """``require_data(load)`` returns ``load()``; when that raises
    :class:`~deai.learn.errors.MissingData` (whose message says how to install the data) the test
    skips with that message on a user's machine, but fails under ``CI=true``, where the data must
    have been installed (``make install`` does it)."""
    return _require_data

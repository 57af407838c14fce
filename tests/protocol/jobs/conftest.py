from __future__ import annotations

import pytest

from deai.core.blobs import BlobStore


@pytest.fixture
def store(tmp_path) -> BlobStore:
    return BlobStore(tmp_path / "blobs", fsync=False)

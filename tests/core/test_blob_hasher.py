"""The blob writer's hasher: inline for small chunks, on a thread from the first large one; the
digest is SHA-256 of the whole stream either way."""

import hashlib
import threading

from deai.core.blobs import _THREADED_HASH, BlobStore, _Hasher


def test_small_chunks_hash_inline_and_large_ones_on_a_thread():
    small, large = b"a" * 1000, b"b" * _THREADED_HASH
    for chunks in ([small, small], [small, large, small], [large], []):
        before = threading.active_count()
        h = _Hasher()
        for c in chunks:
            h.update(c)
        if large not in chunks:
            assert threading.active_count() == before  # no thread for a small blob
        assert h.hexdigest() == hashlib.sha256(b"".join(chunks)).hexdigest()
        h.close()  # idempotent


def test_store_digests_small_and_large_blobs(tmp_path):
    store = BlobStore(tmp_path)
    for data in (b"x" * 10, b"y" * (3 * _THREADED_HASH + 5)):
        assert store.put(data) == hashlib.sha256(data).hexdigest()

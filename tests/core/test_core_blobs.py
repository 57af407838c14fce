import hashlib
import os

import pytest

from deai.core.blobs import BlobStore
from deai.core.errors import BlobCorrupted, BlobNotFound, BlobTooLarge, EncodingError


def test_put_get_round_trip(tmp_path):
    store = BlobStore(tmp_path)
    digest = store.put(b"hello")
    assert digest == hashlib.sha256(b"hello").hexdigest()
    assert store.get(digest) == b"hello"
    assert store.get("0x" + digest) == b"hello"
    assert digest in store and store.size(digest) == 5
    assert store.put(b"hello") == digest  # idempotent
    assert list(store.digests()) == [digest]
    assert not any((tmp_path / "tmp").iterdir())  # no partial files left behind


def test_streaming_large_blob_in_chunks(tmp_path):
    store = BlobStore(tmp_path)
    chunks = [os.urandom(1 << 20) for _ in range(5)]
    digest = store.put_stream(iter(chunks))
    got = list(store.get_stream(digest, chunk_size=1 << 20))
    assert len(got) == 5 and b"".join(got) == b"".join(chunks)
    src = tmp_path / "src.bin"
    src.write_bytes(b"".join(chunks))
    assert store.put_file(src) == digest
    assert store.copy_to(digest, tmp_path / "out.bin").read_bytes() == src.read_bytes()


def test_corruption_is_detected_quarantined_and_never_served(tmp_path):
    store = BlobStore(tmp_path)
    data = os.urandom(3 << 20)
    digest = store.put(data)
    path = store.path(digest)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 1
    path.write_bytes(bytes(raw))
    received = []
    with pytest.raises(BlobCorrupted, match="corrupted"):
        for chunk in store.get_stream(digest, chunk_size=1 << 20):
            received.append(chunk)
    assert sum(map(len, received)) < len(data)  # the final chunk was withheld
    assert digest not in store
    assert (tmp_path / "quarantine" / digest).exists()
    with pytest.raises(BlobNotFound):
        store.get(digest)


def test_copy_to_never_writes_a_corrupted_blob(tmp_path):
    store = BlobStore(tmp_path / "s")
    digest = store.put(b"abc" * 1000)
    store.path(digest).write_bytes(b"xyz" * 1000)
    with pytest.raises(BlobCorrupted):
        store.copy_to(digest, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_verify_all_reports_corrupted(tmp_path):
    store = BlobStore(tmp_path)
    good, bad = store.put(b"good"), store.put(b"bad")
    store.path(bad).write_bytes(b"rotten")
    assert store.verify_all() == (2, [bad])
    assert store.verify(good)


def test_expected_digest_and_size_limit(tmp_path):
    store = BlobStore(tmp_path, max_bytes=100)
    with pytest.raises(BlobCorrupted, match="not the expected"):
        store.put(b"data", expected=hashlib.sha256(b"other").hexdigest())
    with pytest.raises(BlobTooLarge):
        store.put_stream(iter([b"x" * 60, b"x" * 60]))
    assert list(store.digests()) == []
    assert not any((tmp_path / "tmp").iterdir())


@pytest.mark.parametrize("bad", ["", "ab", "../etc/passwd", "G" * 64, "A" * 64, 12])
def test_bad_digests_are_refused(tmp_path, bad):
    with pytest.raises(EncodingError):
        BlobStore(tmp_path).get(bad)


def test_missing_blob(tmp_path):
    with pytest.raises(BlobNotFound):
        BlobStore(tmp_path).get("0" * 64)

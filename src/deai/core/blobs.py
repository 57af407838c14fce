"""A content-addressed blob store on a directory.

A blob's address is the SHA-256 of its bytes (64 lowercase hex characters). Layout::

    root/ab/abcdef...     the blob whose digest starts with "ab"
    root/tmp/             partial writes (renamed into place only when complete)
    root/quarantine/      blobs found corrupted on read, kept for inspection, never served

- **Atomic writes**: bytes go to a temporary file, are fsync'ed, and renamed into place, so a
  crash never leaves a partial blob under a valid address.
- **Streaming**: :meth:`BlobStore.put_stream` and :meth:`BlobStore.get_stream` move data in chunks;
  a blob is never held in memory whole.
- **Verification on read**: every read re-hashes the bytes. :meth:`get_stream` withholds the final
  chunk until the digest checks out, and :meth:`copy_to` writes to a temporary file renamed into
  place only after the check, so a corrupted blob raises :class:`BlobCorrupted` and is moved to
  quarantine instead of being served.
- **Uploads and garbage collection** (:class:`UploadIndex`, ``store.uploads``): a store that takes
  uploads from other parties (a hub) records each new blob's uploader, size and time in
  ``root/uploads.sqlite``. A blob stays *unreferenced* -- charged to its uploader's quota and
  deleted by :meth:`UploadIndex.collect` once older than a TTL -- until it is *pinned* (something
  the owner keeps refers to it). Blobs the owner writes itself are pinned as they are written, so
  collection only ever deletes other parties' uploads that nothing refers to.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import re
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from deai.core.errors import BlobCorrupted, BlobNotFound, BlobTooLarge, EncodingError

__all__ = ["CHUNK", "BlobStore", "BlobWriter", "UploadIndex", "check_digest"]

CHUNK = 4 << 20  # 4 MiB
_THREADED_HASH = 1 << 20  # a chunk at least this big is hashed on a worker thread (_Hasher)
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def _hash_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file, read into one reused buffer (no per-chunk allocation)."""
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def _copy_and_hash(src: str | os.PathLike, dst: str | os.PathLike) -> str:
    """Copy ``src`` to ``dst`` in the kernel (sendfile) while a thread hashes ``src``."""
    result: dict[str, object] = {}

    def work() -> None:
        try:
            result["digest"] = _hash_file(src)
        except OSError as exc:  # reported on the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        shutil.copyfile(src, dst)
    finally:
        thread.join()
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["digest"]  # type: ignore[return-value]


class _Hasher:
    """SHA-256, computed on a worker thread once a chunk of at least :data:`_THREADED_HASH` bytes
    comes, so hashing overlaps the caller's file I/O; smaller chunks are hashed inline (a thread
    costs more than hashing a small blob, and most blobs of a round are small).

    hashlib and file writes both release the GIL on large buffers, so a copy that hashes costs
    about max(hash, copy) instead of hash + copy.
    """

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self._q: queue.Queue[bytes | None] | None = None
        self._t: threading.Thread | None = None

    def _run(self) -> None:
        assert self._q is not None
        while (chunk := self._q.get()) is not None:
            self._h.update(chunk)

    def update(self, chunk: bytes) -> None:
        if self._q is None:
            if len(chunk) < _THREADED_HASH:
                self._h.update(chunk)
                return
            self._q = queue.Queue(maxsize=4)
            self._t = threading.Thread(target=self._run, daemon=True)
            self._t.start()
        self._q.put(chunk)

    def hexdigest(self) -> str:
        self.close()
        return self._h.hexdigest()

    def close(self) -> None:
        if self._t is not None and self._q is not None and self._t.is_alive():
            self._q.put(None)
            self._t.join()


def check_digest(digest: str) -> str:
    """Return ``digest`` if it is 64 lowercase hex characters (an optional 0x is dropped)."""
    if isinstance(digest, str) and digest.startswith("0x"):
        digest = digest[2:]
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise EncodingError(f"not a SHA-256 hex digest: {str(digest)[:70]!r}")
    return digest


class BlobStore:
    """Content-addressed storage under ``root``. Safe for concurrent writers of the same blob."""

    def __init__(self, root: str | os.PathLike, *, max_bytes: int | None = None, fsync: bool = True) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.fsync = fsync
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        (self.root / "quarantine").mkdir(exist_ok=True)
        self._uploads: UploadIndex | None = None
        self._uploads_lock = threading.Lock()

    @property
    def uploads(self) -> UploadIndex:
        """The record of other parties' uploads (opened on first use: only a hub needs one)."""
        with self._uploads_lock:
            if self._uploads is None:
                self._uploads = UploadIndex(self)
            return self._uploads

    def path(self, digest: str) -> Path:
        digest = check_digest(digest)
        return self.root / digest[:2] / digest

    def __contains__(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        path = self.path(digest)
        if not path.is_file():
            raise BlobNotFound(f"no blob {digest}")
        return path.stat().st_size

    def digests(self) -> Iterator[str]:
        for sub in sorted(self.root.iterdir()):
            if len(sub.name) == 2 and sub.is_dir():
                for f in sorted(sub.iterdir()):
                    if _DIGEST.match(f.name):
                        yield f.name

    # -- writing ---------------------------------------------------------------------------

    def put(self, data: bytes, *, expected: str | None = None) -> str:
        """Store ``data``; return its digest."""
        return self.put_stream([data], expected=expected)

    def put_file(self, src: str | os.PathLike | BinaryIO, *, expected: str | None = None) -> str:
        """Store a file's bytes (a path is copied in the kernel while a thread hashes it)."""
        if not isinstance(src, str | os.PathLike):
            return self.put_stream(iter(lambda: src.read(CHUNK), b""), expected=expected)
        if expected is not None:
            expected = check_digest(expected)
        if self.max_bytes is not None and os.path.getsize(src) > self.max_bytes:
            raise BlobTooLarge(f"blob exceeds the limit of {self.max_bytes} bytes")
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp")
        os.close(fd)
        try:
            digest = _copy_and_hash(src, tmp)
            return self._commit(tmp, digest, expected)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _commit(self, tmp: str, digest: str, expected: str | None, *, uploaded: bool = False) -> str:
        """Check the digest, fsync, and atomically move a finished temporary file into place."""
        if expected is not None and digest != expected:
            raise BlobCorrupted(f"content hashes to {digest}, not the expected {expected}")
        if self.fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        final = self.path(digest)
        final.parent.mkdir(exist_ok=True)
        os.replace(tmp, final)  # atomic; a concurrent writer of the same digest wrote the same bytes
        if self._uploads is not None and not uploaded:
            # The owner wrote these bytes itself (a checkpoint, a job spec): never collect them, even
            # if another party uploaded the same bytes first (e.g. a predicted checkpoint).
            self._uploads.pin(digest)
        return digest

    def put_stream(self, chunks: Iterable[bytes], *, expected: str | None = None) -> str:
        """Store bytes arriving in chunks. With ``expected``, refuse content of another digest.

        Raises BlobTooLarge past ``max_bytes`` (nothing is kept) and BlobCorrupted when the
        content does not hash to ``expected``.
        """
        with self.writer(expected=expected) as w:
            for chunk in chunks:
                w.write(chunk)
            return w.finish()

    def writer(
        self, *, expected: str | None = None, limit: int | None = None, uploaded: bool = False
    ) -> BlobWriter:
        """An incremental writer, for producers that push chunks (e.g. an HTTP upload).

        ``limit`` caps this blob below ``max_bytes`` (an upload's declared size); ``uploaded=True``
        marks another party's bytes: the caller records them with :meth:`UploadIndex.record`
        instead of having them pinned as the owner's own."""
        return BlobWriter(self, expected, limit=limit, uploaded=uploaded)

    # -- reading ---------------------------------------------------------------------------

    def _open(self, digest: str) -> tuple[str, BinaryIO]:
        digest = check_digest(digest)
        try:
            return digest, open(self.path(digest), "rb")
        except FileNotFoundError:
            raise BlobNotFound(f"no blob {digest}") from None

    def _corrupted(self, digest: str, actual: str) -> BlobCorrupted:
        target = self.root / "quarantine" / digest
        with contextlib.suppress(OSError):
            os.replace(self.path(digest), target)
        return BlobCorrupted(
            f"blob {digest} is corrupted on disk (its bytes hash to {actual}); moved to {target}"
        )

    def get_stream(self, digest: str, *, chunk_size: int = CHUNK) -> Iterator[bytes]:
        """Yield the blob's bytes in chunks, verifying as it goes.

        The last chunk is held back until the whole blob hashes to ``digest``; on a mismatch
        BlobCorrupted is raised instead, so a consumer never receives a complete corrupted blob.
        """
        digest, fh = self._open(digest)
        hasher = hashlib.sha256()
        with fh:
            pending = fh.read(chunk_size)
            while pending:
                hasher.update(pending)
                nxt = fh.read(chunk_size)
                if not nxt:
                    break
                yield pending
                pending = nxt
            actual = hasher.hexdigest()
            if actual != digest:
                raise self._corrupted(digest, actual)
            if pending:
                yield pending

    def get(self, digest: str) -> bytes:
        """The whole blob, verified. For large blobs prefer get_stream or copy_to."""
        return b"".join(self.get_stream(digest))

    def copy_to(self, digest: str, dest: str | os.PathLike) -> Path:
        """Write the blob to ``dest``; ``dest`` appears only if the blob verified."""
        dest = Path(dest)
        digest = check_digest(digest)
        if not self.path(digest).is_file():
            raise BlobNotFound(f"no blob {digest}")
        fd, tmp = tempfile.mkstemp(dir=dest.parent if dest.parent.exists() else None)
        os.close(fd)
        try:
            actual = _copy_and_hash(self.path(digest), tmp)
            if actual != digest:
                raise self._corrupted(digest, actual)
            shutil.move(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return dest

    def verify(self, digest: str) -> bool:
        """Re-hash one blob. True if intact; a corrupted one is quarantined and False returned."""
        try:
            for _ in self.get_stream(digest):
                pass
        except BlobCorrupted:
            return False
        return True

    def verify_all(self) -> tuple[int, list[str]]:
        """Re-hash every blob: (number checked, digests found corrupted and quarantined)."""
        bad, n = [], 0
        for d in list(self.digests()):
            n += 1
            if not self.verify(d):
                bad.append(d)
        return n, bad

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)


class BlobWriter:
    """Writes one blob chunk by chunk; :meth:`finish` checks and moves it into place.

    Use as a context manager: leaving the block without ``finish`` discards the partial file.
    """

    def __init__(
        self, store: BlobStore, expected: str | None, *, limit: int | None = None, uploaded: bool = False
    ) -> None:
        self.store = store
        self.expected = check_digest(expected) if expected is not None else None
        self.size = 0
        caps = [c for c in (store.max_bytes, limit) if c is not None]
        self.limit = min(caps) if caps else None
        self.uploaded = uploaded
        self._hasher = _Hasher()
        fd, self._tmp = tempfile.mkstemp(dir=store.root / "tmp")
        self._out = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.limit is not None and self.size > self.limit:
            raise BlobTooLarge(f"blob exceeds the limit of {self.limit} bytes")
        self._hasher.update(bytes(chunk))
        self._out.write(chunk)

    def finish(self) -> str:
        self._out.close()
        return self.store._commit(self._tmp, self._hasher.hexdigest(), self.expected, uploaded=self.uploaded)

    def abort(self) -> None:
        self._out.close()
        self._hasher.close()
        if os.path.exists(self._tmp):
            os.unlink(self._tmp)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()


class UploadIndex:
    """Which blobs of a store are other parties' uploads that nothing refers to yet.

    Each row is ``(digest, uploader, size, time)`` for a blob that an upload *created* (bytes that
    were already stored are not charged to anyone). :meth:`pin` marks a digest as referenced: its
    row goes (its uploader's quota is credited back) and it is never recorded again nor collected.
    :meth:`collect` deletes the rows and the files of uploads older than a TTL -- O(expired rows)
    through an index on time. Per-uploader totals are kept in memory for quota checks. Persistent
    (``root/uploads.sqlite``), so collection and quotas survive restarts. Thread-safe.
    """

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            store.root / "uploads.sqlite", check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS uploads"
            " (digest TEXT PRIMARY KEY, uploader TEXT, size INTEGER, time INTEGER)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS uploads_time ON uploads (time)")
        self._db.execute("CREATE TABLE IF NOT EXISTS pins (digest TEXT PRIMARY KEY) WITHOUT ROWID")
        self._used: dict[str, int] = dict(
            self._db.execute("SELECT uploader, SUM(size) FROM uploads GROUP BY uploader").fetchall()
        )

    def used(self, uploader: str) -> int:
        """Bytes ``uploader`` has stored that nothing refers to (what its quota is charged)."""
        return self._used.get(uploader, 0)

    def record(self, digest: str, uploader: str, size: int, time_ms: int) -> bool:
        """Charge a blob an upload just created to ``uploader``; False if it is pinned or charged."""
        digest = check_digest(digest)
        with self._lock:
            if self._db.execute("SELECT 1 FROM pins WHERE digest=?", (digest,)).fetchone():
                return False
            cur = self._db.execute(
                "INSERT OR IGNORE INTO uploads VALUES (?, ?, ?, ?)", (digest, uploader, size, time_ms)
            )
            if cur.rowcount != 1:
                return False
            self._used[uploader] = self._used.get(uploader, 0) + size
            return True

    def pin(self, *digests: str) -> None:
        """Mark digests as referenced: never collected; their uploaders' quotas are credited back."""
        checked = [check_digest(d) for d in digests]  # before the transaction: a bad one aborts all
        with self._lock:
            self._db.execute("BEGIN")
            for d in checked:
                self._db.execute("INSERT OR IGNORE INTO pins VALUES (?)", (d,))
                row = self._db.execute("SELECT uploader, size FROM uploads WHERE digest=?", (d,)).fetchone()
                if row is not None:
                    self._db.execute("DELETE FROM uploads WHERE digest=?", (d,))
                    self._credit(*row)
            self._db.execute("COMMIT")

    def pinned(self, digest: str) -> bool:
        with self._lock:
            return (
                self._db.execute("SELECT 1 FROM pins WHERE digest=?", (check_digest(digest),)).fetchone()
                is not None
            )

    def pending(self, digest: str) -> tuple[str, int, int] | None:
        """``(uploader, size, time)`` of an unreferenced upload, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT uploader, size, time FROM uploads WHERE digest=?", (check_digest(digest),)
            ).fetchone()
        return tuple(row) if row else None

    def _credit(self, uploader: str, size: int) -> None:
        left = self._used.get(uploader, 0) - size
        if left > 0:
            self._used[uploader] = left
        else:
            self._used.pop(uploader, None)

    def collect(self, now_ms: int, ttl_ms: int) -> list[str]:
        """Delete uploads recorded before ``now_ms - ttl_ms`` that are still unreferenced."""
        with self._lock:
            rows = self._db.execute(
                "SELECT digest, uploader, size FROM uploads WHERE time < ?", (now_ms - ttl_ms,)
            ).fetchall()
            self._db.execute("BEGIN")
            for digest, uploader, size in rows:
                self._db.execute("DELETE FROM uploads WHERE digest=?", (digest,))
                self._credit(uploader, size)
                self.store.delete(digest)
            self._db.execute("COMMIT")
        return [d for d, _, _ in rows]

    def close(self) -> None:
        self._db.close()

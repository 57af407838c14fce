"""Core throughput: signed envelopes per second, blob store vs plain file copy.

Prints JSON. Blob throughput is a ratio to a plain file copy of the same bytes in the same run
(``shutil.copyfile``, with and without fsync), never a bare time. ``--small`` (or DEAI_SMALL=1)
shrinks sizes for CI.

    python benchmarks/core.py [--small]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.envelope import Envelope, EnvelopeVerifier, ReplayCache


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_envelopes(n: int, tmp: Path) -> dict:
    accounts = [Account.from_seed("bench", i) for i in range(16)]
    body = {"task": "0x" + "ab" * 32, "round": 7, "update": "0x" + "cd" * 32, "samples": 120}
    t = time.perf_counter()
    envs = [Envelope.seal(accounts[i % 16], "update", body, "bench") for i in range(n)]
    sign_s = time.perf_counter() - t
    wire = [e.to_bytes() for e in envs]
    verifier = EnvelopeVerifier("bench", {"update"}, replay_cache=ReplayCache(tmp / "replay.sqlite"))
    t = time.perf_counter()
    for raw in wire:
        verifier.verify(raw)
    verify_s = time.perf_counter() - t
    return {
        "envelopes": n,
        "signed_per_s": round(n / sign_s),
        "verified_per_s": round(n / verify_s),
        "verify_includes": "parse + canonicalize + recover signer + persistent replay cache (SQLite)",
        "target_verified_per_s": 3000,
    }


def bench_blobs(size: int, tmp: Path) -> dict:
    src = tmp / "src.bin"
    with open(src, "wb") as fh:
        for _ in range(size // (1 << 20)):
            fh.write(os.urandom(1 << 20))

    def plain_copy(fsync: bool):
        def run():
            dst = tmp / "plain.bin"
            shutil.copyfile(src, dst)
            if fsync:
                fd = os.open(dst, os.O_RDONLY)
                os.fsync(fd)
                os.close(fd)
            dst.unlink()

        return run

    results = {"bytes": size}
    for fsync in (True, False):
        store = BlobStore(tmp / f"store-{fsync}", fsync=fsync)
        digest = store.put_file(src)

        def write(store=store, digest=digest):
            store.delete(digest)
            store.put_file(src)

        def read(store=store, digest=digest):
            store.copy_to(digest, tmp / "out.bin")

        base = best_of(plain_copy(fsync))
        w, r = best_of(write), best_of(read)
        key = "durable" if fsync else "no_fsync"
        results[key] = {
            "plain_copy_MBps": round(size / base / 1e6),
            "write_ratio_vs_copy": round(base / w, 3),
            # reads never fsync, so they are compared with the plain copy without fsync
            "read_verified_ratio_vs_copy": round(best_of(plain_copy(False)) / r, 3),
        }
    results["target_ratio"] = 0.5
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true", default=os.environ.get("DEAI_SMALL") == "1")
    args = parser.parse_args()
    n, size = (300, 8 << 20) if args.small else (5000, 256 << 20)
    with tempfile.TemporaryDirectory() as d:
        out = {
            "benchmark": "core",
            "small": args.small,
            "envelopes": bench_envelopes(n, Path(d)),
            "blobs": bench_blobs(size, Path(d)),
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

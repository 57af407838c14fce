"""Commit-reveal for job outputs, and the checks a coordinator runs on every reveal and upload.

An executor stores its output as a safetensors blob; the output **digest** is ``0x`` + the blob's
SHA-256. Before any reveal it commits ``keccak256(job ‖ executor ‖ digest ‖ salt)``
(:func:`deai.ledger.commitments.result_commitment`, the same hash the ledger checks). Binding the
executor's address means a copied commitment never opens for the copier, and committing before
anyone reveals means no one can copy an output it has not computed.

Checks, each raising its own :class:`~deai.protocol.jobs.errors.JobError` with a clear message:

- :func:`check_deadline`: a commitment or reveal after its deadline (:class:`DeadlinePassed`);
- :func:`check_reveal`: the reveal does not open the commitment (:class:`CommitmentMismatch`);
- :func:`check_upload`: the upload is missing or its bytes hash to another digest
  (:class:`UploadMismatch`), or it is not safetensors, has the wrong names, shapes or dtypes, or
  holds NaN/inf (:class:`BadOutput`).
"""

from __future__ import annotations

from dataclasses import dataclass

from deai.core.blobs import BlobStore
from deai.core.errors import BlobCorrupted, BlobNotFound, DeaiError, EncodingError
from deai.core.tensorio import from_safetensors
from deai.ledger.commitments import new_salt, result_commitment
from deai.protocol.jobs.errors import BadOutput, CommitmentMismatch, DeadlinePassed, UploadMismatch
from deai.protocol.jobs.kinds.base import Layout, Tensors

__all__ = [
    "MAX_OUTPUT_BYTES",
    "Opening",
    "check_deadline",
    "check_reveal",
    "check_upload",
    "commit_output",
    "new_salt",
    "output_digest",
]

MAX_OUTPUT_BYTES = 256 << 20


@dataclass(frozen=True)
class Opening:
    """What an executor keeps between commit and reveal: the digest it committed to and the salt."""

    job: str
    executor: str
    digest: str
    salt: str

    @property
    def commitment(self) -> str:
        return result_commitment(self.job, self.executor, self.digest, self.salt)


def output_digest(blob_digest: str) -> str:
    """The 0x-form of a blob address, as committed and revealed."""
    return blob_digest if blob_digest.startswith("0x") else "0x" + blob_digest


def commit_output(job: str, executor: str, digest: str, salt: str | None = None) -> Opening:
    """An opening (commitment + what reveals it) for ``digest``; a fresh random salt by default."""
    return Opening(job, executor, output_digest(digest), new_salt() if salt is None else salt)


def check_deadline(now_ms: int, deadline_ms: int, what: str) -> None:
    if now_ms > deadline_ms:
        raise DeadlinePassed(f"{what} at t={now_ms} ms is after its deadline t={deadline_ms} ms")


def check_reveal(commitment: str, job: str, executor: str, digest: str, salt: str) -> None:
    """Raise :class:`CommitmentMismatch` unless (digest, salt) opens ``executor``'s commitment."""
    try:
        recomputed = result_commitment(job, executor, digest, salt)
    except EncodingError as exc:
        raise CommitmentMismatch(f"reveal of {executor} is malformed: {exc}") from exc
    if recomputed != commitment:
        raise CommitmentMismatch(
            f"reveal of {executor} (digest {digest[:14]}...) does not match "
            f"its commitment {commitment[:14]}..."
        )


def check_upload(
    store: BlobStore, digest: str, layout: Layout, *, max_bytes: int = MAX_OUTPUT_BYTES
) -> Tensors:
    """Fetch the upload of a revealed ``digest``, verify its hash, parse and check it against ``layout``."""
    address = digest[2:] if digest.startswith("0x") else digest
    try:
        if store.size(address) > max_bytes:
            raise BadOutput(f"output {digest[:14]}... exceeds {max_bytes} bytes")
        data = store.get(address)
    except BlobNotFound:
        raise UploadMismatch(f"no upload found for revealed digest {digest[:14]}...") from None
    except BlobCorrupted as exc:
        raise UploadMismatch(f"upload does not hash to its revealed digest: {exc}") from exc
    except EncodingError as exc:
        raise UploadMismatch(f"revealed digest is malformed: {exc}") from exc
    try:
        return from_safetensors(data, expected=layout, require_finite=True, max_bytes=max_bytes)
    except DeaiError as exc:
        raise BadOutput(f"output {digest[:14]}... refused: {exc}") from exc

"""The commitments of commit-reveal, EVM-friendly (keccak256 over packed fixed-width fields).

- an executor's result commitment: ``keccak256(job ‖ executor ‖ digest ‖ salt)``
  (32 + 20 + 32 + 32 bytes); binding the executor stops a copycat from reusing another's commit;
- the creator's replication commitment: ``keccak256(job ‖ replicated (1 byte) ‖ primary (2 bytes) ‖ salt)``.
  ``replicated`` says whether every drawn executor runs the job (else only the one at index
  ``primary``); revealed only after the commits, so an executor cannot tell if it is checked.

And the id of a registered model, ``model_id(registrant, task, document)`` = ``0x`` + SHA-256 of
the canonical JSON of the three: the ledger derives it from who registers, so nobody can register
a model under an id another party will use (the id of a task's model depends on the task's
coordinator; a copy of the same document registered by someone else gets a different id).

Salts are 32 bytes, digests 32-byte 0x-hex. A salt must be unpredictable to everyone but its
owner: ``new_salt`` draws one at random; ``derived_salt`` derives one from the owner's own signature
(deterministic under RFC 6979), which is just as secret and lets a seeded run reproduce the ledger
bit for bit.
"""

from __future__ import annotations

import secrets

from deai.core.accounts import Account, check_address
from deai.core.encoding import canonical, from_hex, keccak256, sha256, to_hex

__all__ = ["derived_salt", "model_id", "new_salt", "replication_commitment", "result_commitment"]


def new_salt() -> str:
    return to_hex(secrets.token_bytes(32))


def derived_salt(account: Account, *parts: str) -> str:
    """SHA-256 of ``account``'s signature over ``parts``: secret (needs the key), reproducible."""
    return to_hex(sha256(account.sign(canonical(["deai-salt", *parts]))))


def result_commitment(job: str, executor: str, digest: str, salt: str) -> str:
    return to_hex(
        keccak256(
            from_hex(job, length=32, what="job id")
            + from_hex(executor, length=20, what="executor")
            + from_hex(digest, length=32, what="digest")
            + from_hex(salt, length=32, what="salt")
        )
    )


def replication_commitment(job: str, replicated: bool, primary: int, salt: str) -> str:
    if not 0 <= primary < 1024:
        raise ValueError("primary must be an executor index in [0, 1024)")
    return to_hex(
        keccak256(
            from_hex(job, length=32, what="job id")
            + bytes([1 if replicated else 0])
            + primary.to_bytes(2, "big")
            + from_hex(salt, length=32, what="salt")
        )
    )


def model_id(registrant: str, task: str | None, document: str) -> str:
    """The id a model registered by ``registrant`` (a task's coordinator for a task's model) for
    ``task`` (or None) with provenance ``document`` (0x-hex hash of the document blob) must have."""
    record = {
        "deai-model": {
            "registrant": check_address(registrant),
            "task": None if task is None else task.lower(),
            "document": document.lower(),
        }
    }
    return to_hex(sha256(canonical(record)))

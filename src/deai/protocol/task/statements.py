"""Signed statements: what a provider says about a round, signed by its own account.

A statement is a small JSON object signed (EIP-191, :meth:`deai.core.accounts.Account.sign`) over its
canonical bytes with a domain tag. It is independent of the envelope that carries it, so one
process hosting many provider accounts can send many statements in one envelope, and the
coordinator can keep them as non-repudiable evidence (a provider cannot deny the update it
committed to).

- :class:`UpdateStatement`: "my update for round r of task t is the blob ``update`` trained on
  ``samples`` samples" -- the provider's commitment to its update hash.
- :class:`SecAggStatement`: one secure-aggregation message (wire bytes of
  :mod:`deai.protocol.secagg.messages`) of a provider in a bucket of a round.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deai.core.accounts import Account, check_address, recover_signer
from deai.core.blobs import check_digest
from deai.core.encoding import canonical, from_hex, to_hex
from deai.core.errors import BadSignature, EncodingError
from deai.protocol.task.errors import BadStatement

__all__ = ["MAX_SECAGG_BYTES", "SecAggStatement", "UpdateStatement"]

MAX_SECAGG_BYTES = 8 << 20


def _int(body: dict, name: str, lo: int, hi: int) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise BadStatement(f"statement field {name!r} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


def _common(body: Any, fields: set[str]) -> tuple[str, str, bytes]:
    if not isinstance(body, dict):
        raise BadStatement("a statement must be a JSON object")
    if set(body) != fields:
        raise BadStatement(f"statement fields must be {sorted(fields)}, got {sorted(body)}")
    try:
        task = to_hex(from_hex(body["task"], length=32, what="task id"))
        provider = check_address(body["provider"])
        signature = from_hex(body["signature"], length=65, what="signature")
    except (EncodingError, TypeError) as exc:
        raise BadStatement(f"statement: {exc}") from exc
    return task, provider, signature


def _verify(domain: str, payload: dict, provider: str, signature: bytes) -> None:
    data = canonical({"domain": domain, **payload})
    try:
        signer = recover_signer(data, signature)
    except BadSignature as exc:
        raise BadStatement(f"{domain} statement of {provider}: {exc}") from exc
    if signer != provider:
        raise BadStatement(f"{domain} statement claims provider {provider} but is signed by {signer}")


@dataclass(frozen=True)
class UpdateStatement:
    task: str
    round: int
    provider: str
    update: str  # blob digest (hex, no 0x)
    samples: int
    signature: bytes = b""

    DOMAIN = "deai-update-v1"

    def payload(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "round": self.round,
            "provider": self.provider,
            "update": self.update,
            "samples": self.samples,
        }

    @classmethod
    def sign(cls, account: Account, task: str, round: int, update: str, samples: int) -> UpdateStatement:
        st = cls(task, round, account.address, check_digest(update), samples)
        sig = account.sign(canonical({"domain": cls.DOMAIN, **st.payload()}))
        return cls(st.task, round, st.provider, st.update, samples, sig)

    def to_json(self) -> dict[str, Any]:
        return {**self.payload(), "signature": to_hex(self.signature)}

    @classmethod
    def from_json(cls, body: Any) -> UpdateStatement:
        """Parse and check the signature; raises :class:`BadStatement` naming what is wrong."""
        task, provider, signature = _common(body, {*cls.payload_fields(), "signature"})
        rnd = _int(body, "round", 1, 2**31)
        samples = _int(body, "samples", 1, 2**40)
        try:
            update = check_digest(body["update"])
        except (EncodingError, TypeError) as exc:
            raise BadStatement(f"statement field 'update': {exc}") from exc
        st = cls(task, rnd, provider, update, samples, signature)
        _verify(cls.DOMAIN, st.payload(), provider, signature)
        return st

    @staticmethod
    def payload_fields() -> set[str]:
        return {"task", "round", "provider", "update", "samples"}


@dataclass(frozen=True)
class SecAggStatement:
    task: str
    round: int
    attempt: int
    bucket: int
    provider: str
    data: bytes  # a secagg wire message
    signature: bytes = b""

    DOMAIN = "deai-secagg-v1"

    def payload(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "round": self.round,
            "attempt": self.attempt,
            "bucket": self.bucket,
            "provider": self.provider,
            "data": self.data.hex(),
        }

    @classmethod
    def sign(
        cls, account: Account, task: str, round: int, attempt: int, bucket: int, data: bytes
    ) -> SecAggStatement:
        st = cls(task, round, attempt, bucket, account.address, bytes(data))
        sig = account.sign(canonical({"domain": cls.DOMAIN, **st.payload()}))
        return cls(task, round, attempt, bucket, account.address, bytes(data), sig)

    def to_json(self) -> dict[str, Any]:
        return {**self.payload(), "signature": to_hex(self.signature)}

    @classmethod
    def from_json(cls, body: Any) -> SecAggStatement:
        fields = {"task", "round", "attempt", "bucket", "provider", "data", "signature"}
        task, provider, signature = _common(body, fields)
        rnd = _int(body, "round", 1, 2**31)
        attempt = _int(body, "attempt", 0, 2**20)
        bucket = _int(body, "bucket", 0, 2**20)
        raw = body["data"]
        if not isinstance(raw, str) or len(raw) > 2 * MAX_SECAGG_BYTES:
            raise BadStatement(f"statement field 'data' must be hex of at most {MAX_SECAGG_BYTES} bytes")
        try:
            data = bytes.fromhex(raw)
        except ValueError as exc:
            raise BadStatement(f"statement field 'data' is not hex: {exc}") from exc
        st = cls(task, rnd, attempt, bucket, provider, data, signature)
        _verify(cls.DOMAIN, st.payload(), provider, signature)
        return st

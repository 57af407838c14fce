"""The job spec: what to compute, on which content-addressed inputs, with which seed.

A job is a deterministic function of its inputs, so everything an executor needs is in the spec:

- ``kind``: a name from the job-kind registry (:mod:`deai.protocol.jobs.kinds`);
- ``inputs``: SHA-256 digests of the input blobs (safetensors), in order;
- ``params``: a JSON object of the kind's parameters (canonical JSON: no floats that are NaN, ints
  within +-2**53);
- ``seed``: an integer all randomness in the job derives from;
- ``nonce``: distinguishes re-registrations of the same computation (an escalation round) -- kinds
  ignore it, so equal specs but for the nonce have equal outputs.

The spec's canonical bytes (RFC 8785) are stored as a blob; the **job id** is ``0x`` + the SHA-256 of
those bytes, i.e. the blob's address. Anyone holding the id can fetch the spec and check it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from deai.core.blobs import check_digest
from deai.core.encoding import canonical, decode_canonical, sha256_hex
from deai.core.errors import EncodingError
from deai.protocol.jobs.errors import BadJobSpec

__all__ = ["MAX_INPUTS", "MAX_SPEC_BYTES", "JobSpec"]

MAX_INPUTS = 4096
MAX_SPEC_BYTES = 1 << 20
_FIELDS = {"v", "kind", "inputs", "params", "seed", "nonce"}


@dataclass(frozen=True)
class JobSpec:
    """An immutable, hashable description of one job. Construct, then use :attr:`job_id`."""

    kind: str
    inputs: tuple[str, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    nonce: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not self.kind or len(self.kind) > 64:
            raise BadJobSpec(
                f"job kind must be a non-empty string of at most 64 characters, got {self.kind!r}"
            )
        if isinstance(self.inputs, str) or not isinstance(self.inputs, Sequence):
            raise BadJobSpec("job inputs must be a sequence of blob digests")
        if len(self.inputs) > MAX_INPUTS:
            raise BadJobSpec(f"a job takes at most {MAX_INPUTS} inputs, got {len(self.inputs)}")
        try:
            inputs = tuple(check_digest(d) for d in self.inputs)
        except EncodingError as exc:
            raise BadJobSpec(f"job input: {exc}") from exc
        object.__setattr__(self, "inputs", inputs)
        if not isinstance(self.params, Mapping):
            raise BadJobSpec("job params must be a JSON object")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed < 2**53:
            raise BadJobSpec(f"job seed must be an integer in [0, 2**53), got {self.seed!r}")
        if not isinstance(self.nonce, int) or isinstance(self.nonce, bool) or not 0 <= self.nonce < 2**31:
            raise BadJobSpec(f"job nonce must be an integer in [0, 2**31), got {self.nonce!r}")
        try:
            # Freeze params into their canonical form, so equal specs have equal bytes and ids.
            params = json.loads(canonical(dict(self.params)))
        except EncodingError as exc:
            raise BadJobSpec(f"job params are not canonical JSON: {exc}") from exc
        object.__setattr__(self, "params", params)
        if len(self.to_bytes()) > MAX_SPEC_BYTES:
            raise BadJobSpec(f"job spec exceeds {MAX_SPEC_BYTES} bytes")

    def to_json(self) -> dict[str, Any]:
        return {
            "v": 1,
            "kind": self.kind,
            "inputs": list(self.inputs),
            "params": self.params,
            "seed": self.seed,
            "nonce": self.nonce,
        }

    def to_bytes(self) -> bytes:
        """Canonical bytes; store them as a blob so executors can fetch the spec by its id."""
        return canonical(self.to_json())

    @property
    def digest(self) -> str:
        """SHA-256 hex of :meth:`to_bytes` (the spec blob's address)."""
        return sha256_hex(self.to_bytes())

    @property
    def job_id(self) -> str:
        """``0x`` + :attr:`digest`: the id under which the job is registered on the ledger."""
        return "0x" + self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobSpec) and self.digest == other.digest

    @classmethod
    def from_json(cls, value: Any) -> JobSpec:
        if not isinstance(value, dict):
            raise BadJobSpec("a job spec must be a JSON object")
        if set(value) != _FIELDS:
            raise BadJobSpec(f"job spec fields must be {sorted(_FIELDS)}, got {sorted(value)}")
        if value["v"] != 1:
            raise BadJobSpec(f"unsupported job spec version {value['v']!r}")
        if not isinstance(value["inputs"], list):
            raise BadJobSpec("job inputs must be a list")
        return cls(value["kind"], tuple(value["inputs"]), value["params"], value["seed"], value["nonce"])

    @classmethod
    def from_bytes(cls, data: bytes, *, job_id: str | None = None) -> JobSpec:
        """Parse spec bytes (e.g. fetched by id) and, with ``job_id``, check they are that job's."""
        spec = decode_canonical(
            data, cls.from_json, cls.to_bytes, what="job spec", error=BadJobSpec, max_bytes=MAX_SPEC_BYTES
        )
        if job_id is not None and spec.job_id != job_id.lower():
            raise BadJobSpec(f"job spec hashes to {spec.job_id}, not the job id {job_id}")
        return spec

"""The activation proof: per chunk of 32 generated tokens, a degree-127 polynomial over GF(65521)
that maps the positions of the chunk's 128 largest last-layer activations to their values.

What is committed. For generated token ``t`` let ``h_t`` be the last hidden state (after the final
norm) at the position that produced it (the prompt's last token for ``t = 0``, token ``t - 1``
after). The answer's ``h_t`` are cut into chunks of :data:`CHUNK` = 32 consecutive tokens; each
chunk is flattened (``32 * hidden_size`` values) and its ``k = min(128, size)`` entries of largest
magnitude are selected (position ``i`` in the flattened chunk, value ``v_i``).

How it is encoded (the TOPLOC idea, our parameters). A position maps to the field element
``x_i = i mod p`` with ``p = 65521`` (the largest 16-bit prime; positions whose ``x`` repeats a
larger activation's are skipped, which happens only when a chunk has more than ``p`` values). A
value maps to ``y_i``: its float16 bit pattern rounded to 15 bits (sign, 5 exponent bits, 9
mantissa bits; relative precision 2^-10). The chunk's commitment is the unique polynomial ``P`` of
degree ``< k`` with ``P(x_i) = y_i``: ``k`` coefficients below ``p``, 2 bytes each. On the wire a
chunk is a 2-byte ``k`` and the ``2k`` coefficient bytes: **258 bytes per 32 tokens**, plus a
12-byte header per answer (magic, version, dtype, ``k``, chunk size, token count). The positions
are not sent: the verifier evaluates ``P`` at *its own* top-k positions, so a position the host
did not commit reads as a pseudo-random 16-bit number (a 15-bit code that decodes near the true
value with probability about 2^-7 or less).

How it is compared (:func:`compare`). The verifier recomputes ``h`` with one prefill pass, takes
its own top-k positions per chunk, evaluates ``P`` there and decodes the committed values. A
position *matches* when the decoded value is within 1/8 relative of the recomputed one. Per chunk
it reports the match fraction (``overlap``) and the mean and median relative error over the
matches; :mod:`~deai.protocol.inference.llm.verify` accepts within calibrated thresholds.

The wire form is bounded: :func:`Proof.from_bytes` checks the magic, version, dtype code, ``k``,
chunk size and token count against the protocol's constants and the request, and the exact
length; coefficients must be below ``p``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import torch

from deai.protocol.inference.llm.errors import BadProof
from deai.protocol.inference.llm.request import DTYPES, MAX_NEW_TOKENS

__all__ = [
    "CHUNK",
    "HEADER_BYTES",
    "MATCH_RTOL",
    "PRIME",
    "TOPK",
    "ChunkStats",
    "Proof",
    "build_proof",
    "compare",
    "decode_values",
    "encode_values",
    "evaluate",
    "interpolate",
    "select_topk",
]

PRIME = 65521
"""The field of the index polynomial: the largest prime below 2^16."""
TOPK = 128
"""Activations committed per chunk."""
CHUNK = 32
"""Generated tokens per chunk."""
MATCH_RTOL = 0.125
"""A verifier position matches a committed value within this relative error."""
_MAGIC = b"DL"
_VERSION = 1
_HEADER = struct.Struct(">2sBBHHI")  # magic, version, dtype code, k, chunk, n_tokens
HEADER_BYTES = _HEADER.size
_MAX_CODE = 1 << 15
_F16_MAX_BITS = 0x7BFE  # below the largest finite float16, so rounding up stays finite


def encode_values(v: torch.Tensor) -> np.ndarray:
    """15-bit codes of float values (int64): float16 bits rounded to 9 mantissa bits."""
    h = v.detach().float().clamp(-65504.0, 65504.0).to(torch.float16).view(torch.int16)
    bits = h.to(torch.int64) & 0xFFFF
    sign, mag = bits & 0x8000, torch.clamp(bits & 0x7FFF, max=_F16_MAX_BITS)
    return (((sign | mag) + 1) >> 1).numpy().astype(np.int64)


def decode_values(codes: np.ndarray) -> torch.Tensor:
    """Float32 values of 15-bit codes (codes >= 2^15 decode as NaN: not a value)."""
    c = np.asarray(codes, dtype=np.int64)
    valid = c < _MAX_CODE
    bits = np.where(valid, c << 1, 0).astype(np.uint16).view(np.int16)
    out = torch.from_numpy(bits.copy()).view(torch.float16).float()
    return out.masked_fill(torch.from_numpy(~valid), float("nan"))


def _inv(a: np.ndarray) -> np.ndarray:
    """Modular inverses mod PRIME (Fermat), vectorized square-and-multiply."""
    result = np.ones_like(a)
    base, e = a % PRIME, PRIME - 2
    while e:
        if e & 1:
            result = result * base % PRIME
        base = base * base % PRIME
        e >>= 1
    return result


def interpolate(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Coefficients ``c[0..k-1]`` (low order first) of the polynomial of degree ``< k`` through
    ``(xs[i], ys[i])`` mod :data:`PRIME`; ``xs`` distinct. O(k^2), vectorized over the points."""
    x = np.asarray(xs, dtype=np.int64) % PRIME
    y = np.asarray(ys, dtype=np.int64) % PRIME
    k = x.shape[0]
    m = np.zeros(k + 1, dtype=np.int64)  # M(X) = prod (X - x_i), low order first
    m[0] = 1
    for xi in x:
        m[1:] = (m[:-1] - xi * m[1:]) % PRIME
        m[0] = (-xi * m[0]) % PRIME
    # Q_i = M / (X - x_i) by synthetic division, every i at once: q[:, j] coefficient of X^j
    q = np.zeros((k, k), dtype=np.int64)
    q[:, k - 1] = m[k]
    for j in range(k - 1, 0, -1):
        q[:, j - 1] = (m[j] + x * q[:, j]) % PRIME
    d = np.zeros(k, dtype=np.int64)  # Q_i(x_i) = prod_{j != i} (x_i - x_j), by Horner
    for j in range(k - 1, -1, -1):
        d = (d * x + q[:, j]) % PRIME
    w = y * _inv(d) % PRIME
    return (w @ q) % PRIME


def evaluate(coeffs: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """``P(xs)`` mod :data:`PRIME` for the coefficients (low order first), by Horner."""
    x = np.asarray(xs, dtype=np.int64) % PRIME
    out = np.zeros_like(x)
    for c in np.asarray(coeffs, dtype=np.int64)[::-1]:
        out = (out * x + c) % PRIME
    return out


def select_topk(flat: torch.Tensor, k: int) -> torch.Tensor:
    """Positions (int64) of the ``k`` largest-magnitude entries of ``flat`` whose ``x = i mod p``
    are distinct, largest first (a chunk of at most ``p`` values needs no skipping)."""
    mag = flat.detach().float().abs()
    if flat.numel() <= PRIME:
        return torch.topk(mag, k).indices
    cand = torch.topk(mag, min(flat.numel(), 4 * k)).indices
    _, first = np.unique((cand % PRIME).numpy(), return_index=True)
    keep = np.sort(first)[:k]
    return cand[torch.from_numpy(keep)]


def _k_of(numel: int) -> int:
    return min(TOPK, numel)


@dataclass(frozen=True)
class Proof:
    """A decoded proof: the precision, the token count and one coefficient array per chunk."""

    dtype: str
    n_tokens: int
    chunks: tuple[np.ndarray, ...]

    def to_bytes(self) -> bytes:
        parts = [_HEADER.pack(_MAGIC, _VERSION, DTYPES.index(self.dtype), TOPK, CHUNK, self.n_tokens)]
        for c in self.chunks:
            parts.append(struct.pack(">H", c.shape[0]) + c.astype(">u2").tobytes())
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes, *, n_tokens: int, hidden_size: int) -> Proof:
        """Parse and bound a proof for an answer of ``n_tokens`` tokens of a model with
        ``hidden_size``; raise :class:`BadProof` on any deviation."""
        if not isinstance(data, bytes | bytearray):
            raise BadProof("a proof is bytes")
        if not 1 <= n_tokens <= MAX_NEW_TOKENS:
            raise BadProof(f"token count {n_tokens} out of range")
        n_chunks = -(-n_tokens // CHUNK)
        if len(data) > HEADER_BYTES + n_chunks * (2 + 2 * TOPK):
            raise BadProof(f"proof of {len(data)} bytes is larger than {n_tokens} tokens allow")
        if len(data) < HEADER_BYTES:
            raise BadProof("proof shorter than its header")
        magic, version, dtype_code, k, chunk, n = _HEADER.unpack_from(data, 0)
        if magic != _MAGIC or version != _VERSION:
            raise BadProof("not a version-1 LLM proof")
        if dtype_code >= len(DTYPES):
            raise BadProof(f"unknown dtype code {dtype_code}")
        if k != TOPK or chunk != CHUNK:
            raise BadProof(f"proof parameters k={k}, chunk={chunk}; the protocol's are {TOPK}, {CHUNK}")
        if n != n_tokens:
            raise BadProof(f"proof covers {n} tokens, the answer has {n_tokens}")
        chunks, off = [], HEADER_BYTES
        for j in range(n_chunks):
            size = min(CHUNK, n_tokens - j * CHUNK) * hidden_size
            if off + 2 > len(data):
                raise BadProof("proof truncated")
            (kc,) = struct.unpack_from(">H", data, off)
            if kc != _k_of(size):
                raise BadProof(f"chunk {j} commits {kc} values, expected {_k_of(size)}")
            off += 2
            if off + 2 * kc > len(data):
                raise BadProof("proof truncated")
            coeffs = np.frombuffer(data, dtype=">u2", count=kc, offset=off).astype(np.int64)
            if int(coeffs.max()) >= PRIME:
                raise BadProof(f"chunk {j}: a coefficient is not below {PRIME}")
            chunks.append(coeffs)
            off += 2 * kc
        if off != len(data):
            raise BadProof(f"{len(data) - off} trailing bytes after the last chunk")
        return cls(DTYPES[dtype_code], n_tokens, tuple(chunks))


def build_proof(hidden: torch.Tensor, dtype: str) -> Proof:
    """The proof of an answer whose last hidden states (one row per generated token) are
    ``hidden`` ``[n, hidden_size]``."""
    if hidden.dim() != 2 or not 1 <= hidden.shape[0] <= MAX_NEW_TOKENS:
        raise BadProof(f"hidden states must be [n_tokens, hidden_size], got {tuple(hidden.shape)}")
    if not bool(torch.isfinite(hidden).all()):
        raise BadProof("non-finite hidden states")
    chunks = []
    for start in range(0, hidden.shape[0], CHUNK):  # one iteration per 32 tokens
        flat = hidden[start : start + CHUNK].reshape(-1).float()
        pos = select_topk(flat, _k_of(flat.numel()))
        chunks.append(interpolate(pos.numpy(), encode_values(flat[pos])))
    return Proof(dtype, int(hidden.shape[0]), tuple(chunks))


@dataclass(frozen=True)
class ChunkStats:
    """One chunk's comparison: the fraction of the verifier's top-k positions that match the
    committed values, and the mean and median relative error of the matches (1.0 if none)."""

    overlap: float
    err_mean: float
    err_median: float


def compare(proof: Proof, hidden: torch.Tensor) -> list[ChunkStats]:
    """Compare ``proof`` with recomputed last hidden states ``hidden`` ``[n, hidden_size]``."""
    if hidden.shape[0] != proof.n_tokens or len(proof.chunks) != -(-proof.n_tokens // CHUNK):
        raise BadProof("the proof and the recomputed states cover different token counts")
    out = []
    for j, coeffs in enumerate(proof.chunks):
        flat = hidden[j * CHUNK : (j + 1) * CHUNK].reshape(-1).float()
        pos = select_topk(flat, coeffs.shape[0])
        committed = decode_values(evaluate(coeffs, pos.numpy()))
        mine = flat[pos]
        rel = (committed - mine).abs() / mine.abs().clamp_min(1e-30)
        match = torch.nan_to_num(rel, nan=float("inf")) <= MATCH_RTOL
        m = rel[match]
        out.append(
            ChunkStats(
                overlap=float(match.float().mean()),
                err_mean=float(m.mean()) if m.numel() else 1.0,
                err_median=float(m.median()) if m.numel() else 1.0,
            )
        )
    return out

"""The cryptographic building blocks of a round, all from the ``cryptography`` package.

- X25519 key agreement, HKDF-SHA256 to turn a shared point into a 32-byte key bound to the round;
- masks: the ChaCha20 keystream of a 32-byte key, read as ring elements (a cryptographic PRG, so a
  mask is indistinguishable from uniform to anyone without the key);
- share encryption: AES-256-GCM under the pairwise encryption key, the nonce fixed by (sender,
  receiver) so the two directions of a pair never reuse one (keys are fresh every round);
- a randomness source: the OS by default, or a ChaCha20 stream of a seed for reproducible simulations.
"""

from __future__ import annotations

import hashlib
import os
import struct

import numpy as np
import numpy.typing as npt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from deai.protocol.secagg.errors import ForgedShare, MalformedMessage

__all__ = [
    "KEY_BYTES",
    "Randomness",
    "agree",
    "commit",
    "decrypt_share",
    "encrypt_share",
    "expand_mask",
    "load_public",
    "private_key",
    "public_bytes",
]

KEY_BYTES = 32


class Randomness:
    """Random bytes: ``os.urandom`` when ``seed`` is None, else a ChaCha20 keystream of the seed.

    Seeded randomness is for simulations and tests only (anyone who knows the seed knows the keys).
    """

    def __init__(self, seed: bytes | None = None) -> None:
        self._stream = None
        if seed is not None:
            key = hashlib.sha256(b"deai-secagg-rng" + seed).digest()
            self._stream = Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor()

    def __call__(self, n: int) -> bytes:
        if self._stream is None:
            return os.urandom(n)
        return self._stream.update(bytes(n))


def private_key(random_bytes: Randomness) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(random_bytes(KEY_BYTES))


def public_bytes(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def load_public(data: bytes, what: str = "public key") -> X25519PublicKey:
    if len(data) != KEY_BYTES:
        raise MalformedMessage(f"{what} must be {KEY_BYTES} bytes, got {len(data)}")
    return X25519PublicKey.from_public_bytes(data)


def agree(own: X25519PrivateKey, other: bytes, round_id: bytes, purpose: bytes) -> bytes:
    """A 32-byte key shared by the two holders of the pair, bound to the round and a purpose."""
    try:
        shared = own.exchange(load_public(other))
    except ValueError as exc:  # all-zero shared secret: a low-order point, i.e. a malicious key
        raise MalformedMessage(f"public key is a low-order point: {exc}") from exc
    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=round_id, info=b"deai-secagg:" + purpose
    ).derive(shared)


def expand_mask(key: bytes, dim: int, dtype: npt.DTypeLike) -> np.ndarray:
    """``dim`` uniform ring elements from the ChaCha20 keystream of ``key`` (one key, one mask)."""
    dtype = np.dtype(dtype)
    stream = Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor()
    return np.frombuffer(stream.update(bytes(dim * dtype.itemsize)), dtype=dtype.newbyteorder("<"))


def _nonce(sender: int, receiver: int) -> bytes:
    return struct.pack(">II", sender, receiver) + bytes(4)


def encrypt_share(key: bytes, sender: int, receiver: int, round_id: bytes, plaintext: bytes) -> bytes:
    return AESGCM(key).encrypt(_nonce(sender, receiver), plaintext, round_id)


def decrypt_share(key: bytes, sender: int, receiver: int, round_id: bytes, ciphertext: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(_nonce(sender, receiver), ciphertext, round_id)
    except InvalidTag as exc:
        raise ForgedShare(f"share ciphertext from provider {sender} fails authentication") from exc


def commit(round_id: bytes, *parts: bytes | int) -> bytes:
    """SHA-256 commitment to ``parts`` (ints as 4-byte big-endian), bound to the round."""
    h = hashlib.sha256(b"deai-secagg-commit" + round_id)
    for p in parts:
        h.update(struct.pack(">I", p) if isinstance(p, int) else struct.pack(">I", len(p)) + p)
    return h.digest()

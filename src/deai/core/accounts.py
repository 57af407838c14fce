"""Accounts: secp256k1 keys in the standard encrypted Ethereum keystore format.

One account signs both network messages and (later) EVM transactions. Signatures over arbitrary
bytes follow EIP-191 (``personal_sign``): the signed hash is
``keccak256(b"\\x19Ethereum Signed Message:\\n" + len(data) + data)``, so any Ethereum wallet or
contract (``ecrecover``) can check a deai signature.

Install ``coincurve`` (a dependency of deai) so that signing and recovery run in libsecp256k1.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account as _EthAccount
from eth_account.messages import _hash_eip191_message, encode_defunct
from eth_keys import keys as _keys
from eth_keys.exceptions import BadSignature as _EthBadSignature
from eth_utils import is_checksum_address, to_checksum_address

from deai.core.errors import BadSignature, DeaiError, EncodingError

__all__ = [
    "Account",
    "check_address",
    "message_hash",
    "recover_signer",
    "verify_signature",
]

SIGNATURE_LENGTH = 65


def message_hash(data: bytes) -> bytes:
    """The EIP-191 hash that a signature over ``data`` signs."""
    return bytes(_hash_eip191_message(encode_defunct(primitive=data)))


def check_address(address: str) -> str:
    """Return the checksummed form of ``address``; raise if it is not a 20-byte hex address."""
    if not isinstance(address, str) or len(address) != 42 or not address.startswith("0x"):
        raise EncodingError(f"not an address: {str(address)[:50]!r}")
    return _checksummed(address)


# Every message and transaction checks a few addresses, and a network has few distinct ones: the
# Keccak of an EIP-55 checksum is computed once per address (refusals raise and are not cached).
@functools.lru_cache(maxsize=1 << 16)
def _checksummed(address: str) -> str:
    try:
        checksummed = to_checksum_address(address)
    except ValueError as exc:
        raise EncodingError(f"not an address: {address!r}") from exc
    # A mixed-case address must carry a valid checksum; all-lower/upper is accepted as unchecked.
    if address != address.lower() and address[2:] != address[2:].upper() and not is_checksum_address(address):
        raise EncodingError(f"address checksum is wrong: {address!r}")
    return checksummed


def recover_signer(data: bytes, signature: bytes) -> str:
    """Recover the checksummed address that produced ``signature`` over ``data``."""
    if not isinstance(signature, bytes | bytearray) or len(signature) != SIGNATURE_LENGTH:
        raise BadSignature(f"signature must be {SIGNATURE_LENGTH} bytes")
    v = signature[64]
    if v >= 27:
        v -= 27
    if v not in (0, 1):
        raise BadSignature(f"signature recovery id must be 27/28 or 0/1, got {signature[64]}")
    try:
        sig = _keys.Signature(bytes(signature[:64]) + bytes([v]))
        public_key = sig.recover_public_key_from_msg_hash(message_hash(bytes(data)))
    except (_EthBadSignature, ValueError) as exc:
        raise BadSignature(f"signature does not verify: {exc}") from exc
    # one Keccak for the address; its EIP-55 checksum (a second Keccak) is cached per address
    return _checksummed("0x" + public_key.to_canonical_address().hex())


def verify_signature(data: bytes, signature: bytes, address: str) -> bool:
    """True when ``signature`` over ``data`` was made by ``address``."""
    try:
        return recover_signer(data, signature) == check_address(address)
    except (BadSignature, EncodingError):
        return False


@dataclass(frozen=True)
class Account:
    """A secp256k1 key pair with its Ethereum address.

    Create with :meth:`create` (fresh randomness) or :meth:`from_seed` (deterministic, for
    simulations and tests — never for real funds). Persist with :meth:`save`/:meth:`load`
    as an encrypted keystore (scrypt + AES-128-CTR, keystore version 3).
    """

    private_key: bytes

    def __post_init__(self) -> None:
        if len(self.private_key) != 32:
            raise DeaiError("a private key is 32 bytes")
        # Cache the derived key objects; frozen dataclass so go through object.__setattr__.
        object.__setattr__(self, "_key", _keys.PrivateKey(self.private_key))
        # the address is read for every message signed and checked: its two Keccaks once
        object.__setattr__(self, "_address", self._key.public_key.to_checksum_address())  # type: ignore[attr-defined]

    def __repr__(self) -> str:  # never print the private key
        return f"Account({self.address})"

    @classmethod
    def create(cls) -> Account:
        return cls(secrets.token_bytes(32))

    @classmethod
    def from_seed(cls, seed: int | str, index: int = 0) -> Account:
        """A deterministic account for simulations: the key is sha256(f"deai:{seed}:{index}")."""
        import hashlib

        for counter in range(1000):
            key = hashlib.sha256(f"deai-account:{seed}:{index}:{counter}".encode()).digest()
            try:
                return cls(key)
            except Exception:  # key outside the curve order, astronomically rare
                continue
        raise DeaiError("could not derive a key")  # pragma: no cover

    @property
    def address(self) -> str:
        return self._address  # type: ignore[attr-defined]

    @property
    def public_key(self) -> bytes:
        return self._key.public_key.to_bytes()  # type: ignore[attr-defined]

    def sign(self, data: bytes) -> bytes:
        """EIP-191 signature (65 bytes: r, s, v with v in {27, 28}) over ``data``."""
        sig = self._key.sign_msg_hash(message_hash(data))  # type: ignore[attr-defined]
        return sig.to_bytes()[:64] + bytes([sig.v + 27])

    def to_eth_account(self):
        """The same key as an ``eth_account`` LocalAccount (for signing EVM transactions)."""
        return _EthAccount.from_key(self.private_key)

    # -- keystore -----------------------------------------------------------------------------

    def encrypt(self, password: str) -> dict:
        """Standard Ethereum keystore v3 JSON (scrypt KDF)."""
        return _EthAccount.encrypt(self.private_key, password)

    @classmethod
    def decrypt(cls, keystore: dict | str, password: str) -> Account:
        try:
            key = _EthAccount.decrypt(keystore, password)
        except ValueError as exc:
            raise DeaiError(f"cannot decrypt keystore: {exc}") from exc
        return cls(bytes(key))

    def save(self, path: str | os.PathLike, password: str) -> Path:
        """Write the encrypted keystore to ``path`` (created with mode 0600)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps(self.encrypt(password), indent=2).encode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, password: str) -> Account:
        try:
            keystore = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DeaiError(f"cannot read keystore {path}: {exc}") from exc
        return cls.decrypt(keystore, password)

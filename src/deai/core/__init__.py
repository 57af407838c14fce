"""core: accounts and signatures, canonical encoding and hashing, signed envelopes,
content-addressed blobs, tensor I/O. Never touches the network."""

from deai.core.accounts import Account, check_address, recover_signer, verify_signature
from deai.core.blobs import BlobStore
from deai.core.encoding import canonical, from_hex, hash_value, keccak256, sha256, sha256_hex, to_hex
from deai.core.envelope import Envelope, EnvelopeVerifier, ReplayCache, now_ms
from deai.core.tensorio import FlatSpec, flatten, from_safetensors, tensor_digest, to_safetensors, unflatten

__all__ = [
    "Account",
    "BlobStore",
    "Envelope",
    "EnvelopeVerifier",
    "FlatSpec",
    "ReplayCache",
    "canonical",
    "check_address",
    "flatten",
    "from_hex",
    "from_safetensors",
    "hash_value",
    "keccak256",
    "now_ms",
    "recover_signer",
    "sha256",
    "sha256_hex",
    "tensor_digest",
    "to_hex",
    "to_safetensors",
    "unflatten",
    "verify_signature",
]

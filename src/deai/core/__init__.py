"""core: accounts and signatures, canonical encoding and hashing, signed envelopes,
content-addressed blobs, tensor I/O, the registry style. Never touches the network.

The package exports what a user of deai needs; the rest is imported from its module
(:mod:`deai.core.accounts`, :mod:`deai.core.encoding`, :mod:`deai.core.envelope`,
:mod:`deai.core.blobs`, :mod:`deai.core.tensorio`, :mod:`deai.core.registry`, :mod:`deai.core.errors`).
"""

from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.encoding import canonical, hash_value
from deai.core.envelope import Envelope, EnvelopeVerifier
from deai.core.errors import DeaiError
from deai.core.tensorio import from_safetensors, to_safetensors

__all__ = [
    "Account",
    "BlobStore",
    "DeaiError",
    "Envelope",
    "EnvelopeVerifier",
    "canonical",
    "from_safetensors",
    "hash_value",
    "to_safetensors",
]

"""core: accounts and signatures, canonical encoding and hashing, signed envelopes,
content-addressed blobs, tensor I/O, the registry style. Never touches the network.

The package exports what a user of deai needs; the rest is imported from its module
(:mod:`deai.core.accounts`, :mod:`deai.core.encoding`, :mod:`deai.core.envelope`,
:mod:`deai.core.blobs`, :mod:`deai.core.tensorio`, :mod:`deai.core.registry`, :mod:`deai.core.errors`).
The exports load on first use (PEP 562), so importing one module (``deai.core.accounts``) does not
pull in torch through ``deai.core.tensorio``: commands that need no model code start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_WHERE = {
    "Account": "accounts",
    "BlobStore": "blobs",
    "DeaiError": "errors",
    "Envelope": "envelope",
    "EnvelopeVerifier": "envelope",
    "canonical": "encoding",
    "from_safetensors": "tensorio",
    "hash_value": "encoding",
    "to_safetensors": "tensorio",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'deai.core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"deai.core.{_WHERE[name]}"), name)
    globals()[name] = value
    return value

"""deai: train and serve deep-learning models among parties who do not trust each other.

Layers (each imports only the layers below it)::

    cli · sim           what a person touches
    node                hub and participant daemons
    net                 transports (in-memory, HTTP)
    protocol            task lifecycle, verified jobs, secure aggregation, scoring, settlement
    learn               data, models, training, strategies, robust aggregators, attacks, privacy
    ledger              stakes, escrows, rewards, reputation (SQLite or EVM)
    core                accounts, canonical encoding, envelopes, blobs, tensor I/O
"""

import contextlib as _contextlib
import sys as _sys

__version__ = "0.1.0"
__all__ = ["__version__"]

# py_ecc (imported by eth-account) raises the recursion limit to 100,000 when first imported; a
# recursive parser fed deeply nested input then overflows the C stack (SIGSEGV) instead of raising
# RecursionError. Import it here, before any deai module pulls in eth-account, and put the limit
# back: deai uses libsecp256k1 (coincurve) for keys, none of py_ecc's recursive pairing code.
_limit = _sys.getrecursionlimit()
with _contextlib.suppress(ImportError):  # eth-account brings it today; if not, nothing to undo
    import py_ecc as _py_ecc  # noqa: F401
_sys.setrecursionlimit(min(_limit, 10_000))
del _limit

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

__version__ = "0.1.0"
__all__ = ["__version__"]

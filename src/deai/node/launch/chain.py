"""Where a network's ledger lives when it is a chain, and how each party opens its view of it.

:class:`ChainRef` names an EVM ledger: the chain's JSON-RPC URL and the address of the network's
Ledger contract. The address is what a participant must get from a source it trusts (the network's
docs, the genesis announcement, the output of ``deai chain deploy``), never from the hub: anyone can
deploy a contract with the same genesis, so a hub that named the contract could name its own.

- :func:`hub_ledger` -- the hub's ledger: it relays the participants' signed transactions to the
  contract (the node's first unlocked account pays the gas unless a relayer is given) and reads it.
- :func:`participant_chain` -- a participant's read-only view: the network config is taken from
  the hub's ``hub.info`` answer but accepted only if the contract's genesis hash equals its hash
  (:class:`~deai.ledger.evm.backend.EvmLedger` checks), so a lying hub is caught at start.
- :func:`deploy_ledger` -- deploy the network's contracts on a chain; returns the address.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deai.core.accounts import Account
from deai.ledger.config import NetworkConfig
from deai.ledger.errors import LedgerError

__all__ = ["MAX_LAG_S", "ChainRef", "deploy_ledger", "hub_ledger", "participant_chain"]

# how old a latest-block number the hub's and the participants' reads may use (EvmLedger.max_lag_s):
# polls read many views; asking the chain for its block once per read doubled their round trips
MAX_LAG_S = 0.1


@dataclass(frozen=True)
class ChainRef:
    """An EVM ledger: ``rpc`` (the chain's JSON-RPC URL) and ``address`` (its Ledger contract)."""

    rpc: str
    address: str

    def args(self) -> list[str]:
        """The command-line flags of ``deai hub`` and ``deai node`` that name it."""
        return ["--rpc", self.rpc, "--ledger-address", self.address]


def deploy_ledger(rpc: str, config: NetworkConfig, relayer: Account | None = None) -> ChainRef:
    """Deploy the network's ledger contracts on the chain at ``rpc``."""
    from deai.ledger.evm.backend import EvmLedger

    ledger = EvmLedger(rpc, config, relayer=relayer)
    return ChainRef(rpc, ledger.address)


def hub_ledger(ref: ChainRef, config: NetworkConfig, relayer: Account | None = None) -> Any:
    """The hub's :class:`~deai.ledger.evm.backend.EvmLedger` on ``ref`` (a relayer of signed txs)."""
    from deai.ledger.evm.backend import EvmLedger

    return EvmLedger(ref.rpc, config, relayer=relayer, deploy=ref.address, max_lag_s=MAX_LAG_S)


def participant_chain(ref: ChainRef, hub_config: Mapping[str, Any]) -> Any:
    """A participant's read-only view of the ledger on ``ref``; ``hub_config``: the config the hub
    announced, checked against the contract's genesis hash (a mismatch raises LedgerError)."""
    from deai.ledger.evm.backend import EvmLedger

    try:
        config = NetworkConfig.from_dict(dict(hub_config))
    except (TypeError, ValueError, KeyError) as exc:
        raise LedgerError(f"the hub's network config is malformed: {exc}") from None
    return EvmLedger(ref.rpc, config, deploy=ref.address, max_lag_s=MAX_LAG_S)

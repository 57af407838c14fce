"""The chain plumbing of the EVM ledger: sending transactions as the relayer, and deploying the
contracts.

:class:`Relay` sends contract calls and deployments from the account that pays the gas (a
:class:`~deai.core.accounts.Account` with ether, or None for the node's first unlocked account)
and waits for each receipt; it keeps the relayer's nonce itself and re-reads it from the node
after a failed send. :func:`deploy` deploys the Jobs contract, then the Ledger naming it, then
binds the Jobs to the Ledger.
"""

from __future__ import annotations

from typing import Any

from eth_typing import ChecksumAddress
from web3 import Web3

from deai.core.accounts import Account
from deai.core.encoding import keccak256
from deai.ledger.config import ROLES, NetworkConfig
from deai.ledger.errors import LedgerError
from deai.ledger.evm.compile import compiled
from deai.ledger.evm.views import b32

__all__ = ["DEPLOY_GAS", "GAS_LIMIT", "Relay", "deploy"]

GAS_LIMIT = 3_000_000
DEPLOY_GAS = 12_000_000


class Relay:
    """Sends transactions from ``relayer`` (None: the node's first unlocked account)."""

    def __init__(self, w3: Web3, relayer: Account | None) -> None:
        self.w3, self.relayer = w3, relayer
        self._nonce: int | None = None
        self._sender = relayer.address if relayer is not None else None

    @property
    def sender(self) -> str:
        """The relayer's address (asked of the node once when it is the node's account)."""
        if self._sender is None:
            self._sender = self.w3.eth.accounts[0]
        return self._sender

    def transact(self, fn: Any, gas: int = GAS_LIMIT) -> Any:
        """Send a contract call or deployment and wait for its receipt."""
        if self.relayer is None:
            tx_hash = fn.transact({"from": self.sender, "gas": gas})
        else:
            if self._nonce is None:
                self._nonce = self.w3.eth.get_transaction_count(
                    Web3.to_checksum_address(self.relayer.address), "pending"
                )
            tx = fn.build_transaction({"from": self.relayer.address, "nonce": self._nonce, "gas": gas})
            signed = self.relayer.to_eth_account().sign_transaction(tx)
            try:
                tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            except Exception:
                self._nonce = None
                raise
            self._nonce += 1
        return self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)


def deploy(relay: Relay, config: NetworkConfig, clock_driven: bool) -> ChecksumAddress:
    """Deploy the contracts for ``config``; the Ledger contract's address. ``clock_driven``: a
    development chain whose block timestamps are set from a clock in microseconds."""
    w3, cfg = relay.w3, config
    jc = compiled("Jobs")
    params = [
        cfg.stake_fee_ratio_bps,
        cfg.min_job_fee,
        cfg.max_job_window_ms,
        cfg.max_executors,
        cfg.resolve_grace_ms,
        cfg.slash_bps,
        cfg.slash_reward_bps,
    ]
    rep = [cfg.rep_step_bps, cfg.rep_min_bps, cfg.rep_max_bps, cfg.rep_job_win, cfg.rep_job_fault]
    jobs_ctor = w3.eth.contract(abi=jc.abi, bytecode=jc.bytecode).constructor(
        params, rep, list(cfg.resolvers)
    )
    receipt = relay.transact(jobs_ctor, gas=DEPLOY_GAS)
    if receipt["status"] != 1:
        raise LedgerError(f"the jobs contract's deployment failed (gas used {receipt['gasUsed']})")
    jobs = w3.eth.contract(address=receipt["contractAddress"], abi=jc.abi)
    c = compiled()
    if clock_driven:  # ledger ms = (timestamp - origin) * num // den, the timestamp in microseconds
        origin, num, den = int(w3.eth.get_block("latest")["timestamp"]), 1, 1000
    else:
        origin, num, den = 0, 1000, 1
    ctor = w3.eth.contract(abi=c.abi, bytecode=c.bytecode).constructor(
        b32(cfg.genesis_hash),
        keccak256(cfg.network.encode()),
        cfg.minter,
        cfg.reputation_oracle,
        cfg.slasher,
        [cfg.min_stake[r] for r in ROLES],
        cfg.unbonding_delay_ms,
        origin,
        num,
        den,
        jobs.address,
    )
    receipt = relay.transact(ctor, gas=DEPLOY_GAS)
    if receipt["status"] != 1:
        raise LedgerError(f"the ledger contract's deployment failed (gas used {receipt['gasUsed']})")
    address = Web3.to_checksum_address(receipt["contractAddress"])
    if relay.transact(jobs.functions.bind(address))["status"] != 1:
        raise LedgerError("binding the jobs contract to the ledger failed")
    return address

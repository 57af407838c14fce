"""The ledger on an EVM chain: :class:`EvmLedger` implements :class:`~deai.ledger.base.Ledger` over
the contracts ``contracts/Ledger.vy`` (funds, stakes, tasks, payouts, models) and
``contracts/Jobs.vy`` (verified jobs; it acts on the Ledger through a narrow interface) with web3.py.

``EvmLedger(chain, config, relayer=None, deploy=True, clock=None)``:

- ``chain``: a ``Web3`` (e.g. :func:`deai.ledger.evm.node.tester_chain`) or a JSON-RPC URL.
- ``deploy``: True deploys fresh contracts for ``config``; an address attaches to a deployed Ledger
  contract (its genesis hash must be ``config.genesis_hash``; the Jobs contract is the one it names).
  ``ledger.address`` is the Ledger contract.
- ``relayer``: the account that pays the gas (an :class:`~deai.core.accounts.Account` with ether);
  None uses the node's first unlocked account (eth-tester, anvil). The relayer is untrusted: the
  contract checks each transaction's EIP-712 signature (``SignedTx.typed_signature``), sender and
  nonce itself, so a relayer can only refuse to relay.
- ``max_lag_s``: reads may use a latest-block number up to this old (0: every read asks the chain
  for it). A hub and a participant's view use a tenth of a second: a poll then costs no extra
  round trip per read. Writes through this object are read back at once, and :meth:`refresh`
  makes the next read ask the chain (a client calls it after the hub relayed its transactions).
- ``clock``: None takes the chain's time (block timestamps in seconds; the ledger clock in ms is
  ``timestamp * 1000``). A clock (e.g. :class:`~deai.ledger.base.ManualClock`) drives a development
  chain instead: each block's timestamp is set to the clock in microseconds, so ledger times follow
  the clock to the millisecond (up to 1,000 transactions per millisecond).

Submitting: the transaction is parsed and checked like on the local backends, then run by the
reference machine on the mirror state (the log replayed to the latest block). One it accepts is
sent; one it refuses is simulated with ``eth_call`` against the pending block, and sent only if the
contract accepts it (the contract decides, never the mirror), so a refused transaction costs
nothing and changes nothing. The contract's revert reason names the :mod:`deai.ledger.errors`
class raised (its message comes from the reference machine run on the mirror state, so it names
the same amounts). A transaction the reference accepted but the chain reverted (another relay's
transaction got in first, or the contract and the reference machine disagree, which ``verify``
then reports) costs the relayer its gas once, is refused with the contract's reason, and from
then on every transaction is simulated before it is sent (``simulate_first``). ``submit_many``
sends the transactions one by one (each is its own chain transaction; there is no all-or-nothing
batch on chain).

Queries read the contracts' views at the latest block, cached for that block
(:mod:`deai.ledger.evm.views`). ``events``/``history``/``head``/``state_root`` come from the
logs (:mod:`deai.ledger.evm.follow`). A job's record combines what the Jobs contract stores
(money, deadlines, counts, status, the drawn executors) with what only its transactions carry
(``job_type``, ``inputs``, and who was accepted, faulted and missed, from the resolution's log),
replayed from the chain by the follower.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from web3 import EthereumTesterProvider, Web3
from web3.exceptions import ContractLogicError, Web3RPCError

from deai.core.accounts import Account
from deai.ledger import errors
from deai.ledger.base import Head, Ledger, Receipt, TxRecord, VerifyReport
from deai.ledger.config import MAX_AMOUNT, ROLES, NetworkConfig
from deai.ledger.errors import LedgerError, UnknownTxKind, WrongNetwork
from deai.ledger.evm.audit import stored_state
from deai.ledger.evm.compile import compiled
from deai.ledger.evm.follow import Follower
from deai.ledger.evm.node import set_next_timestamp
from deai.ledger.evm.relay import GAS_LIMIT, Relay
from deai.ledger.evm.relay import deploy as deploy_contracts
from deai.ledger.evm.views import BlockView, Views, b32, hex_
from deai.ledger.machine import apply
from deai.ledger.records import (
    JobRecord,
    MemberRecord,
    ModelRecord,
    PayoutRecord,
    TaskRecord,
    UnbondingRecord,
)
from deai.ledger.rules.base import Context, Event
from deai.ledger.rules.jobs import eligible_executors
from deai.ledger.state import State
from deai.ledger.tx import TX_TYPES, SignedTx, checked_signed_tx
from deai.ledger.typed import abi_args

__all__ = ["SUPPLY_VIEWS", "EvmLedger"]

# register_job reads every provider of the role, a first stake walks them to insert itself in
# order (at most 1,024 per role: about 10 M and 5 M gas at the bound)
DRAW_GAS_LIMIT = 25_000_000
# supply bucket -> the Ledger contract's running total
SUPPLY_VIEWS = {
    "balances": "total_balances",
    "stakes": "total_stakes",
    "unbonding": "total_unbonding",
    "task_escrow": "total_task_escrow",
    "task_stakes": "total_task_stakes",
    "job_escrow": "total_job_escrow",
    "unclaimed_payouts": "total_unclaimed",
    "royalty_pools": "total_royalty_pools",
    "burned": "burned",
}
_REVERTS: tuple[type[Exception], ...] = (ContractLogicError, Web3RPCError)
try:  # the in-process chain raises its own exception for a revert
    from eth_tester.exceptions import TransactionFailed  # type: ignore[import-untyped]

    _REVERTS = (*_REVERTS, TransactionFailed)
except ImportError:  # pragma: no cover - eth-tester is a test dependency
    pass
_ERRORS = {
    name: cls for name, cls in vars(errors).items() if isinstance(cls, type) and issubclass(cls, LedgerError)
}


class EvmLedger(Ledger):
    """The ledger contract behind the ``Ledger`` interface (see the module docstring)."""

    def __init__(
        self,
        chain: Web3 | str,
        config: NetworkConfig,
        *,
        relayer: Account | None = None,
        deploy: bool | str = True,
        clock: Callable[[], int] | None = None,
        max_lag_s: float = 0.0,
    ) -> None:
        self.config = config
        self.max_lag_s = max_lag_s
        self._latest: tuple[int, float] | None = None  # (block number, when it was read)
        self.w3 = Web3(Web3.HTTPProvider(chain)) if isinstance(chain, str) else chain
        self.relayer = relayer
        # the chain without web3's middleware (none applies to what the backend sends and reads:
        # contract calls with explicit fields, receipts and logs read by key)
        self.bare = Web3(self.w3.provider, middleware=[])
        self.relay = Relay(self.bare, relayer)
        self._clock = clock
        self._lock = threading.RLock()
        c = compiled()
        self.supported = self.supported_kinds()
        if deploy is True:
            address = deploy_contracts(self.relay, config, clock is not None)
        elif isinstance(deploy, str):
            address = Web3.to_checksum_address(deploy)
        else:
            raise LedgerError("deploy must be True or the address of a deployed ledger contract")
        self.contract = self.w3.eth.contract(address=address, abi=c.abi)
        views = self.contract.functions
        if hex_(views.genesis().call()) != config.genesis_hash:
            raise LedgerError(f"the contract at {address} is not a ledger of this network config")
        self.jobs = self.w3.eth.contract(address=views.jobs().call(), abi=compiled("Jobs").abi)
        self._time = (views.time_origin().call(), views.time_num().call(), views.time_den().call())
        self._deployed_at = views.deployed_at().call()
        # on the in-process chain reads name its relaying account (it asks for its accounts otherwise)
        in_process = isinstance(self.w3.provider, EthereumTesterProvider) and relayer is None
        self.views = Views(
            self.bare.eth.contract(address=address, abi=c.abi),
            self.bare.eth.contract(address=self.jobs.address, abi=self.jobs.abi),
            {"from": self.relay.sender} if in_process else None,
        )
        # tx hash -> a transaction this process relayed, until the follower reads it (see Follower)
        self.known: dict[bytes, SignedTx] = {}
        self.simulate_first = False  # True after the chain reverted a transaction (see the module doc)
        self.follower = self._follower()

    def _follower(self) -> Follower:
        return Follower(
            self.bare, self.contract, self.config, self._deployed_at, jobs=self.jobs, known=self.known
        )

    @staticmethod
    def supported_kinds() -> frozenset[str]:
        """The transaction kinds the contracts have a function for."""
        abi = compiled().abi + compiled("Jobs").abi
        return frozenset(i["name"] for i in abi if i["type"] == "function") & set(TX_TYPES)

    @property
    def address(self) -> str:
        return self.contract.address

    # -- chain plumbing ---------------------------------------------------------------------------------

    def _block(self, fresh: bool = False) -> int:
        """The latest block number, asked of the chain at most once per ``max_lag_s``."""
        now, latest = time.monotonic(), self._latest
        if not fresh and latest is not None and now - latest[1] < self.max_lag_s:
            return latest[0]
        block = self.bare.eth.block_number
        self._latest = (block, now)
        return block

    def refresh(self) -> None:
        """Ask the chain for its latest block at the next read (e.g. after a write relayed by another
        party), whatever ``max_lag_s``."""
        self._latest = None

    def _at(self) -> BlockView:
        """The views at the latest block."""
        return self.views.at(self._block())

    def _synced(self, fresh: bool = False) -> BlockView:
        """Follow the log to the latest block; the views at that block (call under the lock)."""
        block = self._block(fresh)
        self.follower.sync(block)
        return self.views.at(block)

    def _next_time(self, at: BlockView) -> int:
        """Set the next block's timestamp from the clock (if any); the ledger time it gives (ms)."""
        origin, num, den = self._time
        floor = self.follower.head.time  # the contract's clock: the last applied transaction's time
        last = at.timestamp()
        if self._clock is None:
            return max(floor, (last - origin) * num // den)
        ts = max(origin + self._clock() * den // num, last + 1)
        set_next_timestamp(self.w3, ts)
        return max(floor, (ts - origin) * num // den)

    # -- writing ----------------------------------------------------------------------------------------

    def _prepare(self, item: SignedTx | bytes) -> SignedTx:
        stx = checked_signed_tx(item, self.config.max_tx_bytes)
        if stx.network != self.config.network:
            raise WrongNetwork(
                f"transaction is for network {stx.network!r}, this ledger is {self.config.network!r}"
            )
        if not 0 <= stx.nonce <= MAX_AMOUNT:  # no uint256 for the contract: refused as on every backend
            expected = self.nonce(stx.sender)
            kind = errors.ReplayedNonce if stx.nonce < expected else errors.BadNonce
            raise kind(f"nonce {stx.nonce} of {stx.sender} is out of order; the next is {expected}")
        if stx.kind not in self.supported:
            raise UnknownTxKind(f"{stx.kind!r} transactions are not on the EVM ledger contract yet")
        stx.verify_typed_signature()
        return stx

    def _call(self, stx: SignedTx) -> Any:
        """The contract call of ``stx`` (bound to the Web3 without middleware)."""
        sig = stx.typed_signature or b""
        ledger, jobs = self.views.ledger, self.views.jobs
        target = ledger if hasattr(ledger.functions, stx.kind) else jobs
        fn = getattr(target.functions, stx.kind)
        return fn(stx.sender, stx.nonce, *abi_args(stx.tx), sig[64], sig[:32], sig[32:64])

    def _refusal(self, stx: SignedTx, exc: Exception, now: int) -> LedgerError:
        """The error a contract revert stands for, with the reference machine's message."""
        text = str(getattr(exc, "message", None) or exc)
        if "revert" not in text:
            raise exc
        reason = text.rsplit(":", 1)[-1].strip().strip("'\"")
        cls = _ERRORS.get(reason, LedgerError)
        mirror, head = self.follower.mirror, self.follower.head
        mark = mirror.mark()
        try:
            apply(mirror, stx, Context(head.height, max(now, head.time), head.hash))
        except LedgerError as ref:
            if type(ref) is cls:
                return ref
        finally:
            mirror.rollback(mark)
        return cls(f"{reason}: refused by the ledger contract")

    def _reference_accepts(self, stx: SignedTx, now: int) -> bool:
        """Whether the reference machine applies ``stx`` to the mirror (left unchanged)."""
        mirror, head = self.follower.mirror, self.follower.head
        mark = mirror.mark()
        try:
            apply(mirror, stx, Context(head.height, max(now, head.time), head.hash))
            return True
        except LedgerError:
            return False
        finally:
            mirror.rollback(mark)

    def _submit_one(self, item: SignedTx | bytes) -> Receipt:
        stx = self._prepare(item)
        now = self._next_time(self._synced(fresh=True))
        sender = self.relay.sender
        if self.simulate_first or not self._reference_accepts(stx, now):
            try:
                self._call(stx).call({"from": sender}, block_identifier="pending")
            except _REVERTS as exc:
                raise self._refusal(stx, exc, now) from None
        gas = DRAW_GAS_LIMIT if stx.kind in ("register_job", "stake") else GAS_LIMIT
        try:
            receipt = self.relay.transact(self._call(stx), gas)
        except _REVERTS as exc:  # a chain that refuses to mine a reverting transaction
            self.simulate_first = True
            raise self._refusal(stx, exc, now) from None
        if receipt["status"] != 1:  # another relay's transaction got in first, or a divergence
            self.simulate_first = True
            try:
                self._call(stx).call({"from": sender})
            except _REVERTS as exc:
                raise self._refusal(stx, exc, now) from None
            raise LedgerError(f"the chain reverted transaction {stx.id} (out of gas?)")
        tx_hash = bytes(receipt["transactionHash"])
        self.known[tx_hash] = stx
        self._latest = (receipt["blockNumber"], time.monotonic())  # our own write, read back at once
        for entry in self.follower.sync(receipt["blockNumber"]):
            if entry.tx_hash == tx_hash:
                return Receipt(
                    entry.height,
                    entry.head,
                    stx.id,
                    stx.kind,
                    stx.sender,
                    stx.nonce,
                    entry.time,
                    tuple(entry.events),
                )
        raise LedgerError(f"transaction {stx.id} was mined but its log was not found")

    def submit(self, tx: SignedTx | bytes) -> Receipt:
        with self._lock:
            return self._submit_one(tx)

    def submit_many(self, txs: Iterable[SignedTx | bytes]) -> list[Receipt | LedgerError]:
        out: list[Receipt | LedgerError] = []
        with self._lock:
            for item in txs:
                try:
                    out.append(self._submit_one(item))
                except LedgerError as exc:
                    out.append(exc)
        return out

    # -- queries (contract views at the latest block, cached for it) --------------------------------------

    def balance(self, address: str) -> int:
        return self._at().view("balances", address)

    def nonce(self, address: str) -> int:
        return self._at().view("nonces", address)

    def stake(self, address: str, role: str) -> int:
        return self._at().view("stakes", address, ROLES.index(role))

    def unbonding(self, address: str, role: str) -> UnbondingRecord | None:
        return self._at().unbonding(address, role)

    def locked(self, address: str, role: str) -> int:
        return self._at().view("locks", address, ROLES.index(role))

    def reputation(self, address: str, role: str) -> int:
        return self._at().view("reputation", address, ROLES.index(role))

    def task(self, task_id: str) -> TaskRecord | None:
        return self._at().task(task_id)

    def member(self, task_id: str, address: str) -> MemberRecord | None:
        return self._at().member(task_id, address)

    def checkpoint(self, task_id: str, round: int) -> str | None:
        return self._at().checkpoint(task_id, round)

    def payout(self, task_id: str, epoch: int) -> PayoutRecord | None:
        return self._at().payout(task_id, epoch)

    def claimed(self, task_id: str, epoch: int, address: str) -> int:
        return self._at().view("claims", b32(task_id), epoch, address)

    def job(self, job_id: str) -> JobRecord | None:
        """The Jobs contract's record, with the fields only the job's transactions carry
        (``job_type``, ``inputs``, ``accepted``, ``faulted``, ``missed``) from the log replayed to
        the same block."""
        with self._lock:
            at = self._synced()
            return at.job(job_id, self.follower.mirror.job(job_id))

    def commitment(self, job_id: str, executor: str) -> str | None:
        return self._at().duty(job_id, executor)[0]

    def revealed(self, job_id: str, executor: str) -> str | None:
        return self._at().duty(job_id, executor)[1]

    def eligible_executors(self, role: str, fee: int, exclude: str = "") -> list[tuple[str, int]]:
        with self._lock:
            self._synced()
            return sorted(eligible_executors(self.follower.mirror, role, fee, exclude))

    def model(self, model_id: str) -> ModelRecord | None:
        return self._at().model(model_id)

    def royalty_owed(self, model_id: str, address: str, shares: int) -> int:
        at = self._at()
        model = at.model(model_id)
        if model is None:
            raise errors.UnknownModel(f"no model {model_id}")
        return shares * (model.index - at.view("royalty_index", b32(model_id), address))

    # -- the log and the whole state ----------------------------------------------------------------------

    def head(self) -> Head:
        with self._lock:
            self.follower.sync(self._block())
            return self.follower.head

    def state_root(self) -> str:
        """The root of the state replayed from the chain's log (see :meth:`verify`)."""
        with self._lock:
            self.follower.sync(self._block())
            return self.follower.mirror.root()

    def state(self) -> State:
        """A copy of the state replayed from the chain's log (for tools and tests; O(state))."""
        with self._lock:
            self.follower.sync(self._block())
            return self.follower.mirror.copy()

    def supply(self) -> dict[str, int]:
        """The contract's running totals per bucket (O(1) views)."""
        return _supply(self._at())

    def check_invariants(self) -> dict[str, int]:
        """Conservation on chain (the totals sum to ``minted``), on the replayed state, and the two
        agree; raises InvariantViolation otherwise."""
        with self._lock:
            return _conserved(_supply(self._synced()), self.follower.mirror.check_invariants())

    def events(self, since: int = 0, limit: int | None = None) -> list[Event]:
        with self._lock:
            self.follower.sync(self._block())
            return self.follower.events[since : None if limit is None else since + limit]

    def history(self, address: str, limit: int = 50) -> Sequence[TxRecord]:
        with self._lock:
            self.follower.sync(self._block())
            return self.follower.histories.get(address, [])[::-1][:limit]

    def verify(self) -> VerifyReport:
        """Re-read the whole chain log into a fresh follower and check: every applied transaction
        replays through the reference machine with the same events, the contract's head, height and
        supply totals equal the replay's, and every row of the replayed state equals the contract's
        view of it. What it proves: the contract's state is the reference state machine's result
        over the transactions on chain (rows the replay never touched are covered by the totals).

        Everything is read at one block, through a block view of its own (not the query cache).
        The fresh replay takes the log entries the follower read (``Follower.replay``: mined logs do
        not change, and the head check catches a missing one) and the transactions this process
        relayed or read (``Applied.stx``, see Follower) instead of asking the node for them again."""
        with self._lock:
            self._synced()
            block, entries = self.follower.block, list(self.follower.applied)
        fresh = self._follower()
        fresh.replay(entries, block)
        ref = fresh.mirror
        head = fresh.head
        at = self.views.at(block, cached=False)
        stored = stored_state(at, ref, self.config)
        problem = fresh.divergence
        if problem is None and (at.view("height"), hex_(at.view("head"))) != (head.height, head.hash):
            problem = f"the contract's head differs from the replayed log ({head.height}, {head.hash})"
        if problem is None and stored.root() != ref.root():
            problem = "the contract's rows differ from the replayed state"
        if problem is None:
            try:
                _conserved(_supply(at), ref.check_invariants())
            except LedgerError as exc:
                problem = str(exc)
        return VerifyReport(problem is None, head.height, head.hash, ref.root(), stored.root(), problem)


def _supply(at: BlockView) -> dict[str, int]:
    out = {k: at.view(v) for k, v in SUPPLY_VIEWS.items()}
    return {**out, "minted": at.view("minted")}


def _conserved(chain: dict[str, int], ref: dict[str, int]) -> dict[str, int]:
    """Conservation on chain (the totals sum to ``minted``), on the replayed state (``ref``, its
    check_invariants), and the two agree; raises InvariantViolation otherwise."""
    chain = dict(chain)
    minted = chain.pop("minted")
    if sum(chain.values()) != minted:
        raise errors.InvariantViolation(f"on chain the buckets sum to {sum(chain.values())}, minted {minted}")
    if {**chain, "minted": minted} != ref:
        raise errors.InvariantViolation(f"chain totals {chain} differ from the replayed state {ref}")
    return ref

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
- ``clock``: None takes the chain's time (block timestamps in seconds; the ledger clock in ms is
  ``timestamp * 1000``). A clock (e.g. :class:`~deai.ledger.base.ManualClock`) drives a development
  chain instead: each block's timestamp is set to the clock in microseconds, so ledger times follow
  the clock to the millisecond (up to 1,000 transactions per millisecond).

Submitting: the transaction is parsed and checked like on the local backends, simulated with
``eth_call`` against the pending block, and sent only if the contract accepts it, so a refused
transaction costs nothing and changes nothing; the contract's revert reason names the
:mod:`deai.ledger.errors` class raised (its message comes from the reference machine run on the
mirror state, so it names the same amounts). ``submit_many`` sends the transactions one by one
(each is its own chain transaction; there is no all-or-nothing batch on chain).

Queries read the contract's views. ``events``/``history``/``head``/``state_root`` come from the
logs (:mod:`deai.ledger.evm.follow`). A job's record combines what the Jobs contract stores
(money, deadlines, counts, status, the drawn executors) with what only its transactions carry
(``job_type``, ``inputs``, and who was accepted, faulted and missed, from the resolution's log),
replayed from the chain by the follower.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from eth_typing import ChecksumAddress
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3RPCError

from deai.core.accounts import Account
from deai.core.encoding import keccak256
from deai.ledger import errors
from deai.ledger.base import Head, Ledger, Receipt, TxRecord, VerifyReport
from deai.ledger.config import MAX_AMOUNT, ROLES, NetworkConfig
from deai.ledger.errors import LedgerError, UnknownTxKind, WrongNetwork
from deai.ledger.evm.compile import compiled
from deai.ledger.evm.follow import Follower
from deai.ledger.evm.node import set_next_timestamp
from deai.ledger.machine import apply
from deai.ledger.records import (
    JobRecord,
    JobStatus,
    MemberRecord,
    ModelRecord,
    PayoutRecord,
    TaskRecord,
    TaskStatus,
    UnbondingRecord,
)
from deai.ledger.rules.base import Context, Event
from deai.ledger.rules.jobs import eligible_executors
from deai.ledger.state import State
from deai.ledger.tx import TX_TYPES, SignedTx, checked_signed_tx
from deai.ledger.typed import abi_args

__all__ = ["SUPPLY_VIEWS", "EvmLedger"]

GAS_LIMIT = 3_000_000
# register_job reads every provider of the role, a first stake walks them to insert itself in
# order (at most 1,024 per role: about 10 M and 5 M gas at the bound)
DRAW_GAS_LIMIT = 25_000_000
JOB_STATUS = (
    None,
    JobStatus.OPEN,
    JobStatus.ACCEPTED,
    JobStatus.NO_MAJORITY,
    JobStatus.FAILED,
    JobStatus.ABANDONED,
)
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


def _b32(hex_: str) -> bytes:
    return bytes.fromhex(hex_[2:])


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


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
    ) -> None:
        self.config = config
        self.w3 = Web3(Web3.HTTPProvider(chain)) if isinstance(chain, str) else chain
        self.relayer = relayer
        self._clock = clock
        self._lock = threading.RLock()
        self._relay_nonce: int | None = None
        c = compiled()
        self.supported = self.supported_kinds()
        if deploy is True:
            address = self._deploy()
        elif isinstance(deploy, str):
            address = Web3.to_checksum_address(deploy)
        else:
            raise LedgerError("deploy must be True or the address of a deployed ledger contract")
        self.contract = self.w3.eth.contract(address=address, abi=c.abi)
        views = self.contract.functions
        if _hex(views.genesis().call()) != config.genesis_hash:
            raise LedgerError(f"the contract at {address} is not a ledger of this network config")
        self.jobs = self.w3.eth.contract(address=views.jobs().call(), abi=compiled("Jobs").abi)
        self._time = (views.time_origin().call(), views.time_num().call(), views.time_den().call())
        self.follower = self._follower()

    def _follower(self) -> Follower:
        return Follower(self.w3, self.contract, self.config, self._view("deployed_at"), jobs=self.jobs)

    @staticmethod
    def supported_kinds() -> frozenset[str]:
        """The transaction kinds the contracts have a function for."""
        abi = compiled().abi + compiled("Jobs").abi
        return frozenset(i["name"] for i in abi if i["type"] == "function") & set(TX_TYPES)

    @property
    def address(self) -> str:
        return self.contract.address

    # -- chain plumbing ---------------------------------------------------------------------------------

    def _deploy(self) -> ChecksumAddress:
        """Deploy the Jobs contract, then the Ledger naming it, then bind the Jobs to the Ledger."""
        cfg = self.config
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
        jobs_ctor = self.w3.eth.contract(abi=jc.abi, bytecode=jc.bytecode).constructor(
            params, rep, list(cfg.resolvers)
        )
        receipt = self._transact(jobs_ctor, gas=12_000_000)
        if receipt["status"] != 1:
            raise LedgerError(f"the jobs contract's deployment failed (gas used {receipt['gasUsed']})")
        jobs = self.w3.eth.contract(address=receipt["contractAddress"], abi=jc.abi)
        c = compiled()
        abi, bytecode = c.abi, c.bytecode
        if self._clock is not None:  # a development chain driven by the clock, in microseconds
            origin, num, den = int(self.w3.eth.get_block("latest")["timestamp"]), 1, 1000
        else:
            origin, num, den = 0, 1000, 1
        ctor = self.w3.eth.contract(abi=abi, bytecode=bytecode).constructor(
            _b32(cfg.genesis_hash),
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
        receipt = self._transact(ctor, gas=12_000_000)
        if receipt["status"] != 1:
            raise LedgerError(f"the ledger contract's deployment failed (gas used {receipt['gasUsed']})")
        address = Web3.to_checksum_address(receipt["contractAddress"])
        if self._transact(jobs.functions.bind(address))["status"] != 1:
            raise LedgerError("binding the jobs contract to the ledger failed")
        return address

    def _transact(self, fn: Any, gas: int = GAS_LIMIT) -> Any:
        """Send a contract call or deployment from the relayer and wait for its receipt."""
        if self.relayer is None:
            tx_hash = fn.transact({"from": self.w3.eth.accounts[0], "gas": gas})
        else:
            if self._relay_nonce is None:
                self._relay_nonce = self.w3.eth.get_transaction_count(
                    Web3.to_checksum_address(self.relayer.address), "pending"
                )
            tx = fn.build_transaction({"from": self.relayer.address, "nonce": self._relay_nonce, "gas": gas})
            signed = self.relayer.to_eth_account().sign_transaction(tx)
            try:
                tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            except Exception:
                self._relay_nonce = None
                raise
            self._relay_nonce += 1
        return self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)

    def _next_time(self) -> int:
        """Set the next block's timestamp from the clock (if any); the ledger time it gives (ms)."""
        origin, num, den = self._time
        floor = self.contract.functions.clock().call()
        if self._clock is None:
            return max(floor, (self.w3.eth.get_block("latest")["timestamp"] - origin) * num // den)
        last = self.w3.eth.get_block("latest")["timestamp"]
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
        sig = stx.typed_signature or b""
        target = self.contract if hasattr(self.contract.functions, stx.kind) else self.jobs
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

    def _submit_one(self, item: SignedTx | bytes) -> Receipt:
        stx = self._prepare(item)
        self.follower.sync()
        now = self._next_time()
        fn = self._call(stx)
        sender = self.relayer.address if self.relayer else self.w3.eth.accounts[0]
        try:
            fn.call({"from": sender}, block_identifier="pending")
        except _REVERTS as exc:
            raise self._refusal(stx, exc, now) from None
        receipt = self._transact(fn, DRAW_GAS_LIMIT if stx.kind in ("register_job", "stake") else GAS_LIMIT)
        if receipt["status"] != 1:  # another relay's transaction got in between: say why now
            try:
                self._call(stx).call({"from": sender})
            except _REVERTS as exc:
                raise self._refusal(stx, exc, now) from None
            raise LedgerError(f"the chain reverted transaction {stx.id} (out of gas?)")
        tx_hash = bytes(receipt["transactionHash"])
        self.follower.known[tx_hash] = stx
        for entry in self.follower.sync():
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

    # -- queries (contract views) -----------------------------------------------------------------------

    def _view(self, name: str, *args: Any) -> Any:
        return getattr(self.contract.functions, name)(*args).call()

    def balance(self, address: str) -> int:
        return self._view("balances", address)

    def nonce(self, address: str) -> int:
        return self._view("nonces", address)

    def stake(self, address: str, role: str) -> int:
        return self._view("stakes", address, ROLES.index(role))

    def unbonding(self, address: str, role: str) -> UnbondingRecord | None:
        amount = self._view("unbonding_amount", address, ROLES.index(role))
        if not amount:
            return None
        return UnbondingRecord(
            amount=amount, release=self._view("unbonding_release", address, ROLES.index(role))
        )

    def locked(self, address: str, role: str) -> int:
        return self._view("locks", address, ROLES.index(role))

    def reputation(self, address: str, role: str) -> int:
        return self._view("reputation", address, ROLES.index(role))

    def task(self, task_id: str) -> TaskRecord | None:
        creator, coordinator, budget, params, stake, round_, members, status = self._view(
            "tasks", _b32(task_id)
        )
        if status == 0:
            return None
        return TaskRecord(
            creator=creator,
            coordinator=coordinator,
            budget=budget,
            params=_hex(params),
            provider_stake=stake,
            round=round_,
            members=members,
            status=TaskStatus.OPEN if status == 1 else TaskStatus.CLOSED,
        )

    def member(self, task_id: str, address: str) -> MemberRecord | None:
        role, stake, joined = self._view("members", _b32(task_id), address)
        return MemberRecord(role=ROLES[role], stake=stake) if joined else None

    def checkpoint(self, task_id: str, round: int) -> str | None:
        value = bytes(self._view("checkpoints", _b32(task_id), round))
        return None if value == bytes(32) else _hex(value)

    def payout(self, task_id: str, epoch: int) -> PayoutRecord | None:
        root, total, claimed, job, posted = self._view("payouts", _b32(task_id), epoch)
        if not posted:
            return None
        return PayoutRecord(
            root=_hex(root), total=total, claimed=claimed, job=None if job == bytes(32) else _hex(job)
        )

    def claimed(self, task_id: str, epoch: int, address: str) -> int:
        return self._view("claims", _b32(task_id), epoch, address)

    def job(self, job_id: str) -> JobRecord | None:
        """The Jobs contract's record, with the fields only the job's transactions carry
        (``job_type``, ``inputs``, ``accepted``, ``faulted``, ``missed``) from the replayed log."""
        (
            creator, task, fee, escrow, role, seed, replication, commit_deadline, reveal_deadline,
            resolver, quorum, model, commits, reveals, replicated, primary, status, digest,
        ) = self.jobs.functions.jobs(_b32(job_id)).call()  # fmt: skip
        if status == 0:
            return None
        with self._lock:
            self.follower.sync()
            replayed = self.follower.mirror.job(job_id)
        if replayed is None:  # the chain moved past the follower's last block: read it again
            return None
        executors = tuple(
            self.jobs.functions.executors(_b32(job_id), i).call() for i in range(len(replayed.executors))
        )
        return JobRecord(
            creator=creator,
            task=None if task == bytes(32) else _hex(task),
            job_type=replayed.job_type,
            inputs=replayed.inputs,
            fee=fee,
            escrow=escrow,
            role=ROLES[role],
            executors=executors,
            seed=_hex(seed),
            replication=_hex(replication),
            commit_deadline=commit_deadline,
            reveal_deadline=reveal_deadline,
            resolver=None if int(resolver, 16) == 0 else resolver,
            quorum=quorum,
            model=None if model == bytes(32) else _hex(model),
            commits=commits,
            reveals=reveals,
            replicated=None if replicated == 0 else replicated == 2,
            primary=None if replicated == 0 else primary,
            status=JOB_STATUS[status] or JobStatus.OPEN,
            digest=None if digest == bytes(32) else _hex(digest),
            accepted=replayed.accepted,
            faulted=replayed.faulted,
            missed=replayed.missed,
        )

    def commitment(self, job_id: str, executor: str) -> str | None:
        commitment, _, committed, _ = self.jobs.functions.duties(_b32(job_id), executor).call()
        return _hex(commitment) if committed else None

    def revealed(self, job_id: str, executor: str) -> str | None:
        _, digest, _, revealed = self.jobs.functions.duties(_b32(job_id), executor).call()
        return _hex(digest) if revealed else None

    def eligible_executors(self, role: str, fee: int, exclude: str = "") -> list[tuple[str, int]]:
        with self._lock:
            self.follower.sync()
            return sorted(eligible_executors(self.follower.mirror, role, fee, exclude))

    def model(self, model_id: str) -> ModelRecord | None:
        owner, task, provenance, document, total, host_bps, index, carry, pool, registered = self._view(
            "models", _b32(model_id)
        )
        if not registered:
            return None
        return ModelRecord(
            owner=owner,
            task=None if task == bytes(32) else _hex(task),
            provenance=_hex(provenance),
            document=_hex(document),
            total_shares=total,
            host_bps=host_bps,
            index=index,
            carry=carry,
            pool=pool,
        )

    def royalty_owed(self, model_id: str, address: str, shares: int) -> int:
        model = self.model(model_id)
        if model is None:
            raise errors.UnknownModel(f"no model {model_id}")
        return shares * (model.index - self._view("royalty_index", _b32(model_id), address))

    # -- the log and the whole state ----------------------------------------------------------------------

    def head(self) -> Head:
        with self._lock:
            self.follower.sync()
            return self.follower.head

    def state_root(self) -> str:
        """The root of the state replayed from the chain's log (see :meth:`verify`)."""
        with self._lock:
            self.follower.sync()
            return self.follower.mirror.root()

    def state(self) -> State:
        """A copy of the state replayed from the chain's log (for tools and tests; O(state))."""
        with self._lock:
            self.follower.sync()
            return self.follower.mirror.copy()

    def supply(self) -> dict[str, int]:
        """The contract's running totals per bucket (O(1) views)."""
        out = {k: (self._view(v) if v else 0) for k, v in SUPPLY_VIEWS.items()}
        return {**out, "minted": self._view("minted")}

    def check_invariants(self) -> dict[str, int]:
        """Conservation on chain (the totals sum to ``minted``), on the replayed state, and the two
        agree; raises InvariantViolation otherwise."""
        with self._lock:
            self.follower.sync()
            chain = self.supply()
            ref = self.follower.mirror.check_invariants()
        minted = chain.pop("minted")
        if sum(chain.values()) != minted:
            raise errors.InvariantViolation(
                f"on chain the buckets sum to {sum(chain.values())}, minted {minted}"
            )
        if {**chain, "minted": minted} != ref:
            raise errors.InvariantViolation(f"chain totals {chain} differ from the replayed state {ref}")
        return ref

    def events(self, since: int = 0, limit: int | None = None) -> list[Event]:
        with self._lock:
            self.follower.sync()
            return self.follower.events[since : None if limit is None else since + limit]

    def history(self, address: str, limit: int = 50) -> Sequence[TxRecord]:
        with self._lock:
            self.follower.sync()
            return self.follower.histories.get(address, [])[::-1][:limit]

    def verify(self) -> VerifyReport:
        """Re-read the whole chain log into a fresh follower and check: every applied transaction
        replays through the reference machine with the same events, the contract's head, height and
        supply totals equal the replay's, and every row of the replayed state equals the contract's
        view of it. What it proves: the contract's state is the reference state machine's result
        over the transactions on chain (rows the replay never touched are covered by the totals)."""
        fresh = self._follower()
        fresh.sync()
        ref = fresh.mirror
        head = fresh.head
        stored = self._stored_state(ref)
        problem = fresh.divergence
        if problem is None and (self._view("height"), _hex(self._view("head"))) != (head.height, head.hash):
            problem = f"the contract's head differs from the replayed log ({head.height}, {head.hash})"
        if problem is None and stored.root() != ref.root():
            problem = "the contract's rows differ from the replayed state"
        if problem is None:
            try:
                self.check_invariants()
            except LedgerError as exc:
                problem = str(exc)
        return VerifyReport(problem is None, head.height, head.hash, ref.root(), stored.root(), problem)

    def _stored_state(self, ref: State) -> State:
        """The contract's values of every row of ``ref`` (the replayed state), as a State."""
        rows: list[tuple[str, str, Any]] = []
        for table, items in ref.tables.items():
            for k in items:
                parts = k.split("|")
                value = self._row(table, parts, ref)
                if value is not None:
                    rows.append((table, k, value))
        return State.from_rows(self.config, iter(rows))

    def _row(self, table: str, a: list[str], ref: State) -> Any:
        """The contract's value of row ``a`` (the key's parts) of ``table``, as the state stores it."""
        if table == "meta":
            views = {"height": "height", "time": "clock", "minted": "minted", "burned": "burned"}
            return self._view(views[a[0]]) if a[0] in views else ref.meta(a[0])
        if table in ("balances", "nonces"):
            return self._view(table, a[0]) or None
        if table in ("stakes", "locks", "memberships", "reputation"):
            return self._view(table, a[0], ROLES.index(a[1])) or None
        if table == "checkpoints":
            return self.checkpoint(a[0], int(a[1]))
        if table == "claims":
            return self.claimed(a[0], int(a[1]), a[2]) or None
        if table == "royalty_index":
            return self._view("royalty_index", _b32(a[0]), a[1])
        if table == "commits":
            return self.commitment(a[0], a[1])
        if table == "reveals":
            return self.revealed(a[0], a[1])
        records: dict[str, Callable[[], Any]] = {
            "unbonding": lambda: self.unbonding(a[0], a[1]),
            "tasks": lambda: self.task(a[0]),
            "members": lambda: self.member(a[0], a[1]),
            "payouts": lambda: self.payout(a[0], int(a[1])),
            "models": lambda: self.model(a[0]),
            "jobs": lambda: self.job(a[0]),
        }
        if table in records:
            record = records[table]()
            return None if record is None else record.to_json()
        return ref.tables[table]["|".join(a)]

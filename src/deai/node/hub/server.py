"""The hub: ledger service, blob relay and task coordination behind one verifying endpoint.

Every request is a signed envelope (:mod:`deai.net`); the same :class:`Hub` serves an in-memory
simulation (:class:`~deai.net.memory.MemoryTransport`) and real processes over HTTP
(:func:`deai.net.http.make_app`). Message types (bodies are JSON objects):

========================  ===========================================================================
``hub.info``              network id, the hub's coordinator address, the ledger's network config
``ledger.submit``         ``{"txs": [hex of signed tx bytes]}`` -> one result per tx (in one batch)
``ledger.query``          ``{"q": name, "args": {...}}`` -> ``{"result": ...}`` (see :data:`QUERIES`)
``ledger.events``         ``{"since": seq, "limit": n}`` -> events from the cursor, ``next`` cursor
``ledger.entries``        ``{"since": seq, "limit": n}`` -> raw signed log entries (client-verifiable)
``task.list``             the tasks this hub coordinates, with their phase
``task.status``           ``{"task"}`` -> phase, round, per-round history, jobs, epsilon, model
``task.round``            ``{"task"}`` -> what a provider needs for the current round
``task.updates``          ``{"statements": [...]}``: signed update statements (any sender may relay)
``task.secagg``           ``{"statements": [...]}``: signed secure-aggregation messages
``task.inbox``            ``{"task", "providers"}`` -> the server's secure-aggregation messages
``task.payouts``          ``{"task", "addresses"}`` -> each address's payouts with Merkle proofs
``task.seal``             ``{"task", "data"}``: a hidden scoring set, sealed until its round
                          (:mod:`deai.node.hub.sealed`)
``job.assignments``       the open jobs the *sender* was drawn for, with its private activation flag
``hub.wait``              ``{"since", "boot", "timeout_ms"}`` -> ``{"version", "boot"}`` once the hub's
                          state changed past ``since`` (a long poll, :mod:`deai.node.hub.notify`)
========================  ===========================================================================

Plugins add message types, tick work and job assignments (:meth:`Hub.add_plugin`); the default
one, :mod:`deai.node.hub.inference`, adds ``infer.request`` / ``infer.result`` / ``infer.models``.

Trust: the hub holds no authority the ledger does not give it. Ledger answers can be checked by
replaying ``ledger.entries`` (hash chain + signatures), blobs by hash, statements by signature; the
hub's account is the coordinator of the tasks it runs, and every coordinator action is a ledger
transaction (verified jobs for aggregation and scoring; checkpoints that anyone can recompute).

State: the coordinators' state and the event cursor are saved in a :class:`~deai.node.hub.kv.KV` after
every change, so a restarted hub resumes every task where the ledger and its state say it was.
"""

from __future__ import annotations

import functools
import importlib
import logging
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from deai.core.accounts import Account, check_address
from deai.core.blobs import BlobStore, check_digest
from deai.core.envelope import Envelope, ReplayCache
from deai.core.errors import DeaiError, EncodingError
from deai.ledger.base import Ledger, wall_clock_ms
from deai.ledger.config import ROLES
from deai.ledger.errors import LedgerError, ReplayedNonce
from deai.ledger.local import LocalLedger
from deai.ledger.queries import QUERIES, answer_query
from deai.net.endpoint import Endpoint, ServiceError, UploadPolicy
from deai.net.limits import RateLimits
from deai.node.hub.admission import AdmissionPolicy
from deai.node.hub.kv import KV
from deai.node.hub.notify import Changes
from deai.node.hub.sealed import SEAL, SealedSets
from deai.protocol.task.coordinator import TaskCoordinator
from deai.protocol.task.errors import BadTaskSpec
from deai.protocol.task.records import TaskView
from deai.protocol.task.spec import TaskSpec
from deai.protocol.task.statements import SecAggStatement, UpdateStatement

__all__ = ["DEFAULT_PLUGINS", "QUERIES", "Hub"]

log = logging.getLogger(__name__)

MAX_BATCH = 1024
MAX_DOCUMENT = 1 << 20  # the largest model document whose checkpoint the hub pins
_CHECKPOINT = re.compile(rb'"checkpoint"\s*:\s*"(0x[0-9a-f]{64})"')
MAX_PAGE = 1000  # events or log entries per ledger.events / ledger.entries answer (clients page on)
# Modules with a ``plugin(hub)`` factory, loaded by every hub unless told otherwise.
DEFAULT_PLUGINS = ("deai.node.hub.inference", "deai.node.hub.llm")
# Message types that change nothing: every other handled request wakes the tick loop and long polls.
_LEDGER_READS = ("hub.info", "ledger.query", "ledger.events", "ledger.entries", "job.assignments")
_TASK_READS = ("task.list", "task.status", "task.round", "task.inbox", "task.payouts")
READ_ONLY = frozenset(_LEDGER_READS + _TASK_READS)


class Hub:
    """Serves ``ledger`` and ``store`` and coordinates tasks as ``account``.

    ``clock`` is the ledger clock (ms) the coordinators read deadlines against (a ManualClock in
    simulations); ``kv`` persists coordinator state (None: in memory only); ``replay_path`` makes
    the envelope replay cache durable.

    Blobs: anyone with stake in some role or a balance may upload (a signed ``blob.put``), keeping
    at most ``upload_quota`` bytes that nothing refers to; the hub's own account is unlimited.
    The hub pins what the ledger and its tasks come to refer to (task specs and their data, round
    checkpoints, job inputs, revealed outputs, accepted updates, models and their documents), and
    its tick deletes unpinned uploads older than ``upload_ttl_s``. ``limits`` (None: none) are the
    per-sender and per-address request rates (``deai hub`` runs with :class:`RateLimits` defaults).
    """

    def __init__(
        self,
        ledger: Ledger,
        store: BlobStore,
        account: Account,
        *,
        kv: KV | None = None,
        clock: Callable[[], int] = wall_clock_ms,
        replay_path: str | Path | None = None,
        max_body_bytes: int = 16 << 20,
        window_s: float = 300.0,
        plugins: Sequence[str | Any] = DEFAULT_PLUGINS,
        admission: AdmissionPolicy | None = None,
        limits: RateLimits | None = None,
        upload_quota: int = 1 << 30,
        upload_ttl_s: float = 3600.0,
        sealed: SealedSets | None = None,
    ) -> None:
        self.ledger, self.store, self.account, self.clock = ledger, store, account, clock
        self.sealed = sealed or SealedSets.beside(store)
        self.network = ledger.config.network
        self.kv = kv or KV(None)
        self.lock = threading.RLock()
        self.endpoint = Endpoint(
            self.network,
            {},
            store,
            replay_cache=ReplayCache(replay_path),
            max_body_bytes=max_body_bytes,
            window_s=window_s,
            limits=limits,
            uploads=UploadPolicy(quota_of=self._upload_quota, ttl_s=upload_ttl_s),
        )
        self.upload_quota = upload_quota
        self.changes = Changes()
        self.coordinators: dict[str, TaskCoordinator] = {}
        self.rejected: dict[str, str] = self.kv.get("rejected", {})
        self.admission = admission or AdmissionPolicy()  # which tasks this hub takes (node.admission)
        self._faults: dict[str, str] = {}  # where -> the last fault logged there (logged once)
        self.cursor: int = self.kv.get("cursor", 0)
        for key, value in self.kv.items("task:"):
            try:
                spec = TaskSpec.from_bytes(store.get(value["spec"]))
                self.coordinators[key[5:]] = TaskCoordinator.from_json(
                    spec, ledger, store, account, value["state"], sealed=self.sealed.store
                )
            except Exception as exc:  # e.g. a spec that today's checks refuse: the hub still starts
                self._fault(f"task {key[5:]} (saved)", exc)
        for name, method in _ROUTES.items():
            handler = self._wrap(functools.partial(method, self), name)
            self.endpoint.route(name, read_only=name in READ_ONLY)(handler)
        # The long poll holds no lock while it waits (Changes.serve checks its body).
        wait = self.endpoint.route("hub.wait", exclusive=False, read_only=True)
        wait(lambda env: self.changes.serve(env.body))
        self.plugins: list[Any] = []
        for plugin in plugins:
            if isinstance(plugin, str):
                plugin = importlib.import_module(plugin).plugin(self)
            self.add_plugin(plugin)

    def add_plugin(self, plugin: Any) -> None:
        """Install a plugin: ``plugin.routes()`` -> {type: fn(env, body)} (handled like the built-in
        types), and optionally ``tick(now) -> bool``, ``next_deadline() -> int | None`` and
        ``assignments(executor) -> list`` (merged into ``job.assignments``)."""
        reads = READ_ONLY | frozenset(getattr(plugin, "read_only", ()))
        for name, fn in plugin.routes().items():
            self.endpoint.route(name, read_only=name in reads)(self._wrap(fn, name))
        self.plugins.append(plugin)

    # -- the loop ------------------------------------------------------------------------------------

    def tick(self) -> bool:
        """Follow new ledger events, then step every task; True if anything changed. A fault in one
        event, task or plugin is logged and skipped: it never stops the loop or the others."""
        with self.lock:
            now = self.clock()
            changed = self._follow(now)
            for task_id, coord in self.coordinators.items():
                if coord.done:
                    continue
                try:
                    if coord.step(now):
                        self._save(task_id)
                        changed = True
                # A bad input (or a bug that one task's data triggers) must not stop the hub or the
                # other tasks: the task waits, and its fault is logged once until it changes.
                except Exception as exc:
                    self._fault(f"task {task_id}", exc)
            for plugin in self.plugins:
                if hasattr(plugin, "tick"):
                    try:
                        changed |= bool(plugin.tick(now))
                    except Exception as exc:
                        self._fault(f"plugin {type(plugin).__name__}", exc)
            self.endpoint.collect()  # unreferenced uploads past their TTL (at most once a minute)
            if changed:
                self.changes.bump()
            return changed

    def prepare(self) -> None:
        """Idle-time work outside the lock (requests keep flowing): each running job reads its
        inputs ahead of the reveals (:meth:`TaskCoordinator.prepare`). Call it from the thread
        that ticks, so a tick never replaces a job while it is being prepared."""
        for coord in list(self.coordinators.values()):
            if not coord.over:
                coord.prepare()

    def next_deadline(self) -> int | None:
        with self.lock:
            times = [
                t for c in self.coordinators.values() if not c.done and (t := c.next_deadline()) is not None
            ]
            for p in self.plugins:
                if hasattr(p, "next_deadline") and (t := p.next_deadline()) is not None:
                    times.append(t)
            return min(times) if times else None

    def _follow(self, now: int) -> bool:
        events = self.ledger.events(self.cursor, 10_000)
        if not events:
            return False
        touched: set[str] = set()
        for e in events:
            self._pin_event(e)
            d = e.data
            try:
                if e.kind == "task_created" and d["coordinator"] == self.account.address:
                    self._adopt(d["task"], now)
                    touched.add(d["task"])
                elif e.kind == "task_joined" and d["task"] in self.coordinators:
                    self.coordinators[d["task"]].on_joined(d["account"])
                    touched.add(d["task"])
            except Exception as exc:  # one event that cannot be handled is skipped, the cursor moves on
                self._fault(f"event {e.seq} ({e.kind})", exc)
        self.cursor = events[-1].seq + 1
        if touched:  # persist what changed with its cursor (others only move the cursor: saved later)
            items: dict[str, Any] = {"cursor": self.cursor, "rejected": self.rejected}
            for t in touched & set(self.coordinators):
                items["task:" + t] = self._record(t)
            self.kv.put_many(items)
        return True

    def _adopt(self, task_id: str, now: int) -> None:
        """Coordinate a task created with this hub as its coordinator, or refuse it: a spec that
        does not parse, check or build, a task the admission policy does not take (under-funded,
        oversized blobs), or any other fault while adopting it. A refused task is recorded
        (``task.status`` says why), closed on the ledger (refunding its creator) and never
        looked at again."""
        if task_id in self.coordinators or task_id in self.rejected:
            return
        try:
            record = self.ledger.task(task_id)
            if record is None:
                raise BadTaskSpec("the task is not on the ledger")
            spec = TaskSpec.from_bytes(self.store.get(record.params.removeprefix("0x")), task_id=task_id)
            if record.budget < spec.budget or record.provider_stake != spec.provider_stake:
                raise BadTaskSpec("the ledger's budget or provider stake differs from the spec")
            self.admission.check(spec, record.budget, self.store)
            coord = TaskCoordinator(
                spec, self.ledger, self.store, self.account, now=now, sealed=self.sealed.store
            )
            self._pin(record.params, spec.init, spec.validation)  # an adopted task's blobs stay
        except Exception as exc:  # whatever one foreign task triggers refuses that task, never the loop
            self._refuse(task_id, exc)
            return
        self.coordinators[task_id] = coord

    def _refuse(self, task_id: str, exc: Exception) -> None:
        """Record why ``task_id`` is refused, log it once, and close it (the ledger refunds the
        creator; a crash before the close is harmless: the event is followed again, refused again)."""
        from deai.ledger.txs import CloseTask

        self.rejected[task_id] = f"{type(exc).__name__}: {exc}"[:500]
        log.warning("task %s refused: %s", task_id, self.rejected[task_id])
        try:
            self.ledger.send(self.account, CloseTask(task=task_id))
        except Exception as err:  # e.g. closed already (a refusal followed again after a restart)
            log.warning("cannot close refused task %s: %s", task_id, err)

    def _fault(self, where: str, exc: Exception) -> None:
        """Log a fault in ``where`` (a task, an event, a plugin) once until its message changes: a
        tick repeats every few milliseconds. Unexpected exceptions (not DeaiError) get a traceback."""
        line = f"{type(exc).__name__}: {exc}"[:500]
        if self._faults.get(where) != line:
            self._faults[where] = line
            log.warning("%s: %s", where, line, exc_info=not isinstance(exc, DeaiError))

    # -- blobs ---------------------------------------------------------------------------------------

    def _upload_quota(self, address: str) -> int:
        """Bytes ``address`` may keep uploaded but unreferenced: the hub (and the network's minter)
        unlimited, anyone with a balance or stake in some role ``upload_quota``, nobody else any (an
        outsider with no funds cannot fill the disk; a funded Sybil costs funds per quota). Zero
        also puts a sender in the rate bucket shared by all unfunded senders (see RateLimits)."""
        if address in (self.account.address, self.ledger.config.minter):
            return 1 << 62
        ledger = self.ledger
        funded = ledger.balance(address) > 0 or any(ledger.stake(address, r) > 0 for r in ROLES)
        return self.upload_quota if funded else 0

    def _pin(self, *digests: Any) -> None:
        """Keep these blobs for good (something refers to them); malformed references are skipped."""
        ok = []
        for d in digests:
            try:
                ok.append(check_digest(d))
            except EncodingError:
                continue
        if ok:
            self.store.uploads.pin(*ok)

    def _pin_event(self, e: Any) -> None:
        """Pin the blobs a ledger event makes the network refer to (so collection never takes them)."""
        d = e.data
        try:  # (a task's blobs are pinned when it is adopted: a refused spec is left to collection)
            if e.kind == "checkpoint":
                self._pin(d["checkpoint"])
            elif e.kind == "revealed":
                self._pin(d["digest"])
            elif e.kind == "job_registered":
                job = self.ledger.job(d["job"])
                self._pin(d["job"], *(job.inputs if job is not None else ()))
            elif e.kind == "model_registered":
                self._pin_model(d["model"])
        except (KeyError, TypeError, AttributeError, DeaiError) as exc:  # a bad event pins nothing
            log.warning("cannot pin the blobs of event %s: %s", e.seq, exc)

    def _pin_model(self, model_id: str) -> None:
        """A registered model's provenance document, and the checkpoint the document names."""
        model = self.ledger.model(model_id)
        document = model.document if model is not None else None
        self._pin(document)
        if not isinstance(document, str):  # no such model, or no digest: nothing more to pin
            return
        try:
            # A pattern, not a parse: nothing foreign is parsed here, and a registrant who names
            # some other blob this way could have named it as the document anyway.
            small = self.store.size(document) <= MAX_DOCUMENT
            if small and (found := _CHECKPOINT.search(self.store.get(document))):
                self._pin(found.group(1).decode())
        except (DeaiError, TypeError):  # not uploaded (yet) or not a digest: only it is pinned
            pass

    def _record(self, task_id: str) -> dict[str, Any]:
        coord = self.coordinators[task_id]
        return {"spec": coord.spec.digest, "state": coord.to_json()}

    def _save(self, task_id: str) -> None:
        # The cursor rides along: events that changed nothing may be followed again after a restart.
        self.kv.put_many({"task:" + task_id: self._record(task_id), "cursor": self.cursor})

    # -- handlers --------------------------------------------------------------------------------------

    def _wrap(self, fn: Callable[[Envelope, dict], dict], name: str) -> Callable[[Envelope], dict]:
        changes = name not in READ_ONLY

        def handler(env: Envelope) -> dict:
            body = env.body
            with self.lock:
                try:
                    return fn(env, body)
                except KeyError as exc:
                    raise ServiceError(f"missing or unknown field {exc}") from None
                except (TypeError, AttributeError) as exc:
                    raise ServiceError(f"malformed request body: {exc}") from None
                finally:
                    if changes:  # the tick loop acts on it now, and long polls wake
                        self.changes.bump()

        return handler

    def _coord(self, body: dict) -> TaskCoordinator:
        task = body["task"]
        if not isinstance(task, str) or task.lower() not in self.coordinators:
            raise ServiceError(f"this hub coordinates no task {task!r}", 404)
        return self.coordinators[task.lower()]

    def _hub_info(self, env: Envelope, body: dict) -> dict:
        return {
            "network": self.network,
            "coordinator": self.account.address,
            "config": self.ledger.config.to_dict(),
            "time": self.clock(),
        }

    def _ledger_submit(self, env: Envelope, body: dict) -> dict:
        raw = body["txs"]
        if not isinstance(raw, list) or not 0 < len(raw) <= MAX_BATCH:
            raise ServiceError(f"txs must be a list of 1 to {MAX_BATCH} hex strings")
        try:
            txs = [bytes.fromhex(t) for t in raw]
        except (ValueError, TypeError) as exc:
            raise ServiceError(f"txs must be hex strings: {exc}") from None
        out, follow = [], False
        for item, result in zip(txs, self.ledger.submit_many(txs), strict=True):
            if isinstance(result, ReplayedNonce) and (dup := self._applied(item)) is not None:
                out.append(dup)
            elif isinstance(result, LedgerError):
                out.append({"ok": False, "error": type(result).__name__, "reason": str(result)})
            else:
                follow |= any(e.kind in ("task_created", "task_joined") for e in result.events)
                out.append(
                    {
                        "ok": True,
                        "height": result.height,
                        "tx_id": result.tx_id,
                        "time": result.time,
                        "events": [{"kind": e.kind, "data": e.data, "seq": e.seq} for e in result.events],
                    }
                )
        if follow:  # adopt a new task (or count a join) before answering: the creator may ask at once
            while self._follow(self.clock()):  # all of the backlog (10,000 events a pass), up to this tx
                pass
        return {"results": out}

    def _applied(self, raw: bytes) -> dict | None:
        """The record of an identical, already applied transaction (an idempotent retry)."""
        from deai.ledger.tx import SignedTx

        stx = SignedTx.from_bytes(raw)
        for rec in self.ledger.history(stx.sender, limit=200):
            if rec.nonce == stx.nonce and rec.kind == stx.kind and rec.body == stx.tx.to_body():
                return {"ok": True, "duplicate": True, "height": rec.height, "time": rec.time, "events": []}
        return None

    def _ledger_query(self, env: Envelope, body: dict) -> dict:
        try:
            return {"result": answer_query(self.ledger, body["q"], body.get("args", {}))}
        except LedgerError as exc:
            raise ServiceError(str(exc)) from None

    def _cursor(self, body: dict) -> tuple[int, int]:
        since, limit = body.get("since", 0), body.get("limit", 1000)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (since, limit)):
            raise ServiceError("since and limit must be non-negative integers")
        return since, min(max(limit, 1), MAX_PAGE)

    def _ledger_events(self, env: Envelope, body: dict) -> dict:
        since, limit = self._cursor(body)
        events = self.ledger.events(since, limit)
        out = [{"seq": e.seq, "height": e.height, "kind": e.kind, "data": e.data} for e in events]
        return {"events": out, "next": events[-1].seq + 1 if events else since}

    def _ledger_entries(self, env: Envelope, body: dict) -> dict:
        """Log entries from ``since``: a range read of at most ``limit`` entries (never a walk
        from genesis) and about 4 MiB of transactions (one entry at least); continue at ``next``."""
        since, limit = self._cursor(body)
        if not isinstance(self.ledger, LocalLedger):  # an EVM ledger: its log is the chain's
            raise ServiceError("this hub's ledger is a chain: read its log from the chain itself")
        out: list[dict[str, Any]] = []
        size, max_bytes = 0, 4 << 20  # a reply's size is bounded whatever the limit
        for entry in self.ledger.log(since, limit):
            if out and size + len(entry.tx) > max_bytes:
                break
            size += len(entry.tx)
            out.append(
                {
                    "seq": entry.seq,
                    "prev_hash": entry.prev_hash,
                    "time": entry.time,
                    "tx": entry.tx.hex(),
                    "signature": entry.signature.hex(),
                    "events_hash": entry.events_hash,
                    "hash": entry.hash,
                }
            )
        nxt = out[-1]["seq"] + 1 if out else since
        return {"entries": out, "next": nxt, "genesis": self.ledger.config.genesis_hash}

    def _task_list(self, env: Envelope, body: dict) -> dict:
        tasks = {t: {"phase": c.state.phase, "round": c.state.round} for t, c in self.coordinators.items()}
        return {"tasks": tasks, "rejected": self.rejected}

    def _task_status(self, env: Envelope, body: dict) -> dict:
        task = body["task"]
        if isinstance(task, str) and task.lower() in self.rejected:
            return TaskView.rejected(task, self.rejected[task.lower()]).to_json()
        return self._coord(body).status().to_json()

    def _task_round(self, env: Envelope, body: dict) -> dict:
        return self._coord(body).round_view().to_json()

    def _statements(self, body: dict) -> list:
        items = body["statements"]
        if not isinstance(items, list) or not 0 < len(items) <= MAX_BATCH:
            raise ServiceError(f"statements must be a list of 1 to {MAX_BATCH} objects")
        return items

    def _task_updates(self, env: Envelope, body: dict) -> dict:
        results, touched = [], set()
        for item in self._statements(body):
            try:
                st = UpdateStatement.from_json(item)
                coord = self._coord({"task": st.task})
                results.append(result := coord.submit_update(st))
                if result.get("accepted"):
                    self._pin(st.update)
                touched.add(st.task)
            except DeaiError as exc:
                results.append({"accepted": False, "error": type(exc).__name__, "reason": str(exc)})
        for t in touched:
            self._save(t)
        return {"results": results}

    def _task_secagg(self, env: Envelope, body: dict) -> dict:
        results = []
        for item in self._statements(body):
            try:
                st = SecAggStatement.from_json(item)
                results.append(self._coord({"task": st.task}).submit_secagg(st))
            except DeaiError as exc:
                results.append({"accepted": False, "error": type(exc).__name__, "reason": str(exc)})
        return {"results": results}

    def _task_seal(self, env: Envelope, body: dict) -> dict:
        task = body["task"]
        if isinstance(task, str) and task.lower() not in self.coordinators:
            self._follow(self.clock())  # sent right after create_task: adopt the task first
        return self.sealed.take(self._coord(body).spec, body)

    def _task_inbox(self, env: Envelope, body: dict) -> dict:
        coord, providers = self._coord(body), body["providers"]
        if not isinstance(providers, list) or len(providers) > MAX_BATCH:
            raise ServiceError(f"providers must be a list of at most {MAX_BATCH} addresses")
        return {"inbox": {p: coord.secagg_inbox(p) for p in providers if isinstance(p, str)}}

    def _task_payouts(self, env: Envelope, body: dict) -> dict:
        coord, addresses = self._coord(body), body["addresses"]
        if not isinstance(addresses, list) or len(addresses) > MAX_BATCH:
            raise ServiceError(f"addresses must be a list of at most {MAX_BATCH} addresses")
        try:
            addresses = [check_address(a) for a in addresses]
        except (EncodingError, TypeError) as exc:
            raise ServiceError(f"addresses: {exc}") from None
        return {"payouts": {a: coord.payout_proofs(a) for a in addresses}}

    def _job_assignments(self, env: Envelope, body: dict) -> dict:
        out = []
        for coord in self.coordinators.values():
            out.extend(coord.assignments(env.sender))
        for plugin in self.plugins:
            if hasattr(plugin, "assignments"):
                out.extend(plugin.assignments(env.sender))
        for a in out:
            a["commitments"] = {
                e: c for e in a["executors"] if (c := self.ledger.commitment(a["job"], e)) is not None
            }
            a["reveals"] = {}
        return {"assignments": out, "time": self.clock()}


# The built-in message types and their handlers: an explicit table, not names built from strings.
_ROUTES: dict[str, Callable[..., dict]] = {
    "hub.info": Hub._hub_info,
    "ledger.submit": Hub._ledger_submit,
    "ledger.query": Hub._ledger_query,
    "ledger.events": Hub._ledger_events,
    "ledger.entries": Hub._ledger_entries,
    "task.list": Hub._task_list,
    "task.status": Hub._task_status,
    "task.round": Hub._task_round,
    "task.updates": Hub._task_updates,
    "task.secagg": Hub._task_secagg,
    "task.inbox": Hub._task_inbox,
    "task.payouts": Hub._task_payouts,
    SEAL: Hub._task_seal,
    "job.assignments": Hub._job_assignments,
}

"""The incentive report of a task: who earned what, and why.

:func:`task_report` reads everything public about a task from the ledger -- members and their
stakes (``task_joined``), slashes (``member_slashed``), posted payouts and claims, the task's jobs
(those registered with the task, plus ``job_ids``) with accepted, faulted and slashed executors,
and reputations -- and joins the off-ledger *task record* (:func:`task_record`: the score book,
the settlement document with the allocation, the scoring jobs), when given, for the "why": each
provider's scores per round, merged copies, and its allocated amount.

The report is a JSON-ready dict (:func:`task_report`); ``deai incentives report`` renders it as a
table (:func:`deai.cli.incentives.report_table`), so the protocol layer imports no terminal library.

:class:`Statement` is the one account of money for the whole network (or one task): fed the
ledger's events, it keeps one :class:`StatementRow` per account and role -- earned by source
(task payouts claimed, job fees, slash rewards, inference fees, royalties), slashed with each
reason, jobs won, faulted and missed. The task report's ``earned``, the run report's
(:func:`deai.sim.accounting.earnings`), the hub's dashboard and the CSV/JSON export
(:func:`statement_csv`) all read it, so one account shows one figure everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from deai.ledger.base import Ledger
from deai.ledger.config import COMPUTE, DATA
from deai.protocol.incentives.errors import SettlementError
from deai.protocol.incentives.settlement import ScoreBook, Settlement

__all__ = ["SOURCES", "Statement", "StatementRow", "statement_csv", "task_record", "task_report"]


def task_record(
    task: str, book: ScoreBook | None, settlement: Settlement | None, job_ids: Iterable[str] = ()
) -> dict[str, Any]:
    """The off-ledger record a coordinator publishes next to a task's payout (JSON-ready)."""
    return {
        "task": task,
        "scores": book.to_json() if book is not None else None,
        "settlement": settlement.to_json() if settlement is not None else None,
        "jobs": list(job_ids),
    }


def _row(rows: dict[str, dict[str, Any]], address: str) -> dict[str, Any]:
    return rows.setdefault(
        address,
        {
            "account": address,
            "roles": [],
            "task_stake": 0,
            "slashed_in_task": 0,
            "score_total": None,
            "rounds_scored": 0,
            "rounds_positive": 0,
            "copy_rounds": 0,
            "flags": [],
            "jobs_accepted": 0,
            "jobs_faulted": 0,
            "jobs_missed": 0,  # drawn, never committed: a liveness fault, no stake lost
            "fees_earned": 0,
            "job_slashes": 0,
            "allocated": 0,
            "allocated_compute": 0,
            "allocated_data": 0,
            "claimed": 0,
            "earned": 0,  # what the ledger credited it for this task: payouts claimed, job fees
            "slash_reasons": [],
            "reputation": {},
            "why": "",
        },
    )


_FLAG_TEXT = {
    "ZERO": "zero update",
    "PUBLIC": "trained on public data only",
    "STALE_GLOBAL": "re-sent the previous global update",
    "CONSENSUS": "consensus copy (ALIE-like)",
}


def _flag_text(f: Mapping[str, Any]) -> str:
    """One flagged round in words (the score job's novelty flag)."""
    if f["flag"] == "COPY" and f.get("of"):
        return f"copy of {f['of'][:10]}.. (committed first)"
    if f["flag"] == "REPLAY" and f.get("of"):
        return f"replay of round {f['of'][0]}'s update of {f['of'][1][:10]}.."
    if f["flag"] == "REPLAY":
        return "replay of an earlier round's update"
    return _FLAG_TEXT.get(f["flag"], f["flag"].lower())


def _flags_why(flags: list[dict[str, Any]]) -> list[str]:
    """Flagged rounds grouped by text: ``"zero update (rounds 1, 2)"``."""
    by: dict[str, list[int]] = {}
    for f in flags:
        by.setdefault(_flag_text(f), []).append(f["round"])
    return [f"{t} (round{'s' if len(rs) > 1 else ''} {', '.join(map(str, rs))})" for t, rs in by.items()]


def _why(r: dict[str, Any]) -> str:
    parts = []
    if r["score_total"] is not None:
        parts.extend(_flags_why(r["flags"]))
        copies_unflagged = r["copy_rounds"] - sum(1 for f in r["flags"] if f["flag"] == "COPY")
        if copies_unflagged > 0:
            parts.append(f"copy of an earlier update in {copies_unflagged} round(s)")
        if r["score_total"] > 0:
            parts.append(
                f"score {r['score_total']:+.4g} ({r['rounds_positive']}/{r['rounds_scored']} rounds positive)"
            )
        elif not r["copy_rounds"] and not r["flags"]:
            parts.append(f"no positive contribution (score {r['score_total']:+.4g})")
    if r["jobs_accepted"] or r["jobs_faulted"]:
        parts.append(f"{r['jobs_accepted']} job(s) accepted, {r['jobs_faulted']} faulted")
    if r["jobs_missed"]:
        parts.append(f"{r['jobs_missed']} job(s) missed (never committed; no stake lost)")
    if r["claimed"]:
        parts.append(f"claimed {r['claimed']} in payouts")
    elif r["allocated"]:
        parts.append(f"allocated {r['allocated']}, not claimed yet")
    if r["slashed_in_task"] or r["job_slashes"]:
        why = f" ({'; '.join(r['slash_reasons'])})" if r["slash_reasons"] else ""
        parts.append(f"slashed {r['slashed_in_task'] + r['job_slashes']}{why}")
    if not parts and r["task_stake"]:
        parts.append(
            f"member (task stake {r['task_stake']}); no scores in this report (pass the task record)"
        )
    return "; ".join(parts) or "no recorded activity"


def task_report(
    ledger: Ledger, task: str, record: Mapping[str, Any] | None = None, job_ids: Iterable[str] = ()
) -> dict[str, Any]:
    """The report of ``task`` (see the module docstring)."""
    info = ledger.task(task)
    if info is None:
        raise SettlementError(f"no task {task} on the ledger")
    rows: dict[str, dict[str, Any]] = {}
    jobs = set(job_ids) | set((record or {}).get("jobs") or [])
    payouts: dict[int, dict[str, Any]] = {}
    for ev in ledger.events():
        d = ev.data
        if ev.kind == "task_joined" and d["task"] == task:
            r = _row(rows, d["account"])
            r["roles"].append(d["role"])
            r["task_stake"] += d["stake"]
        elif ev.kind == "member_slashed" and d["task"] == task:
            _row(rows, d["account"])["slashed_in_task"] += d["amount"]
        elif ev.kind == "payout_posted" and d["task"] == task:
            payouts[d["epoch"]] = {"epoch": d["epoch"], "root": d["root"], "total": d["total"], "claimed": 0}
        elif ev.kind == "claimed" and d["task"] == task:
            _row(rows, d["account"])["claimed"] += d["amount"]
            payouts[d["epoch"]]["claimed"] += d["amount"]
        elif ev.kind == "job_registered" and d.get("task") == task:
            jobs.add(d["job"])
        elif ev.kind == "slashed" and d.get("job") in jobs:
            _row(rows, d["account"])["job_slashes"] += d["amount"]
    job_rows = []
    for job_id in sorted(jobs):
        job = ledger.job(job_id)
        if job is None:
            continue
        job_rows.append(
            {
                "job": job_id,
                "type": job.job_type,
                "status": job.status.value,
                "fee": job.fee,
                "replicated": job.replicated,
                "accepted": list(job.accepted),
                "faulted": list(job.faulted),
                "missed": list(job.missed),
            }
        )
        for e in job.missed:
            r = _row(rows, e)
            r["jobs_missed"] += 1
            if job.role not in r["roles"]:
                r["roles"].append(job.role)
        for e in job.accepted:
            r = _row(rows, e)
            r["jobs_accepted"] += 1
            if COMPUTE not in r["roles"]:
                r["roles"].append(job.role)
        for e in job.faulted:
            r = _row(rows, e)
            r["jobs_faulted"] += 1
            if COMPUTE not in r["roles"]:
                r["roles"].append(job.role)
    scores = (record or {}).get("scores")
    if scores:
        book = ScoreBook.from_json(scores)
        copies: dict[str, int] = {}
        for dups in book.duplicates.values():
            for a in dups:
                copies[a] = copies.get(a, 0) + 1
        flagged: dict[str, list[dict[str, Any]]] = {}
        for rnd, fl in sorted(book.flags.items()):
            for a, name in fl.items():
                of: Any = None
                if name == "COPY":
                    of = book.duplicates.get(rnd, {}).get(a)
                elif name == "REPLAY" and a in book.replays.get(rnd, {}):
                    of = list(book.replays[rnd][a])
                flagged.setdefault(a, []).append({"round": rnd, "flag": name, "of": of})
        for a, total in book.totals().items():
            r = _row(rows, a)
            r["flags"] = flagged.get(a, [])
            r["score_total"] = total
            per_round = [s[a] for s in book.rounds.values() if a in s]
            r["rounds_scored"], r["rounds_positive"] = len(per_round), sum(1 for s in per_round if s > 0)
            r["copy_rounds"] = copies.get(a, 0)
            if DATA not in r["roles"]:
                r["roles"].append(DATA)
    settlement = (record or {}).get("settlement")
    if settlement:
        alloc = settlement["allocation"]
        for part in ("compute", "data"):
            for a, v in alloc[part].items():
                r = _row(rows, a)
                r[f"allocated_{part}"] += v
                r["allocated"] += v
    for st in Statement.of(ledger, task).rows.values():  # the one account of money (fees net of royalties)
        r = _row(rows, st.account)
        r["earned"] += st.earned_total
        r["fees_earned"] += st.earned.get("job_fees", 0) + st.earned.get("slash_rewards", 0)
        r["slash_reasons"] += st.reasons
    for a, r in rows.items():
        r["roles"] = sorted(set(r["roles"]))
        r["reputation"] = {role: ledger.reputation(a, role) for role in (r["roles"] or [DATA])}
        r["why"] = _why(r)
    accounts = sorted(rows.values(), key=lambda r: (-r["allocated"], -r["claimed"], r["account"]))
    return {
        "task": task,
        "status": info.status.value,
        "creator": info.creator,
        "coordinator": info.coordinator,
        "budget_left": info.budget,
        "members": info.members,
        "payouts": [payouts[e] for e in sorted(payouts)],
        "jobs": job_rows,
        "accounts": accounts,
        "totals": {
            "paid_out": sum(p["total"] for p in payouts.values()),
            "claimed": sum(p["claimed"] for p in payouts.values()),
            "earned": sum(r["earned"] for r in accounts),
            "slashed_in_task": sum(r["slashed_in_task"] for r in accounts),
            "allocated_compute": sum(r["allocated_compute"] for r in accounts),
            "allocated_data": sum(r["allocated_data"] for r in accounts),
        },
    }


# -- the statement: who earned and lost what, network-wide ------------------------------------------

SOURCES = ("payouts", "job_fees", "slash_rewards", "inference_fees", "royalties")
OWNER = "model_owner"  # the role under which royalties are earned (not a staking role)


@dataclass
class StatementRow:
    """One account in one role: ``earned`` by source (:data:`SOURCES`), ``slashed`` in total with
    one reason per slash (``"job 0x12ab..: wrong result"``), jobs ``won``, ``faulted`` and
    ``missed`` (drawn, never committed: no stake lost)."""

    account: str
    role: str
    earned: dict[str, int] = field(default_factory=dict)
    slashed: int = 0
    reasons: list[str] = field(default_factory=list)
    won: int = 0
    faulted: int = 0
    missed: int = 0

    @property
    def earned_total(self) -> int:
        return sum(self.earned.values())

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "earned_total": self.earned_total}


MAX_REASONS = 20  # reasons kept per row (the count of slashes is in ``slashed``'s events)


class Statement:
    """Who earned and was slashed, and why, from the ledger's events (see the module docstring).

    ``job_role(job_id)`` names a job's role (the ledger's job record); ``task``, when given,
    keeps only what concerns that task (its payouts, member slashes and jobs). Feed events in
    order with :meth:`feed`, as many times as new ones arrive."""

    def __init__(self, job_role: Callable[[str], str | None], task: str | None = None) -> None:
        self.job_role, self.task = job_role, task
        self.rows: dict[tuple[str, str], StatementRow] = {}
        self.member_role: dict[tuple[str, str], str] = {}  # (task, account) -> role joined
        self.task_jobs: set[str] = set()
        self.cursor = 0

    def row(self, account: str, role: str) -> StatementRow:
        return self.rows.setdefault((account, role), StatementRow(account, role))

    def _earn(self, account: str, role: str, source: str, amount: int) -> None:
        r = self.row(account, role)
        r.earned[source] = r.earned.get(source, 0) + amount

    def _slash(self, account: str, role: str, amount: int, reason: str) -> None:
        r = self.row(account, role)
        r.slashed += amount
        if len(r.reasons) < MAX_REASONS:
            r.reasons.append(reason)

    def _mine(self, d: Mapping[str, Any]) -> bool:
        return self.task is None or d.get("task") == self.task or d.get("job") in self.task_jobs

    def feed(self, events: Iterable[Any]) -> None:
        for ev in events:
            self.cursor = ev.seq + 1
            d, kind = ev.data, ev.kind
            if kind == "task_joined":
                self.member_role[(d["task"], d["account"])] = d["role"]
            elif kind == "job_registered" and self.task is not None and d.get("task") == self.task:
                self.task_jobs.add(d["job"])
            if not self._mine(d):
                continue
            if kind == "claimed":
                role = self.member_role.get((d["task"], d["account"]), "compute_provider")
                self._earn(d["account"], role, "payouts", d["amount"])
            elif kind == "job_resolved":
                role = self.job_role(d["job"]) or "compute_provider"
                for a in d.get("missed") or ():
                    self.row(a, role).missed += 1
                for a in d.get("faulted") or ():
                    self.row(a, role).faulted += 1
                if d["accepted"]:
                    source = "inference_fees" if role == "host" else "job_fees"
                    for a in d["accepted"]:
                        self._earn(a, role, source, d["paid"] // len(d["accepted"]))
                        if d["slash_reward"]:
                            self._earn(a, role, "slash_rewards", d["slash_reward"])
                        self.row(a, role).won += 1
            elif kind == "slashed":
                where = f"job {d['job'][:10]}.." if d.get("job") else "by the network"
                kind_of = " (inference)" if d.get("role") == "host" and d.get("job") else ""
                self._slash(
                    d["account"],
                    d["role"],
                    d["amount"],
                    f"{where}{kind_of}: {d.get('reason') or 'no reason'}",
                )
            elif kind == "member_slashed":
                role = self.member_role.get((d["task"], d["account"]), "data_provider")
                reason = f"task {d['task'][:10]}..: {d.get('reason') or 'no reason'}"
                self._slash(d["account"], role, d["amount"], reason)
            elif kind == "inference_paid" and self.task is None:
                for h in d.get("hosts") or ():
                    self._earn(h, "host", "inference_fees", d["per_host"])
            elif kind == "royalty_claimed" and self.task is None:
                self._earn(d["account"], OWNER, "royalties", d["amount"])

    def earned(self, account: str) -> int:
        """Everything ``account`` earned, all roles."""
        return sum(r.earned_total for (a, _), r in self.rows.items() if a == account)

    def slashed(self, account: str) -> int:
        return sum(r.slashed for (a, _), r in self.rows.items() if a == account)

    def sorted_rows(self) -> list[StatementRow]:
        return sorted(self.rows.values(), key=lambda r: (-r.earned_total, -r.slashed, r.account, r.role))

    @classmethod
    def of(cls, ledger: Ledger, task: str | None = None) -> Statement:
        """The statement of a whole ledger (or of one ``task``)."""

        def role(job_id: str) -> str | None:
            job = ledger.job(job_id)
            return job.role if job is not None else None

        st = cls(role, task)
        st.feed(ledger.events())
        return st


CSV_COLUMNS = (
    "account",
    "role",
    *(f"earned_{s}" for s in SOURCES),
    "earned_total",
    "slashed",
    "won",
    "faulted",
    "missed",
    "slash_reasons",
)


def statement_csv(rows: Iterable[StatementRow]) -> str:
    """CSV text, one line per account and role (:data:`CSV_COLUMNS`; reasons joined by ``"; "``)."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        earned = [r.earned.get(s, 0) for s in SOURCES]
        w.writerow(
            [
                r.account,
                r.role,
                *earned,
                r.earned_total,
                r.slashed,
                r.won,
                r.faulted,
                r.missed,
                "; ".join(r.reasons),
            ]
        )
    return buf.getvalue()

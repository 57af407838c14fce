"""The incentive report of a task: who earned what, and why.

:func:`task_report` reads everything public about a task from the ledger -- members and their
stakes (``task_joined``), slashes (``member_slashed``), posted payouts and claims, the task's jobs
(those registered with the task, plus ``job_ids``) with accepted, faulted and slashed executors,
and reputations -- and joins the off-ledger *task record* (:func:`task_record`: the score book,
the settlement document with the allocation, the scoring jobs), when given, for the "why": each
provider's scores per round, merged copies, and its allocated amount.

The report is a JSON-ready dict (:func:`task_report`); ``deai incentives report`` renders it as a
table (:func:`deai.cli.incentives.report_table`), so the protocol layer imports no terminal library.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from deai.ledger.base import Ledger
from deai.ledger.config import COMPUTE, DATA
from deai.protocol.incentives.errors import SettlementError
from deai.protocol.incentives.settlement import ScoreBook, Settlement

__all__ = ["task_record", "task_report"]


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
    if r["slashed_in_task"] or r["job_slashes"]:
        parts.append(f"slashed {r['slashed_in_task'] + r['job_slashes']}")
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
            r["fees_earned"] += job.fee
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
            "slashed_in_task": sum(r["slashed_in_task"] for r in accounts),
            "allocated_compute": sum(r["allocated_compute"] for r in accounts),
            "allocated_data": sum(r["allocated_data"] for r in accounts),
        },
    }

"""The hub's live dashboard: read-only pages and a small JSON API, served by the hub itself.

Mounted on the hub's FastAPI app by :func:`mount_dashboard` (``deai hub``:
:func:`deai.node.launch.serve.serve_hub`). Pages (server-rendered HTML; a small script,
``/dashboard/app.js``, re-reads the page's content every few seconds -- no CDN, no external file):

==============================  ===================================================================
``/`` , ``/dashboard/``         the network: ledger head, supply, participants per role, tasks
``/dashboard/tasks``            every task with its phase and round; ``/dashboard/tasks/<id>``: its
                                rounds with validation accuracy and loss curves (inline SVG)
``/dashboard/participants``     accounts: stakes, balance, earned by source, slashes and their reasons
``/dashboard/ledger``           the ledger's events (newest first) and its verification status
``/dashboard/inference``        inference requests (jobs of role host) and how they were verified
==============================  ===================================================================

The same data as JSON under ``/dashboard/api/<page>``; ``/dashboard/api/statement`` is the
network's (or one task's) :class:`~deai.protocol.incentives.report.Statement` as JSON or CSV, and
``/dashboard/api/report?task=`` the task's incentive report with the hub's scores (what
``deai incentives report --hub`` reads).

What an outsider can ask is bounded: ids are validated, pages hold at most :data:`PAGE` rows,
every request is charged to the client address's rate (the hub's unsigned-request limit), nothing
changes state and nothing secret is shown. ``ledger.verify()`` (a replay of the whole log) runs
on a background thread at most once every ``verify_every_s`` seconds; pages show the last result.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response

from deai.core.errors import DeaiError
from deai.ledger.config import ROLES
from deai.node.hub.dashboard_html import (
    SCRIPT,
    render_inference,
    render_ledger,
    render_network,
    render_participants,
    render_task,
    render_tasks,
)
from deai.node.hub.dashboard_html import (
    page as html_page,
)
from deai.node.hub.server import Hub
from deai.protocol.incentives.report import Statement, statement_csv, task_record, task_report

__all__ = ["PAGE", "Dashboard", "mount_dashboard"]

PAGE = 50  # rows per page
MAX_INFERENCE = 10_000  # inference job ids remembered (the newest)
_ID = re.compile(r"^0x[0-9a-f]{64}$")
_CSP = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'"


class Dashboard:
    """What the pages show, read from ``hub`` (its ledger and coordinators) under its locks."""

    def __init__(self, hub: Hub, *, verify_every_s: float = 60.0) -> None:
        self.hub, self.verify_every_s = hub, verify_every_s
        self.statement = Statement(self._job_role)
        self.stakers: set[str] = set()
        self.inference_jobs: deque[str] = deque(maxlen=MAX_INFERENCE)
        self._lock = threading.Lock()
        self._verified: dict[str, Any] | None = None
        self._verified_at = -1e18
        self._verify_s = 0.0  # how long the last check took
        self._verifying = False
        self._cache: dict[tuple[str, str | None], tuple[int, Any]] = {}  # (what, task) -> (cursor, value)

    def _cached(self, what: str, task: str | None, compute: Callable[[], Any]) -> Any:
        """``compute()`` again only when the ledger has new events (at most 32 values kept)."""
        key = (what, task)
        with self._lock:
            hit = self._cache.get(key)
            cursor = self.statement.cursor
        if hit is not None and hit[0] == cursor:
            return hit[1]
        value = compute()
        with self._lock:
            if len(self._cache) >= 32:
                self._cache.clear()
            self._cache[key] = (cursor, value)
        return value

    def _job_role(self, job_id: str) -> str | None:
        job = self.hub.ledger.job(job_id)
        return job.role if job is not None else None

    def refresh(self) -> None:
        """Take in the ledger events since the last call (at most 10 000 per call)."""
        with self._lock:
            events = self.hub.ledger.events(self.statement.cursor, 10_000)
            for e in events:
                if e.kind == "staked":
                    self.stakers.add(e.data["account"])
                elif e.kind == "job_registered" and not e.data.get("task"):
                    self.inference_jobs.append(e.data["job"])
            self.statement.feed(events)

    # -- the ledger's verification (expensive: cached, in the background) --------------------------

    def verification(self) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            # the replay holds the ledger's lock: the hub spends at most a tenth of its time in it
            every = max(self.verify_every_s, 10 * self._verify_s)
            due = not self._verifying and now - self._verified_at >= every
            if due:
                self._verifying = True
        if due:
            threading.Thread(target=self._verify, daemon=True, name="dashboard-verify").start()
        out = dict(self._verified or {"ok": None, "problem": None, "entries": 0})
        out["checking"] = self._verifying
        out["age_s"] = round(now - self._verified_at, 1) if self._verified else None
        return out

    def _verify(self) -> None:
        start = time.monotonic()
        try:
            rep = self.hub.ledger.verify()
            result = {"ok": rep.ok, "problem": rep.problem, "entries": rep.entries, "head": rep.head}
        except Exception as exc:  # a verification that cannot run is a result too
            result = {"ok": False, "problem": f"{type(exc).__name__}: {exc}"[:300], "entries": 0}
        with self._lock:
            self._verified, self._verified_at, self._verifying = result, time.monotonic(), False
            self._verify_s = self._verified_at - start

    # -- pages' data -------------------------------------------------------------------------------

    def network(self) -> dict[str, Any]:
        self.refresh()
        ledger = self.hub.ledger
        head = ledger.head()
        per_role = self._cached("per_role", None, self._per_role)
        with self.hub.lock:
            phases = [c.state.phase.value for c in self.hub.coordinators.values()]
        return {
            "network": self.hub.network,
            "coordinator": self.hub.account.address,
            "head": {"height": head.height, "hash": head.hash, "time": head.time},
            "supply": ledger.supply(),
            "participants": per_role,
            "tasks": {p: phases.count(p) for p in sorted(set(phases))},
            "rejected": len(self.hub.rejected),
            "inference_requests": len(self.inference_jobs),
            "verification": self.verification(),
        }

    def _per_role(self) -> dict[str, int]:
        with self._lock:
            stakers = list(self.stakers)
        per_role = {r: 0 for r in ROLES}
        for a in stakers:
            for r in ROLES:
                if self.hub.ledger.stake(a, r) > 0:
                    per_role[r] += 1
        return per_role

    def tasks(self) -> dict[str, Any]:
        with self.hub.lock:
            rows = []
            for t, c in self.hub.coordinators.items():
                last = c.state.rounds[-1] if c.state.rounds else None
                rows.append(
                    {
                        "task": t,
                        "phase": c.state.phase.value,
                        "round": c.state.round,
                        "rounds": c.spec.rounds,
                        "members": len(c.state.members),
                        "accuracy": last.val_accuracy if last else None,
                        "loss": last.val_loss if last else None,
                        "model": c.state.model,
                        "reason": c.state.reason,
                    }
                )
        return {"tasks": rows, "rejected": dict(list(self.hub.rejected.items())[:PAGE])}

    def task(self, task_id: str) -> dict[str, Any] | None:
        with self.hub.lock:
            coord = self.hub.coordinators.get(task_id)
            view = coord.status() if coord is not None else None
        if view is None:
            return None
        rounds = [
            {
                "round": r.round,
                "accuracy": r.val_accuracy,
                "loss": r.val_loss,
                "contributors": len(r.contributors),
                "faulted": r.faulted,
                "payout": r.payout,
                "defense": r.defense,
                "epsilon": r.epsilon,
            }
            for r in view.history
        ]
        return {
            "task": view.task,
            "phase": view.phase.value,
            "round": view.round,
            "rounds": view.rounds,
            "members": view.members,
            "epsilon": view.epsilon,
            "model": view.model,
            "reason": view.reason,
            "history": rounds,
            "jobs": {
                k: {"status": j.status, "attempts": j.attempts} for k, j in list(view.jobs.items())[:PAGE]
            },
        }

    def participants(self, page: int) -> dict[str, Any]:
        self.refresh()
        ledger = self.hub.ledger
        with self._lock:
            accounts = sorted(self.stakers | {a for a, _ in self.statement.rows})[
                page * PAGE : (page + 1) * PAGE
            ]
            shown = set(accounts)
            rows: dict[str, list[dict[str, Any]]] = {a: [] for a in accounts}
            for (a, _), r in self.statement.rows.items():
                if a in shown:
                    rows[a].append(r.to_json())
            total = len(self.stakers | {a for a, _ in self.statement.rows})
        out = []
        for a in accounts:
            out.append(
                {
                    "account": a,
                    "balance": ledger.balance(a),
                    "stakes": {r: s for r in ROLES if (s := ledger.stake(a, r))},
                    "reputation": {r: v for r in ROLES if (v := ledger.reputation(a, r))},
                    "roles": rows[a],
                    "earned": sum(r["earned_total"] for r in rows[a]),
                    "slashed": sum(r["slashed"] for r in rows[a]),
                }
            )
        return {"page": page, "pages": max(1, -(-total // PAGE)), "accounts": out}

    def ledgerhtml_page(self, before: int | None) -> dict[str, Any]:
        self.refresh()
        end = self.statement.cursor if before is None else min(before, self.statement.cursor)
        start = max(0, end - PAGE)
        events = self.hub.ledger.events(start, end - start) if end > start else []
        rows = [{"seq": e.seq, "height": e.height, "kind": e.kind, "data": e.data} for e in reversed(events)]
        return {
            "events": rows,
            "next_before": start if start > 0 else None,
            "verification": self.verification(),
        }

    def inference(self, page: int) -> dict[str, Any]:
        self.refresh()
        with self._lock:
            ids = list(self.inference_jobs)[::-1][page * PAGE : (page + 1) * PAGE]
        rows = []
        for job_id in ids:
            job = self.hub.ledger.job(job_id)
            if job is None:
                continue
            rows.append(
                {
                    "job": job_id,
                    "model": job.model,
                    "creator": job.creator,
                    "fee": job.fee,
                    "status": job.status.value,
                    "executors": len(job.executors),
                    "accepted": list(job.accepted),
                    "faulted": list(job.faulted),
                    "missed": list(job.missed),
                    "verified": _verified(job.status.value, len(job.accepted), len(job.executors)),
                }
            )
        return {"page": page, "requests": len(self.inference_jobs), "jobs": rows}

    def statement_rows(self, task: str | None) -> list[Any]:
        if task is None:
            self.refresh()
            with self._lock:
                return self.statement.sorted_rows()
        self.refresh()
        return self._cached("statement", task, lambda: Statement.of(self.hub.ledger, task).sorted_rows())

    def report(self, task: str) -> dict[str, Any]:
        """The incentive report of ``task`` with this hub's scores and allocations (its record);
        computed again only when the ledger has new events."""
        self.refresh()
        return self._cached("report", task, lambda: self._report(task))

    def _report(self, task: str) -> dict[str, Any]:
        with self.hub.lock:
            coord = self.hub.coordinators.get(task)
            view = coord.status() if coord is not None else None
        record = None
        if view is not None:
            alloc: dict[str, dict[str, int]] = {"compute": {}, "data": {}}
            for r in view.history:
                for part in alloc:
                    for a, v in ((r.allocation or {}).get(part) or {}).items():
                        alloc[part][a] = alloc[part].get(a, 0) + int(v)
            record = task_record(task, None, None, view.job_ids)
            record["scores"] = view.scores
            record["settlement"] = {"allocation": alloc}
        return task_report(self.hub.ledger, task, record)


def _verified(status: str, accepted: int, executors: int) -> str:
    if status == "accepted":
        return f"verified: {accepted} host(s) agreed"
    if status == "open":
        return "pending"
    return f"not verified ({status})"


# -- the routes -------------------------------------------------------------------------------------


def mount_dashboard(
    app: FastAPI, hub: Hub, *, verify_every_s: float = 60.0, admit: Callable[[str], None] | None = None
) -> Dashboard:
    """Add the dashboard's pages and API to ``app`` (the hub's); ``admit(client address)`` raises
    to refuse a request over the client's rate (default: the hub endpoint's unsigned-request limit)."""
    dash = Dashboard(hub, verify_every_s=verify_every_s)
    admit = admit or hub.endpoint.admit_peer

    def guard(request: Request) -> Response | None:
        try:
            admit(request.client.host if request.client else "?")
        except DeaiError as exc:
            return JSONResponse({"error": type(exc).__name__, "reason": str(exc)}, status_code=429)
        return None

    def page(
        title: str,
        active: str,
        render: Callable[[dict[str, Any]], str],
        data: Callable[[], dict[str, Any] | None],
    ):
        def handler(request: Request, fragment: int = Query(0, ge=0, le=1)) -> Response:
            if (refused := guard(request)) is not None:
                return refused
            d = data()
            if d is None:
                return HTMLResponse(html_page("not found", active, "<h2>not found</h2>"), status_code=404)
            body = render(d)
            out = HTMLResponse(body if fragment else html_page(title, active, body))
            out.headers["Content-Security-Policy"] = _CSP
            out.headers["Cache-Control"] = "no-store"
            return out

        return handler

    def api(data: Callable[[], dict[str, Any] | None]):
        def handler(request: Request) -> Response:
            if (refused := guard(request)) is not None:
                return refused
            d = data()
            return JSONResponse(
                d if d is not None else {"error": "NotFound", "reason": "no such task"},
                status_code=200 if d is not None else 404,
            )

        return handler

    def task_id(task: str) -> str | None:
        t = task.lower()
        return t if _ID.match(t) else None

    def one_task(task: str) -> dict[str, Any] | None:
        t = task_id(task)
        return dash.task(t) if t is not None else None

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:  # none: an empty answer, not a 404 in every browser's console
        return Response(status_code=204, headers={"Cache-Control": "max-age=86400"})

    @app.get("/dashboard/app.js", include_in_schema=False)
    def script() -> Response:
        return Response(SCRIPT, media_type="text/javascript", headers={"Cache-Control": "max-age=60"})

    @app.get("/dashboard/", include_in_schema=False)
    def networkhtml_page(request: Request, fragment: int = Query(0, ge=0, le=1)) -> Response:
        return page("network", "network", render_network, dash.network)(request, fragment)

    @app.get("/dashboard/tasks", include_in_schema=False)
    def taskshtml_page(request: Request, fragment: int = Query(0, ge=0, le=1)) -> Response:
        return page("tasks", "tasks", render_tasks, dash.tasks)(request, fragment)

    @app.get("/dashboard/tasks/{task}", include_in_schema=False)
    def taskhtml_page(task: str, request: Request, fragment: int = Query(0, ge=0, le=1)) -> Response:
        return page("task", "tasks", render_task, lambda: one_task(task))(request, fragment)

    @app.get("/dashboard/participants", include_in_schema=False)
    def participantshtml_page(
        request: Request,
        page_: int = Query(0, alias="page", ge=0, le=100_000),
        fragment: int = Query(0, ge=0, le=1),
    ) -> Response:
        return page("participants", "participants", render_participants, lambda: dash.participants(page_))(
            request, fragment
        )

    @app.get("/dashboard/ledger", include_in_schema=False)
    def ledgerhtml_page(
        request: Request,
        before: int | None = Query(None, ge=0, le=1 << 62),
        fragment: int = Query(0, ge=0, le=1),
    ) -> Response:
        return page("ledger", "ledger", render_ledger, lambda: dash.ledgerhtml_page(before))(
            request, fragment
        )

    @app.get("/dashboard/inference", include_in_schema=False)
    def inferencehtml_page(
        request: Request,
        page_: int = Query(0, alias="page", ge=0, le=100_000),
        fragment: int = Query(0, ge=0, le=1),
    ) -> Response:
        return page("inference", "inference", render_inference, lambda: dash.inference(page_))(
            request, fragment
        )

    app.get("/dashboard/api/network", include_in_schema=False)(api(dash.network))
    app.get("/dashboard/api/tasks", include_in_schema=False)(api(dash.tasks))

    @app.get("/dashboard/api/tasks/{task}", include_in_schema=False)
    def task_api(task: str, request: Request) -> Response:
        return api(lambda: one_task(task))(request)

    @app.get("/dashboard/api/participants", include_in_schema=False)
    def participants_api(request: Request, page_: int = Query(0, alias="page", ge=0, le=100_000)) -> Response:
        return api(lambda: dash.participants(page_))(request)

    @app.get("/dashboard/api/ledger", include_in_schema=False)
    def ledger_api(request: Request, before: int | None = Query(None, ge=0, le=1 << 62)) -> Response:
        return api(lambda: dash.ledgerhtml_page(before))(request)

    @app.get("/dashboard/api/inference", include_in_schema=False)
    def inference_api(request: Request, page_: int = Query(0, alias="page", ge=0, le=100_000)) -> Response:
        return api(lambda: dash.inference(page_))(request)

    @app.get("/dashboard/api/statement", include_in_schema=False)
    def statement_api(
        request: Request,
        task: str | None = Query(None, max_length=66),
        format: str = Query("json", pattern="^(json|csv)$"),
    ) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        t = None
        if task is not None and (t := task_id(task)) is None:
            return JSONResponse(
                {"error": "BadRequest", "reason": "task must be 0x and 64 hex digits"}, status_code=400
            )
        rows = dash.statement_rows(t)
        if format == "csv":
            return PlainTextResponse(statement_csv(rows), media_type="text/csv")
        return JSONResponse({"task": t, "rows": [r.to_json() for r in rows]})

    @app.get("/dashboard/api/report", include_in_schema=False)
    def report_api(request: Request, task: str = Query(..., max_length=66)) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        if (t := task_id(task)) is None:
            return JSONResponse(
                {"error": "BadRequest", "reason": "task must be 0x and 64 hex digits"}, status_code=400
            )
        try:
            return JSONResponse(dash.report(t))
        except DeaiError as exc:
            return JSONResponse({"error": type(exc).__name__, "reason": str(exc)}, status_code=404)

    return dash

"""The dashboard's HTML: one render function per page, from the page's JSON-ready data.

Everything shown is escaped (:func:`html.escape`); charts are inline SVG; the page loads one
script, ``/dashboard/app.js`` (:data:`SCRIPT`), that re-reads the page's content every few
seconds. See :mod:`deai.node.hub.dashboard` for the pages and their data.
"""

from __future__ import annotations

import html
from typing import Any

__all__ = [
    "SCRIPT",
    "page",
    "render_inference",
    "render_ledger",
    "render_network",
    "render_participants",
    "render_task",
    "render_tasks",
]

# Re-reads the page's content (``?fragment=1``) every few seconds while the tab is visible.
SCRIPT = """(function () {
  var main = document.getElementById("main");
  function poll() {
    if (document.hidden) return;
    var url = new URL(window.location.href);
    url.searchParams.set("fragment", "1");
    fetch(url.toString(), {cache: "no-store"}).then(function (r) {
      return r.ok ? r.text() : null;
    }).then(function (text) {
      if (text !== null && text !== main.innerHTML) main.innerHTML = text;
    }).catch(function () {});
  }
  window.setInterval(poll, 3000);
})();
"""


# -- HTML -------------------------------------------------------------------------------------------

_NAV: tuple[tuple[str, str], ...] = (
    ("/dashboard/", "network"),
    ("/dashboard/tasks", "tasks"),
    ("/dashboard/participants", "participants"),
    ("/dashboard/ledger", "ledger"),
    ("/dashboard/inference", "inference"),
)
_STYLE = """body{font-family:system-ui,sans-serif;margin:0;color:#222}header{background:#1c2833;color:#fff;
padding:.6em 1.2em}header a{color:#cde;margin-right:1.2em;text-decoration:none}header a.on{color:#fff;
font-weight:bold}main{padding:1em 1.2em;max-width:1200px}table{border-collapse:collapse;margin:.5em 0 1.2em}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:13px;vertical-align:top}
th{background:#f3f3f3}.bad{color:#b00}.ok{color:#070}code{font-size:12px}svg{background:#fafafa;
border:1px solid #ddd;margin-right:1em}small{color:#666}"""


def _e(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def _short(a: str | None) -> str:
    return "—" if not a else html.escape(a[:10] + "..")


def _table(head: list[str], rows: list[list[str]], id_: str = "") -> str:
    ths = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    empty = "" if rows else f'<tr><td colspan="{len(head)}"><small>none yet</small></td></tr>'
    return f'<table id="{id_}"><tr>{ths}</tr>{trs}{empty}</table>'


def _kv(pairs: list[tuple[str, str]], id_: str = "") -> str:
    return _table(["", ""], [[html.escape(k), v] for k, v in pairs], id_).replace(
        "<tr><th></th><th></th></tr>", ""
    )


def _chart(points: list[tuple[int, float]], title: str, *, unit_range: bool = False) -> str:
    """An inline SVG line chart of ``points`` (round, value)."""
    w, h, pad = 360, 180, 30
    pts = [(x, y) for x, y in points if y == y]  # drop NaN
    if not pts:
        text = f"{html.escape(title)}: no rounds yet"
        return f'<svg width="{w}" height="{h}"><text x="10" y="20">{text}</text></svg>'
    xs, ys = [x for x, _ in pts], [y for _, y in pts]
    lo, hi = (0.0, 1.0) if unit_range else (min(ys), max(ys))
    hi = hi if hi > lo else lo + 1
    x0, x1 = min(xs), max(max(xs), min(xs) + 1)

    def xy(x: float, y: float) -> tuple[str, str]:
        return (
            f"{pad + (x - x0) / (x1 - x0) * (w - 2 * pad):.1f}",
            f"{h - pad - (y - lo) / (hi - lo) * (h - 2 * pad):.1f}",
        )

    line = " ".join(",".join(xy(x, y)) for x, y in pts)
    dots = "".join(f'<circle cx="{cx}" cy="{cy}" r="3"/>' for cx, cy in (xy(x, y) for x, y in pts))
    return (
        f'<svg class="chart" width="{w}" height="{h}" role="img" aria-label="{html.escape(title)}">'
        f'<text x="{pad}" y="16" font-size="12">{html.escape(title)}</text>'
        f'<text x="2" y="{pad + 4}" font-size="10">{hi:.3g}</text>'
        f'<text x="2" y="{h - pad}" font-size="10">{lo:.3g}</text>'
        f'<text x="{w // 2}" y="{h - 6}" font-size="10">round</text>'
        f'<polyline fill="none" stroke="#1971c2" stroke-width="2" points="{line}"/>'
        f'<g fill="#1971c2">{dots}</g></svg>'
    )


def _verify_text(v: dict[str, Any]) -> str:
    if v.get("ok") is None:
        return "<span>checking…</span>"
    if v["ok"]:
        return f'<span class="ok">verified</span> <small>({v["entries"]} entries, {v["age_s"]} s ago)</small>'
    return f'<span class="bad">NOT verified: {_e(v.get("problem"))}</span>'


def render_network(d: dict[str, Any]) -> str:
    pairs = [
        ("network", _e(d["network"])),
        ("coordinator", f"<code>{_e(d['coordinator'])}</code>"),
        ("ledger head", f"height {d['head']['height']}, <code>{_short(d['head']['hash'])}</code>"),
        ("ledger", _verify_text(d["verification"])),
        ("supply", ", ".join(f"{_e(k)} {_e(v)}" for k, v in d["supply"].items())),
        ("tasks", ", ".join(f"{_e(k)} {v}" for k, v in d["tasks"].items()) or "none"),
        ("tasks refused", _e(d["rejected"])),
        ("inference requests", _e(d["inference_requests"])),
    ]
    roles = _table(
        ["role", "staked accounts"], [[_e(r), _e(n)] for r, n in d["participants"].items()], "roles"
    )
    return f"<h2>Network</h2>{_kv(pairs, 'network')}<h3>Participants per role</h3>{roles}"


def render_tasks(d: dict[str, Any]) -> str:
    rows = [
        [
            f'<a href="/dashboard/tasks/{_e(t["task"])}">{_short(t["task"])}</a>',
            _e(t["phase"]),
            f"{t['round']}/{t['rounds']}",
            _e(t["members"]),
            _e(t["accuracy"]),
            _e(t["loss"]),
            _short(t["model"]),
            _e(t["reason"]),
        ]
        for t in d["tasks"]
    ]
    head = ["task", "phase", "round", "members", "val. accuracy", "val. loss", "model", "reason"]
    refused = _table(
        ["task", "why refused"], [[_short(t), _e(w)] for t, w in d["rejected"].items()], "refused"
    )
    return f"<h2>Tasks</h2>{_table(head, rows, 'tasks')}<h3>Refused</h3>{refused}"


def render_task(d: dict[str, Any]) -> str:
    hist = d["history"]
    charts = _chart([(r["round"], r["accuracy"]) for r in hist], "validation accuracy", unit_range=True)
    charts += _chart([(r["round"], r["loss"]) for r in hist], "validation loss")
    rows = [
        [
            _e(r["round"]),
            _e(r["accuracy"]),
            _e(r["loss"]),
            _e(r["contributors"]),
            _e(len(r["faulted"])),
            _e(r["payout"]),
            _e(r["defense"]),
        ]
        for r in hist
    ]
    head = ["round", "val. accuracy", "val. loss", "contributors", "faulted", "payout", "defense"]
    pairs = [
        ("task", f"<code>{_e(d['task'])}</code>"),
        ("phase", _e(d["phase"])),
        ("round", f"{d['round']}/{d['rounds']}"),
        ("members", _e(d["members"])),
        ("model", f"<code>{_e(d['model'])}</code>"),
        ("epsilon", _e(d["epsilon"])),
        ("reason", _e(d["reason"])),
    ]
    return (
        f"<h2>Task</h2>{_kv(pairs, 'task')}<div>{charts}</div><h3>Rounds</h3>{_table(head, rows, 'rounds')}"
    )


def _earned(roles: list[dict[str, Any]]) -> str:
    parts = []
    for r in roles:
        src = ", ".join(f"{_e(k)} {v}" for k, v in r["earned"].items() if v)
        if src:
            parts.append(f"{_e(r['role'])}: {src}")
    return "<br>".join(parts) or "—"


def _slashes(roles: list[dict[str, Any]]) -> str:
    parts = [
        f"{_e(r['role'])} −{r['slashed']}: " + "; ".join(_e(x) for x in r["reasons"])
        for r in roles
        if r["slashed"]
    ]
    return '<span class="bad">' + "<br>".join(parts) + "</span>" if parts else "—"


def render_participants(d: dict[str, Any]) -> str:
    rows = [
        [
            f"<code>{_e(p['account'])}</code>",
            _e(p["balance"]),
            ", ".join(f"{_e(r)} {s}" for r, s in p["stakes"].items()) or "—",
            _e(p["earned"]),
            _earned(p["roles"]),
            _slashes(p["roles"]),
            ", ".join(f"{_e(r)} {v}" for r, v in p["reputation"].items()) or "—",
        ]
        for p in d["accounts"]
    ]
    head = ["account", "balance", "stakes", "earned", "earned by source", "slashed (why)", "reputation"]
    nav = _pager("/dashboard/participants", d["page"], d["pages"])
    return f"<h2>Participants</h2>{_table(head, rows, 'participants')}{nav}"


def _pager(path: str, page: int, pages: int) -> str:
    links = []
    if page > 0:
        links.append(f'<a href="{path}?page={page - 1}">previous</a>')
    if page + 1 < pages:
        links.append(f'<a href="{path}?page={page + 1}">next</a>')
    return f"<p>page {page + 1} of {pages} {' '.join(links)}</p>"


def render_ledger(d: dict[str, Any]) -> str:
    rows = []
    for e in d["events"]:
        data = ", ".join(
            f"{_e(k)}={_e(v if not isinstance(v, list) or len(v) < 4 else f'{len(v)} items')}"
            for k, v in e["data"].items()
        )
        rows.append([_e(e["seq"]), _e(e["height"]), _e(e["kind"]), f"<small>{data[:600]}</small>"])
    more = (
        f'<p><a href="/dashboard/ledger?before={d["next_before"]}">older</a></p>' if d["next_before"] else ""
    )
    table = _table(["seq", "height", "event", "data"], rows, "events")
    return f'<h2>Ledger</h2><p id="verification">{_verify_text(d["verification"])}</p>{table}{more}'


def render_inference(d: dict[str, Any]) -> str:
    rows = [
        [
            _short(j["job"]),
            _short(j["model"]),
            _short(j["creator"]),
            _e(j["fee"]),
            _e(j["status"]),
            _e(j["verified"]),
            _e(f"{len(j['accepted'])}/{len(j['faulted'])}/{len(j['missed'])} of {j['executors']}"),
        ]
        for j in d["jobs"]
    ]
    head = ["job", "model", "user", "fee", "status", "verification", "hosts ok/faulted/missed"]
    note = "<p><small>one row per attempt: a request whose first attempt fails is escalated</small></p>"
    return f"<h2>Inference requests ({d['requests']} jobs)</h2>{note}{_table(head, rows, 'inference')}"


def page(title: str, active: str, body: str) -> str:
    nav = "".join(f'<a href="{h}" class="{"on" if n == active else ""}">{n}</a>' for h, n in _NAV)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>deai — {html.escape(title)}</title>
<style>{_STYLE}</style></head><body><header><b>deai hub</b> &nbsp; {nav}</header>
<main id="main">{body}</main><script src="/dashboard/app.js"></script></body></html>"""

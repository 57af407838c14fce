"""Run reports: ``report.json`` for scripts and ``report.html`` for people.

:func:`validate_report` checks that a report dict carries the keys every consumer relies on
(see ``docs/scenarios.md``; ``traffic``, bytes per role, is checked when present);
:func:`write_report` writes both files. The HTML page is
self-contained (plots are embedded PNGs), so it can be mailed or archived as one file. It shows
the final model's test accuracy (held-out test set) apart from the validation accuracy and loss
per round (the coordinator's validation set), earnings by participant coloured by behaviour and
by source, slashes (stake lost for cheating or a failed accepted duty) with their reasons and,
apart from them, missed jobs (drawn, never committed to: no stake lost), and the privacy budget
(epsilon) per round. Figures are the ledger's (:func:`deai.sim.accounting.earnings`, the same
statement as ``deai incentives report`` and the hub's dashboard); a missing value shows as "—".
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from deai.core.errors import DeaiError

__all__ = ["REQUIRED_KEYS", "TRAFFIC_KEYS", "ReportError", "validate_report", "write_report"]

REQUIRED_KEYS: dict[str, type | tuple[type, ...]] = {
    "test_accuracy": (int, float),
    "rounds_completed": int,
    "epsilon": (int, float, type(None)),
    "participants": list,
    "inference": dict,
    "bytes_sent": int,
    "wall_seconds": (int, float),
    "ledger_verified": bool,
}
PARTICIPANT_KEYS = ("address", "role", "behaviour", "earned", "slashed", "score")
# Shown apart from the slashes: jobs a participant was drawn for and never committed to (a
# liveness fault that costs no stake). Optional in a report (older reports lack it).
COLUMNS = (
    "address",
    "role",
    "behaviour",
    "earned",
    "earned_by",
    "slashed",
    "slash_reasons",
    "missed",
    "score",
)
HEADERS = {"earned_by": "earned by source", "slash_reasons": "why slashed", "score": "contribution score"}
INFERENCE_KEYS = ("requests", "answered", "correct")
# A report's ``traffic`` (optional: older reports lack it): per role, these counters.
TRAFFIC_KEYS = ("sent", "received", "blob_sent", "blob_received", "requests")


class ReportError(DeaiError):
    """A report lacks a key its consumers rely on."""


def validate_report(report: dict[str, Any]) -> None:
    for key, typ in REQUIRED_KEYS.items():
        if key not in report:
            raise ReportError(f"report is missing {key!r}")
        if not isinstance(report[key], typ) or (isinstance(report[key], bool) and typ is not bool):
            raise ReportError(f"report key {key!r} has type {type(report[key]).__name__}")
    for i, p in enumerate(report["participants"]):
        missing = [k for k in PARTICIPANT_KEYS if k not in p]
        if missing:
            raise ReportError(f"participants[{i}] is missing {missing}")
    missing = [k for k in INFERENCE_KEYS if k not in report["inference"]]
    if missing:
        raise ReportError(f"inference is missing {missing}")
    if "traffic" in report:
        _validate_traffic(report["traffic"])


def _validate_traffic(traffic: Any) -> None:
    """``traffic.roles``: role -> counters (non-negative integers); ``per_round`` a list."""
    if not isinstance(traffic, dict) or not isinstance(traffic.get("roles"), dict):
        raise ReportError("traffic must be an object with a 'roles' object")
    if not isinstance(traffic.get("per_round", []), list):
        raise ReportError("traffic.per_round must be a list")
    for role, counts in traffic["roles"].items():
        if not isinstance(counts, dict):
            raise ReportError(f"traffic.roles[{role!r}] must be an object")
        for k in TRAFFIC_KEYS:
            v = counts.get(k)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ReportError(f"traffic.roles[{role!r}].{k} must be a non-negative integer")


_COLOURS = ["#2b8a3e", "#c92a2a", "#e67700", "#5f3dc4", "#1971c2", "#d6336c", "#0b7285", "#5c940d"]


def _png(fig: plt.Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _num(v: Any) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else float("nan")


def _plots(report: dict[str, Any]) -> dict[str, str]:
    plots = {}
    rounds = report.get("rounds", [])
    if rounds:
        fig, ax = plt.subplots(figsize=(6, 3.2))
        xs = [r["round"] for r in rounds]
        ax.plot(xs, [_num(r.get("accuracy")) for r in rounds], marker="o")
        ax.set(
            xlabel="round", ylabel="validation accuracy", title="Validation accuracy per round", ylim=(0, 1)
        )
        ax.grid(alpha=0.3)
        plots["validation accuracy"] = _png(fig)
        if any(r.get("loss") is not None for r in rounds):
            fig, ax = plt.subplots(figsize=(6, 3.2))
            ax.plot(xs, [_num(r.get("loss")) for r in rounds], marker="o", color="#c92a2a")
            ax.set(xlabel="round", ylabel="validation loss", title="Validation loss per round")
            ax.grid(alpha=0.3)
            plots["validation loss"] = _png(fig)
        eps = [r.get("epsilon") for r in rounds]
        if any(e is not None for e in eps):
            fig, ax = plt.subplots(figsize=(6, 3.2))
            ax.plot(
                [r["round"] for r in rounds], [e if e is not None else float("nan") for e in eps], marker="o"
            )
            ax.set(xlabel="round", ylabel="epsilon (delta fixed)", title="Privacy budget spent")
            ax.grid(alpha=0.3)
            plots["epsilon"] = _png(fig)
    people = report["participants"]
    if people:
        behaviours = sorted({p["behaviour"] for p in people}, key=lambda b: (b != "honest", b))
        colour = {b: _COLOURS[i % len(_COLOURS)] for i, b in enumerate(behaviours)}
        fig, axes = plt.subplots(1, 2, figsize=(11, 0.28 * len(people) + 1.5), sharey=True)
        labels = [f"{p['role'][:7]} {p['address'][:8]}" for p in people]
        for ax, key, title in ((axes[0], "earned", "Earned"), (axes[1], "slashed", "Slashed")):
            ax.barh(labels, [p[key] for p in people], color=[colour[p["behaviour"]] for p in people])
            ax.set(title=title)
            ax.invert_yaxis()
        handles = [plt.Rectangle((0, 0), 1, 1, color=colour[b]) for b in behaviours]
        fig.legend(handles, behaviours, loc="lower center", ncol=min(4, len(behaviours)), frameon=False)
        fig.subplots_adjust(bottom=0.15)
        plots["earnings"] = _png(fig)
    return plots


def _html(report: dict[str, Any], plots: dict[str, str]) -> str:
    esc = html.escape
    summary = [
        ("scenario", report.get("scenario", "")),
        ("test accuracy (final model, held-out test set)", f"{report['test_accuracy']:.4f}"),
        *(
            [("validation accuracy (last round)", f"{_num(report['rounds'][-1].get('accuracy')):.4f}")]
            if report.get("rounds")
            else []
        ),
        ("rounds completed", report["rounds_completed"]),
        ("defense", report.get("defense", "")),
        ("epsilon", "none (no DP)" if report["epsilon"] is None else f"{report['epsilon']:.3f}"),
        ("inference", "{answered}/{requests} answered, {correct} correct".format(**report["inference"])),
        ("bytes sent", f"{report['bytes_sent']:,}"),
        *(
            (f"traffic: {role}", f"sent {t['sent']:,} B, received {t['received']:,} B")
            for role, t in report.get("traffic", {}).get("roles", {}).items()
        ),
        ("wall time", f"{report['wall_seconds']:.1f} s"),
        ("ledger verified", "yes" if report["ledger_verified"] else "NO"),
    ]
    rows = "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>" for k, v in summary)

    def cell(p: dict[str, Any], k: str) -> str:
        v = p.get(k, 0 if k == "missed" else None)
        if isinstance(v, dict):
            text = ", ".join(f"{s} {n}" for s, n in v.items() if n) or "—"
        elif isinstance(v, list):
            text = "; ".join(map(str, v)) or "—"
        elif v is None or v == "":
            text = "—"
        else:
            text = str(round(v, 4) if isinstance(v, float) else v)
        return f"<td>{esc(text)}</td>"

    people = "".join("<tr>" + "".join(cell(p, k) for k in COLUMNS) + "</tr>" for p in report["participants"])
    figures = "".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,{data}"></figure>'
        for name, data in plots.items()
    )
    head = "".join(f"<th>{esc(HEADERS.get(k, k))}</th>" for k in COLUMNS)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>deai report — {esc(str(report.get("scenario", "")))}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:13px}}img{{max-width:100%}}</style>
</head><body><h1>deai run report</h1><table>{rows}</table><h2>Plots</h2>{figures}
<h2>Participants</h2><table><tr>{head}</tr>{people}</table></body></html>
"""


def write_report(report: dict[str, Any], out: str | Path) -> tuple[Path, Path]:
    """Validate ``report`` and write ``out/report.json`` and ``out/report.html``."""
    validate_report(report)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / "report.json", out / "report.html"
    json_path.write_text(json.dumps(report, indent=2, sort_keys=True))
    html_path.write_text(_html(report, _plots(report)))
    return json_path, html_path

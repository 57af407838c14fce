"""Bytes per role in a run's report: counted on the transport, consistent with what the roles did
(providers upload one update per round each, the hub mirrors everyone), the same payload over HTTP,
and smaller updates under compression."""

from pathlib import Path

import pytest
import yaml

from deai.learn.compression import get_compressor
from deai.net.links import Link
from deai.sim.report import ReportError, validate_report, write_report
from deai.sim.runner import run_scenario
from deai.sim.scenario import parse_scenario

ROOT = Path(__file__).resolve().parents[2]


def doc(compression: str = "none", rounds: int = 2) -> dict:
    d = yaml.safe_load((ROOT / "scenarios" / "clean.yaml").read_text())
    d["task"] = {**d["task"], "rounds": rounds, "compression": compression}
    d["inference"] = {**d["inference"], "requests": 0}
    return d


def training_rows(report: dict) -> list[dict]:
    return [r for r in report["traffic"]["per_round"] if r["roles"]["data_provider"]["blob_sent"] > 0]


def test_memory_report_counts_bytes_per_role(tmp_path):
    link = Link(up_mbit=10, down_mbit=100, latency_ms=30)
    report = run_scenario(parse_scenario(doc()), tmp_path, transport="memory", link=link)
    write_report(report, tmp_path)  # validates traffic too
    roles = report["traffic"]["roles"]
    assert {"data_provider", "compute_provider", "creator", "hub"} <= set(roles)
    # the hub receives what everyone sends and sends what everyone receives
    others = [t for r, t in roles.items() if r != "hub"]
    for a, b in (("received", "sent"), ("sent", "received"), ("blob_received", "blob_sent")):
        assert roles["hub"][a] == sum(t[b] for t in others)
    n = roles["data_provider"]["accounts"]
    rows = training_rows(report)
    assert len(rows) == 2  # one upload interval per training round
    sizes = {r["roles"]["data_provider"]["blob_sent"] for r in rows}
    assert len(sizes) == 1 and next(iter(sizes)) % n == 0  # n updates of one fixed size per round
    # each round the providers' daemon downloads the new checkpoint and spends time training
    assert all(r["roles"]["data_provider"]["blob_received"] > 0 for r in rows)
    assert all(r["roles"]["data_provider"]["busy_seconds"] > 0 for r in rows)
    # the link's seconds follow the counts (latency per request + bytes over up/down)
    dp = roles["data_provider"]
    assert dp["link_seconds"] <= link.transfer_s(dp["sent"], dp["received"], dp["requests"]) + 1e-9
    assert dp["link_seconds"] > 0 and report["traffic"]["link"]["up_mbit"] == 10


def test_compression_shrinks_the_uplink_not_the_checkpoint(tmp_path):
    dense = run_scenario(parse_scenario(doc()), tmp_path / "d", transport="memory")
    spec = "topk(ratio=0.05)+int8"
    comp = run_scenario(parse_scenario(doc(spec)), tmp_path / "c", transport="memory")
    up = [training_rows(r)[0]["roles"]["data_provider"]["blob_sent"] for r in (dense, comp)]
    down = [training_rows(r)[-1]["roles"]["data_provider"]["blob_received"] for r in (dense, comp)]
    assert up[1] * 4 < up[0]  # well under a quarter of the dense float32 update
    assert down[0] == down[1]  # the downlink is the dense checkpoint either way
    assert get_compressor(spec).spec.startswith("topk")


def test_report_validation_refuses_malformed_traffic(tmp_path):
    report = run_scenario(parse_scenario(doc(rounds=1)), tmp_path, transport="memory")
    validate_report(report)
    bad = {**report, "traffic": {"roles": {"hub": {"sent": -1}}}}
    with pytest.raises(ReportError):
        validate_report(bad)
    with pytest.raises(ReportError):
        validate_report({**report, "traffic": []})


@pytest.mark.slow
def test_http_daemons_report_the_same_update_bytes(tmp_path):
    """Over HTTP each daemon writes its client counters; the providers' update bytes equal the
    memory run's (same task, same updates), and their downloads are one checkpoint per daemon."""
    memory = run_scenario(parse_scenario(doc()), tmp_path / "m", transport="memory")
    http = run_scenario(parse_scenario(doc()), tmp_path / "h", transport="http")
    m, h = (r["traffic"]["roles"]["data_provider"] for r in (memory, http))
    assert m["blob_sent"] == h["blob_sent"] > 0
    assert h["clients"] >= 1 and h["blob_received"] / h["clients"] == m["blob_received"] / m["clients"]
    assert http["traffic"]["roles"]["compute_provider"]["sent"] > 0

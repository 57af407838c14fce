"""The hub's dashboard in a real browser, against a running network of processes: a hub, a
data-provider daemon, a compute daemon with one cheater (always caught, slashed) and a finished task."""

import json
import re


def test_network_page(running, tab):
    net, _task, _ = running
    text = tab.open(net.url + "/")  # the hub's root is the dashboard
    assert "deai-db" in text and "ledger head" in text
    assert re.search(r"compute_provider\s+3", text) and re.search(r"data_provider\s+4", text)
    tab.page.wait_for_selector("table#network span.ok", timeout=20_000)  # the ledger verified (polled)
    assert "NOT verified" not in tab.page.inner_text("main")
    assert tab.errors == []


def test_tasks_and_rounds(running, tab):
    net, task, _cheaters = running
    text = tab.open(net.url + "/dashboard/tasks")
    assert task[:10] in text and "done" in text and "2/2" in text
    tab.page.click(f"a[href='/dashboard/tasks/{task}']")
    tab.page.wait_for_selector("table#rounds")
    rows = tab.page.locator("table#rounds tr").all_inner_texts()
    assert len(rows) == 3 and rows[1].startswith("1") and rows[2].startswith("2")
    charts = tab.page.locator("svg.chart")
    assert charts.count() == 2 and tab.page.locator("svg.chart circle").count() == 4  # 2 rounds x 2 curves
    assert "validation accuracy" in tab.page.inner_text("main") and tab.errors == []


def test_participants_show_earnings_and_slash_reasons(running, tab):
    net, _, cheaters = running
    tab.open(net.url + "/dashboard/participants")
    row = tab.page.locator("table#participants tr", has_text=cheaters[0]).inner_text()
    assert "wrong result" in row and "compute_provider" in row
    assert tab.page.locator("table#participants tr").count() >= 1 + 7  # 4 providers, 3 computes
    assert "payouts" in tab.page.inner_text("table#participants") and tab.errors == []


def test_ledger_and_inference_pages(running, tab):
    net, _task, _ = running
    text = tab.open(net.url + "/dashboard/ledger")  # the newest events first, a page at a time
    assert "claimed" in text and "job_resolved" in text and "verified" in text
    pages = [text]
    while "task_created" not in pages[-1]:
        assert len(pages) < 10, "no task_created event on any page"
        tab.page.click("text=older")
        tab.page.wait_for_load_state()
        pages.append(tab.page.inner_text("main"))
    assert "slashed" in "".join(pages)
    text = tab.open(net.url + "/dashboard/inference")
    assert "Inference requests (0 jobs)" in text and "none yet" in text
    assert tab.errors == []


def test_pages_refresh_without_reload(running, tab):
    """The page's script re-reads its content: a marker put into the page disappears."""
    net, _, _ = running
    tab.open(net.url + "/dashboard/tasks")
    tab.page.evaluate("document.getElementById('main').innerHTML = '<p>stale</p>'")
    tab.page.wait_for_selector("table#tasks", timeout=10_000)
    assert tab.errors == []


def test_logs_tell_what_happened(running):
    """hub.log and each node.log: one line per event, slashes with their reason, no traceback."""
    net, task, cheaters = running
    hub_log = (net.root / "hub" / "hub.log").read_text()
    assert re.search(rf"INFO hub task.round task={task} round=2 accuracy=", hub_log)
    assert re.search(rf'WARNING hub slashed .*account={cheaters[0]} .*reason="wrong result"', hub_log)
    assert re.search(r"INFO endpoint accepted type=ledger.submit sender=0x", hub_log)
    data_log = (net.root / "data" / "node.log").read_text()
    for action in ("join_task", "update", "claim", "leave_task"):
        assert re.search(rf"INFO node {action} .*task={task}", data_log), action
    compute_log = (net.root / "compute" / "node.log").read_text()
    assert " INFO node commit " in compute_log and " INFO node reveal " in compute_log
    for text in (hub_log, data_log, compute_log):
        assert "Traceback" not in text


def test_incentives_report_reads_a_running_hub(running):
    """`deai incentives report --hub`: the task's table, JSON and the network's CSV, one earned
    figure per account (the statement's), the cheater's slash with its reason."""
    from typer.testing import CliRunner

    from deai.cli.incentives import app

    net, task, cheaters = running
    run = CliRunner().invoke
    table = run(app, ["report", "--hub", net.url, "--task", task])
    assert table.exit_code == 0, table.output
    assert "claimed" in table.output and "no recorded activity" not in table.output
    report = json.loads(run(app, ["report", "--hub", net.url, "--task", task, "--format", "json"]).output)
    csv = run(app, ["report", "--hub", net.url, "--format", "csv"]).output.splitlines()
    earned = {}
    for line in csv[1:]:
        account, _role, *_, total, slashed, _won, _faulted, _missed, why = line.split(",", 12)
        earned[account] = earned.get(account, 0) + int(total)
        if account == cheaters[0]:
            assert int(slashed) > 0 and "wrong result" in why
    for row in report["accounts"]:
        assert row["earned"] == earned.get(row["account"], 0), row["account"]
    cheat = next(r for r in report["accounts"] if r["account"] == cheaters[0])
    assert "wrong result" in cheat["why"]

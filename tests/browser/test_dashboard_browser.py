"""The hub's dashboard in a real browser, against a running network of processes: a hub, a
data-provider daemon, a compute daemon with one cheater (always caught, slashed) and a finished task."""

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
    assert "Inference requests (0)" in text and "none yet" in text
    assert tab.errors == []


def test_pages_refresh_without_reload(running, tab):
    """The page's script re-reads its content: a marker put into the page disappears."""
    net, _, _ = running
    tab.open(net.url + "/dashboard/tasks")
    tab.page.evaluate("document.getElementById('main').innerHTML = '<p>stale</p>'")
    tab.page.wait_for_selector("table#tasks", timeout=10_000)
    assert tab.errors == []

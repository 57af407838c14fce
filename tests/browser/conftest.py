"""A real headless browser (Playwright driving Debian's chromium) against a running network.

Without chromium the browser tests skip, except under ``CI=true`` where they fail: ``make test``
installs it (the Makefile's ``browser`` target). Each test module starts its own network.
"""

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from deai.core.accounts import Account
from deai.learn.partition import partition
from deai.node.launch.processes import ProcessNetwork
from deai.node.user.submit import make_task, submit_task
from deai.protocol.task.spec import Windows

CHROMIUM = os.environ.get("DEAI_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    """A persistent chromium context on a fresh profile folder (closed after the module)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true, so the browser tests must run, but there is no chromium at {CHROMIUM}")
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="deai-chromium-")
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1200, "height": 800},
        )
        try:
            yield ctx
        finally:
            ctx.close()
            shutil.rmtree(profile, ignore_errors=True)


class Page:
    """A browser tab that records console errors and failed requests."""

    def __init__(self, ctx):
        self.page = ctx.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.errors.append(f"failed {r.url}"))

    def open(self, url: str) -> str:
        response = self.page.goto(url)
        assert response is not None and response.ok, f"{url}: {response.status if response else 'no answer'}"
        return self.page.inner_text("main")


@pytest.fixture
def tab(browser):
    t = Page(browser)
    yield t
    t.page.close()


def wait_task(client, task, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.call("task.status", {"task": task})
        if status["phase"] in ("done", "failed"):
            return status
        time.sleep(0.2)
    raise TimeoutError(f"task still {status['phase']} in round {status['round']}")


def start_task_network(root: Path, splits, *, tag: str, rounds: int = 2, cheaters: int = 1):
    """A hub, a data-provider daemon (4 providers), a compute daemon (3 accounts, ``cheaters`` of
    them uploading fake results) and a finished task. Every job draws all three and every drawn
    executor runs it (``sample_rate`` 1), so the cheater is always caught and slashed.
    Returns (net, task, cheaters)."""
    providers = [Account.from_seed(f"{tag}p", i) for i in range(4)]
    computes = [Account.from_seed(f"{tag}c", i) for i in range(3)]
    creator = Account.from_seed(f"{tag}creator", 0)
    parts = partition(splits.train.y, 4, "iid", seed=0)
    datasets = {p.address: splits.train.subset(parts[i]) for i, p in enumerate(providers)}
    windows = Windows(join_ms=60_000, train_ms=60_000, commit_ms=15_000, reveal_ms=15_000, secagg_ms=15_000)
    recipe = dict(
        rounds=rounds, budget=6_000, min_providers=2, max_providers=4, redundancy=3, sample_rate=1.0
    )
    bundle = make_task(splits.val, windows=windows, **recipe)
    net = ProcessNetwork(root, network=f"deai-{tag}")
    net.start_hub()
    everyone = [a.address for a in [*providers, *computes, creator]] + [net.hub_account.address]
    net.fund(everyone, 100_000)
    fakes = {c.address: "fake_result" for c in computes[:cheaters]}
    net.start_node("data", ["data_provider"], [f"seed:{tag}p:0-3"], data=datasets)
    net.start_node("compute", ["compute_provider"], [f"seed:{tag}c:0-2"], behaviours=fakes)
    client = net.client(creator)
    task = submit_task(client, creator, bundle)
    status = wait_task(client, task)
    assert status["phase"] == "done", status["reason"]
    return net, task, list(fakes)


@pytest.fixture(scope="module")
def running(tmp_path_factory, digits):
    """A finished task on a running network (module-scoped): (net, task id, cheating accounts)."""
    net, task, cheaters = start_task_network(tmp_path_factory.mktemp("dash"), digits, tag="db")
    try:
        yield net, task, cheaters
    finally:
        net.stop()

"""``deai selfcheck``: exercise this machine's foundation for real and report what happened.

Accounts and encrypted keystores, signed envelopes and every way the verifier refuses a bad one,
the content-addressed blob store (including a corrupted blob being caught), and a model
checkpoint's safetensors round trip — a quick check that an installation works before joining a
network.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import typer
from rich.table import Table

from deai.cli.common import console
from deai.core.accounts import Account
from deai.core.blobs import BlobStore
from deai.core.envelope import Envelope, EnvelopeVerifier, ReplayCache
from deai.core.errors import BlobCorrupted, EnvelopeError
from deai.core.tensorio import flatten, from_safetensors, tensor_digest, to_safetensors, unflatten

NETWORK = "deai-selfcheck"


def selfcheck(
    out: Path = typer.Option(Path("runs/selfcheck"), "--out", help="Folder for the check's files."),
    seed: int = typer.Option(0, "--seed", help="Seed of every account and model in the run."),
    participants: int = typer.Option(8, "--participants", min=2, max=10_000),
) -> None:
    """Check accounts, envelopes, blobs and tensor I/O on this machine; print what happened."""
    out.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str]] = []
    t0 = time.perf_counter()

    # 1. Accounts: deterministic from the seed; one round-trips through an encrypted keystore.
    accounts = [Account.from_seed(seed, i) for i in range(participants)]
    path = accounts[0].save(out / "keys" / f"{accounts[0].address}.json", password="demo")
    assert Account.load(path, "demo").address == accounts[0].address
    rows.append(("accounts", f"{participants} created; keystore round trip OK ({path.name})"))

    # 2. Signed envelopes: every participant announces itself; the hub verifies each one.
    cache = ReplayCache(out / "replay.sqlite")
    hub = EnvelopeVerifier(NETWORK, {"hello", "update"}, replay_cache=cache)
    envelopes = [
        Envelope.seal(a, "hello", {"index": i, "seed": seed}, NETWORK) for i, a in enumerate(accounts)
    ]
    accepted = sum(bool(hub.verify(e.to_bytes())) for e in envelopes)
    rows.append(("envelopes", f"{accepted}/{len(envelopes)} signed envelopes verified"))

    # 3. The verifier's refusals, each with its own reason.
    good = Envelope.seal(accounts[1], "update", {"round": 1}, NETWORK)
    tampered = bytearray(good.to_bytes())
    tampered[tampered.index(b'"round":1') + 8] = ord("2")
    attacks = {
        "tampered body": bytes(tampered),
        "wrong network": Envelope.seal(accounts[1], "update", {}, "other-net").to_bytes(),
        "stale timestamp": Envelope.seal(accounts[1], "update", {}, NETWORK, timestamp=1).to_bytes(),
        "unknown type": Envelope.seal(accounts[1], "mint", {}, NETWORK).to_bytes(),
        "replay": envelopes[2].to_bytes(),
    }
    for name, raw in attacks.items():
        try:
            hub.verify(raw)
            rows.append((f"refuse: {name}", "[red]ACCEPTED (bug)[/]"))
        except EnvelopeError as exc:
            rows.append((f"refuse: {name}", f"[green]{type(exc).__name__}[/]: {exc}"))

    # 4. A model checkpoint through the blob store.
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    store = BlobStore(out / "blobs")
    digest = store.put(to_safetensors(model.state_dict()))
    restored = from_safetensors(store.get(digest))
    same = tensor_digest(restored) == tensor_digest(model.state_dict())
    vec, spec = flatten(restored)
    back = unflatten(vec, spec)
    rows.append(("checkpoint", f"blob {digest[:16]}…, {vec.numel()} params, bit-exact={same}"))
    rows.append(("flatten", f"restored bit-exact={tensor_digest(back) == tensor_digest(restored)}"))

    # 5. A corrupted copy on disk is caught, quarantined and never served.
    bad = store.put(b"a blob that will rot" * 100)
    rotten = bytearray(store.path(bad).read_bytes())
    rotten[7] ^= 0xFF
    store.path(bad).write_bytes(bytes(rotten))
    try:
        store.get(bad)
        rows.append(("corrupted blob", "[red]SERVED (bug)[/]"))
    except BlobCorrupted as exc:
        rows.append(("corrupted blob", f"[green]BlobCorrupted[/]: quarantined {str(exc)[:60]}…"))

    table = Table(title=f"deai selfcheck — network {NETWORK!r}, seed {seed}", show_lines=False)
    table.add_column("step")
    table.add_column("result")
    for step, result in rows:
        table.add_row(step, result)
    console.print(table)
    console.print(f"done in {time.perf_counter() - t0:.2f}s; files in {out}/")

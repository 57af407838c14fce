"""``deai blob put|get|verify``: the content-addressed store in ``$DEAI_HOME/blobs``."""

from __future__ import annotations

from pathlib import Path

import typer

from deai.cli.common import console, deai_home
from deai.core.blobs import BlobStore
from deai.core.errors import DeaiError

app = typer.Typer(help="Put, get and verify content-addressed blobs.", no_args_is_help=True)

StoreDir = typer.Option(None, "--store", help="Blob store folder (default: $DEAI_HOME/blobs).")


def _store(store: Path | None) -> BlobStore:
    return BlobStore(store if store is not None else deai_home() / "blobs")


@app.command("put")
def put(path: Path = typer.Argument(..., exists=True, dir_okay=False), store: Path | None = StoreDir) -> None:
    """Store a file; print its SHA-256 address."""
    digest = _store(store).put_file(path)
    console.print(digest, highlight=False)


@app.command("get")
def get(
    digest: str,
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the blob."),
    store: Path | None = StoreDir,
    hub: str | None = typer.Option(
        None, "--hub", help="Download it from a running hub instead (re-hashed here before it is written)."
    ),
) -> None:
    """Write a blob to a file, verified (a corrupted blob is refused and quarantined)."""
    if hub is not None:
        from deai.cli.common import connect

        data = connect(hub).get_blob(digest.removeprefix("0x"))  # the client re-hashes what it gets
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(out)
        console.print(f"wrote {out} ({len(data):,} bytes from {hub})")
        return
    try:
        _store(store).copy_to(digest, out)
    except DeaiError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"wrote {out}")


@app.command("verify")
def verify(
    digest: str | None = typer.Argument(None, help="One blob to check; all when omitted."),
    store: Path | None = StoreDir,
) -> None:
    """Re-hash blobs; report (and quarantine) any whose bytes no longer match their address."""
    bs = _store(store)
    try:
        if digest is not None:
            n, bad = 1, ([] if bs.verify(digest) else [digest])
        else:
            n, bad = bs.verify_all()
    except DeaiError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    for d in bad:
        console.print(f"[red]corrupted[/] {d} (quarantined)")
    console.print(f"{n} blob(s) checked, {len(bad)} corrupted")
    if bad:
        raise typer.Exit(1)

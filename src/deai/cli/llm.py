"""``deai llm``: tools for verified LLM serving.

``deai llm calibrate`` runs honest generations under the variation a network sees and fits the
verification thresholds with a stated false-positive bound (``docs/llm-serving.md``).
"""

from __future__ import annotations

from pathlib import Path

import typer

from deai.cli.errors import UsageError

__all__ = ["app"]

app = typer.Typer(add_completion=False, help="Verified LLM serving: calibration.")


@app.callback()
def llm() -> None:
    """Verified LLM serving (a group, so that more tools can join ``calibrate``)."""


@app.command()
def calibrate(
    model: str = typer.Option("smollm2-135m-instruct", "--model", help="A pretrained base name, or 'tiny'."),
    out: Path = typer.Option(..., "--out", help="Where to write the thresholds JSON."),
    requests: int = typer.Option(16, "--requests", min=1, max=100_000, help="Honest requests per precision."),
    tokens: int = typer.Option(32, "--tokens", min=1, max=4096, help="New tokens per request."),
    dtypes: str = typer.Option("float32,bfloat16", "--dtypes", help="Precisions to calibrate."),
    margin: float = typer.Option(2.0, "--margin", min=1.0, max=100.0),
    seed: int = typer.Option(0, "--seed", min=0),
) -> None:
    """Fit the thresholds of MODEL from honest runs (threads, batches, KV cache, precisions)."""
    from deai.core.errors import DeaiError
    from deai.protocol.inference.llm.calibrate import main

    argv = ["--model", model, "--out", str(out), "--requests", str(requests), "--tokens", str(tokens)]
    argv += ["--dtypes", dtypes, "--margin", str(margin), "--seed", str(seed)]
    try:
        main(argv)
    except DeaiError as exc:
        raise UsageError(f"cannot calibrate {model!r}: {exc}") from None

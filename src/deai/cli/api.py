"""``deai api``: an OpenAI-compatible API on this machine, each request paid and verified on a network.

Example::

    deai llm calibrate --model smollm2-135m-instruct --out thresholds.json
    deai api --account 0xYOU --hub http://HUB:8700 --thresholds thresholds.json --port 8000
    curl http://127.0.0.1:8000/v1/models

The account signs and pays each request (its keystore password as for every command); see
:mod:`deai.node.user.gateway` for the endpoints and ``docs/llm-serving.md`` for the verification.
"""

from __future__ import annotations

from pathlib import Path

import typer

from deai.cli.common import connect, console, load_account, password_file_option, password_option
from deai.cli.errors import UsageError

__all__ = ["api"]


def _thresholds(specs: list[str]) -> dict:
    from deai.core.errors import DeaiError
    from deai.protocol.inference.llm.verify import ThresholdSet

    out = {}
    for spec in specs:
        model, _, path = spec.rpartition("=") if "=" in spec else ("*", "", spec)
        try:
            out[model or "*"] = ThresholdSet.load(path)
        except (OSError, DeaiError) as exc:
            raise UsageError(f"--thresholds {spec}: {exc} (write one with `deai llm calibrate`)") from None
    if not out:
        raise UsageError("give --thresholds FILE (or MODEL_ID=FILE), written by `deai llm calibrate`")
    return out


def api(
    account: str = typer.Option(
        ..., "--account", help="Who signs and pays: seed:NAME:I, an address, or a keystore."
    ),
    hub: str = typer.Option(..., "--hub", help="The hub's URL, e.g. http://127.0.0.1:8700."),
    thresholds: list[str] = typer.Option(
        [], "--thresholds", help="Calibrated thresholds JSON (MODEL_ID=FILE, or FILE for every model)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=1, max=65535),
    price: int = typer.Option(1, "--price-per-token", min=1, help="Fee per token per accepted host."),
    verifiers: int = typer.Option(2, "--verifiers", min=1, max=8, help="Hosts that check a sampled answer."),
    p: float = typer.Option(0.1, "--p", min=0.0, max=1.0, help="Probability that an answer is checked."),
    dtype: str = typer.Option(
        "float32", "--dtype", help="Precision the hosts compute in (float32, bfloat16)."
    ),
    password: str | None = password_option,
    password_file: Path | None = password_file_option,
) -> None:
    """Serve /v1/models, /v1/chat/completions and /v1/completions (OpenAI-compatible)."""
    from deai.node.user.gateway import GatewayConfig, make_gateway, serve_gateway

    if dtype not in ("float32", "bfloat16"):
        raise UsageError(f"--dtype {dtype!r}: float32 or bfloat16")
    config = GatewayConfig(_thresholds(thresholds), price, verifiers, p, dtype)
    user = load_account(account, password, password_file)
    client = connect(hub, user)
    console.print(f"deai api: http://{host}:{port}/v1 (paying account {user.address}, hub {hub})")
    serve_gateway(make_gateway(client, user, config), host, port)

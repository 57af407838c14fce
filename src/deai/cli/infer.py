"""``deai infer``: one paid, verified inference request to a model registered on a running network.

The input is a ``.npz`` file with an array ``x`` (rows of features, images, or token windows, as the
model's task was trained on; the data providers' ``ADDRESS.npz`` files have this layout) or a
``.npy`` array. ``--rows A:B`` takes a slice. The request is
:func:`deai.node.user.infer.request_inference`: the user signs and pays the job (``--fee`` per
host), staked hosts answer, and the answer is rechecked on the ledger before it is printed.
``--list`` shows the models the hub can serve.

A language model takes ``--prompt TEXT`` instead (with ``--thresholds`` from ``deai llm calibrate``):
one paid generation verified by drawn hosts with probability ``--p``, as ``deai api`` serves it
(:class:`deai.node.user.gateway.Gateway`); ``--chat`` renders the prompt with the model's chat template.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from deai.cli.common import connect, load_account, password_file_option, password_option
from deai.cli.errors import UsageError, did_you_mean

__all__ = ["infer", "pick_model", "read_input"]

MAX_ROWS = 4096  # rows per request


def read_input(path: Path, rows: str | None) -> Any:
    """The array ``x`` of ``path`` (.npz with ``x``, or .npy), sliced by ``rows`` (``A:B``)."""
    import numpy as np

    if not path.is_file():
        raise UsageError(f"no input file at {path} (give a .npz with an array x, or a .npy)")
    try:
        if path.suffix == ".npy":
            x = np.load(path, allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as data:
                x = data["x"] if "x" in data.files else None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path} as .npz or .npy: {exc}") from None
    if x is None:
        raise UsageError(f"{path} holds no array named x")
    if rows is not None:
        lo, sep, hi = rows.partition(":")
        if not sep or not (lo or "0").isdigit() or not (hi or "0").isdigit():
            raise UsageError(f"--rows {rows!r}: give A:B (row A up to, not including, B)")
        x = x[int(lo or 0) : int(hi) if hi else None]
    if x.ndim < 2 or len(x) == 0:
        raise UsageError(f"{path}: x must hold at least one row (shape {tuple(x.shape)})")
    if len(x) > MAX_ROWS:
        raise UsageError(f"{len(x)} rows is more than {MAX_ROWS} per request: pick some with --rows A:B")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise UsageError(f"{path}: x holds NaN or infinite values")
    return x


def pick_model(models: dict[str, Any], wanted: str | None) -> str:
    """The model id: ``wanted`` or a unique prefix of it; the only model when not given."""
    if wanted is None:
        if len(models) == 1:
            return next(iter(models))
        if not models:
            raise UsageError("the hub serves no model yet: a task must finish and register one first")
        raise UsageError(f"the hub serves {len(models)} models; pick one with --model (see --list)")
    match = [m for m in models if m.lower().startswith(wanted.lower())]
    if len(match) == 1:
        return match[0]
    if not match:
        hint = did_you_mean(wanted, models)
        raise UsageError(f"no model {wanted!r} on this hub{hint}; `deai infer --list` lists them")
    raise UsageError(f"--model {wanted!r} matches {len(match)} models; give more of its id")


def infer(
    input: Path | None = typer.Option(None, "--input", "-i", help=".npz with an array x, or .npy."),
    model: str | None = typer.Option(
        None, "--model", help="Model id or a unique prefix (default: the only model)."
    ),
    rows: str | None = typer.Option(None, "--rows", help="A:B, the rows of x to send."),
    account: str | None = typer.Option(
        None, "--account", help="The paying user: address, keystore file or seed:NAME:I."
    ),
    hub: str = typer.Option("http://127.0.0.1:8700", "--hub", help="The hub's URL."),
    fee: int = typer.Option(10, "--fee", min=1, help="Fee per host."),
    hosts: int = typer.Option(3, "--hosts", min=1, help="Hosts that answer (the majority answer wins)."),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds to wait for a verified answer."),
    as_json: bool = typer.Option(False, "--json", help="Print the answer as JSON."),
    list_models: bool = typer.Option(False, "--list", help="List the models the hub serves and exit."),
    prompt: str | None = typer.Option(
        None, "--prompt", help="Text for a language model (instead of --input)."
    ),
    chat: bool = typer.Option(False, "--chat", help="Render --prompt as a user message (chat template)."),
    thresholds: Path | None = typer.Option(
        None, "--thresholds", help="Calibrated thresholds (deai llm calibrate)."
    ),
    max_tokens: int = typer.Option(64, "--max-tokens", min=1, max=1024, help="New tokens at most."),
    temperature: float = typer.Option(0.0, "--temperature", min=0.0, max=2.0, help="0: greedy."),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Sampling seed (default: drawn)."),
    p: float = typer.Option(1.0, "--p", min=0.0, max=1.0, help="Probability that drawn verifiers check it."),
    password: str | None = password_option,
    password_file: Path | None = password_file_option,
) -> None:
    """Pay for one verified inference on a registered model; print the labels, the job and hosts."""
    if list_models:
        models = connect(hub).call("infer.models")["models"]
        for model_id, m in models.items():
            params = m.get("params", {})
            typer.echo(f"{model_id}  {params.get('model', '?')}  classes {params.get('num_classes', '?')}")
        if not models:
            typer.echo("no models served yet")
        return
    if prompt is not None:
        if account is None or thresholds is None:
            raise UsageError("a --prompt needs --account ACCOUNT and --thresholds FILE (deai llm calibrate)")
        user = load_account(account, password, password_file)
        client = connect(hub, user)
        model_id = pick_model(client.call("infer.models")["models"], model)
        _generate(client, user, model_id, prompt, chat, thresholds, max_tokens, temperature, seed, p, as_json)
        return
    if input is None or account is None:
        raise UsageError("give --input FILE and --account ACCOUNT (or --list)")
    x = read_input(input, rows)
    user = load_account(account, password, password_file)
    client = connect(hub, user)
    model_id = pick_model(client.call("infer.models")["models"], model)
    import torch

    from deai.node.user.infer import request_inference

    answer = request_inference(client, user, model_id, torch.from_numpy(x), fee=fee, r=hosts, timeout=timeout)
    out = {
        "model": model_id,
        "labels": answer["labels"].tolist(),
        "job": answer["job"],
        "hosts": answer["hosts"],
        "accepted": answer["accepted"],
        "faulted": answer["faulted"],
        "fee": answer["fee"],
        "latency_s": round(answer["latency_s"], 3),
    }
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    typer.echo(f"model    {model_id}")
    typer.echo(f"labels   {out['labels']}")
    typer.echo(f"job      {answer['job']} (fee {answer['fee']} per host, {out['latency_s']} s)")
    agreed, slashed = len(answer["accepted"]), len(answer["faulted"])
    typer.echo(f"hosts    {agreed} agreed, {slashed} slashed (checked on the ledger)")


def _generate(
    client: Any, user: Any, model_id: str, prompt: str, chat: bool, thresholds: Path,
    max_tokens: int, temperature: float, seed: int | None, p: float, as_json: bool,
) -> None:  # fmt: skip
    """One verified generation through :class:`deai.node.user.gateway.Gateway` (as ``deai api``)."""
    from deai.cli.api import _thresholds
    from deai.node.user.gateway import ApiError, Gateway, GatewayConfig

    gateway = Gateway(client, user, GatewayConfig(_thresholds([str(thresholds)]), p=p), None)
    body: dict[str, Any] = {
        "model": model_id,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "seed": seed,
    }
    if chat:
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    try:
        _, info = gateway.generate(body, chat)
    except ApiError as exc:
        raise UsageError(exc.message) from None
    if as_json:
        typer.echo(json.dumps({"model": model_id, **info}, indent=2))
        return
    typer.echo(info["text"])
    typer.echo(f"-- {info['deai']['verification']} (fee {info['deai']['fee_per_host']} per host)", err=True)

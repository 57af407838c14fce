"""Data providers: local training with the task's privacy settings, as a sans-IO pool.

A :class:`ProviderPool` holds the accounts and private datasets of the data providers that one
process hosts (one in a small deployment, thousands in a simulation). For a round it trains all
of its providers in the roster at once with :func:`deai.learn.federated.local_step` (the providers'
part of a round, the same function the in-process ``run_federated`` loop runs: one vectorized
training call, then the attack step), applies the task's client DP
(clip, and the provider's share of the noise in ``local``/``distributed`` mode) and returns, per
provider, the update blob and its signed :class:`~deai.protocol.task.statements.UpdateStatement`.
With secure aggregation it drives one :class:`~deai.protocol.secagg.client.SecAggClient` per
provider instead, message by message (:meth:`ProviderPool.secagg_start`, :meth:`secagg_handle`).

Compression (``TaskSpec.compression``): after DP, each provider compresses its update through its
own :class:`~deai.learn.compression.ErrorFeedback` residual (kept in memory per task and provider:
what compression drops is sent in later rounds) and uploads the compressed wire form; under secure
aggregation (random-k only) every provider of the round shares one support
(:func:`deai.protocol.task.model.compression_seed`) and masks just its ``k`` values.

Preprocessing (``TaskSpec.preprocessing``): a provider holds its data raw, as it has it; the pool
puts it through the task's declared preprocessing before training (once per task and provider),
the one path simulated and real providers share. Data that does not fit it (another feature
count, token windows under ``standardize``) makes the provider sit the task out, with a warning.

Provider momentum (``TaskSpec.provider_momentum``): each provider's momentum is kept per task
(in memory); the first round -- or a round after this pool lost a member's momentum (a restart)
-- starts every member of the round from its own update.

Seeds: a provider's batch order is seeded by (task, round, address), its DP noise by its own
signature over (task, round) -- reproducible by the provider, unpredictable to everyone else.

Adversarial providers (``behaviours``: names from :mod:`deai.learn.attacks`) poison their data
and/or craft their update from what the pool's honest providers computed (a colluding pool: the
providers of one behaviour craft together, as one :class:`~deai.learn.federated.Collusion`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from deai.core.accounts import Account
from deai.core.encoding import sha256
from deai.core.tensorio import to_safetensors
from deai.learn.compression import TAIL, ErrorFeedback, get_compressor
from deai.learn.compression.errors import CompressionError
from deai.learn.data import Dataset
from deai.learn.errors import DataError
from deai.learn.federated import Collusion, local_step
from deai.learn.strategies import get_strategy
from deai.learn.training import deterministic, get_flat
from deai.protocol.secagg.client import SecAggClient
from deai.protocol.secagg.messages import decode, encode
from deai.protocol.task.model import (
    compression_seed,
    dense_tail,
    load_checkpoint,
    shared_support,
    update_bytes,
)
from deai.protocol.task.secagg_round import secagg_config
from deai.protocol.task.spec import TaskSpec
from deai.protocol.task.statements import SecAggStatement, UpdateStatement

__all__ = ["ProviderPool", "TrainedUpdate", "provider_seed"]

log = logging.getLogger(__name__)


def provider_seed(task: str, round: int, address: str) -> int:
    """The batch-order seed of ``address`` in ``round`` of ``task`` (round 0: its poisoning seed)."""
    return int.from_bytes(sha256(f"{task}:{round}:{address}".encode())[:8], "big") & (2**31 - 1)


@dataclass(frozen=True)
class TrainedUpdate:
    """One provider's update for a round: the blob to upload, its digest and the signed statement."""

    provider: str
    blob: bytes  # safetensors {"delta": [d]}, or the compressed wire form
    digest: str
    delta: torch.Tensor  # what the blob decompresses to (what was sent)
    statement: UpdateStatement


class ProviderPool:
    """The data providers one process hosts: their accounts, private datasets and behaviours."""

    def __init__(
        self,
        accounts: Sequence[Account],
        data: Mapping[str, Dataset],
        *,
        behaviours: Mapping[str, str] | None = None,
        threads: int = 1,
        device: str = "cpu",
    ) -> None:
        self.accounts = {a.address: a for a in accounts}
        missing = [a for a in self.accounts if a not in data]
        if missing:
            raise ValueError(f"no data for provider(s) {missing}")
        self.data = dict(data)
        self.behaviours = {a: b for a, b in (behaviours or {}).items() if b != "honest"}
        self.threads = threads
        self.device = device  # where this pool trains: "cpu", "cuda[:i]" or "auto" (its own choice)
        self.secagg: dict[tuple[str, int, int], SecAggClient] = {}  # (address, round, attempt)
        self.feedback: dict[tuple[str, str], ErrorFeedback] = {}  # (task, address) -> residual
        self.prepared: dict[tuple[str, str], Dataset | None] = {}  # (task, address) -> model-space data
        self.momentum: dict[tuple[str, str], torch.Tensor] = {}  # (task, address) -> provider momentum

    @property
    def addresses(self) -> list[str]:
        return sorted(self.accounts)

    def behaviour(self, address: str) -> str:
        return self.behaviours.get(address, "honest")

    def model_data(self, spec: TaskSpec, address: str) -> Dataset | None:
        """``address``'s data through the task's preprocessing (None if it does not fit the task)."""
        key = (spec.task_id, address)
        if key not in self.prepared:
            raw = self.data[address]
            try:
                if raw.in_features != spec.in_features:
                    raise DataError(f"{raw.in_features} features per sample, the task has {spec.in_features}")
                self.prepared[key] = spec.preprocessing.apply(raw)
            except DataError as exc:
                log.warning("provider %s: its data does not fit task %s: %s", address, spec.task_id, exc)
                self.prepared[key] = None
        return self.prepared[key]

    # -- training ------------------------------------------------------------------------------------

    def train(
        self, spec: TaskSpec, round: int, checkpoint: bytes, providers: Sequence[str], expected: int
    ) -> list[TrainedUpdate]:
        """Train and privatize the updates of ``providers`` (those of this pool) for ``round``.

        The round's local part is :func:`deai.learn.federated.local_step` (the same function
        ``run_federated`` runs), over this pool's providers in address order. Adversarial providers
        with the same behaviour form one collusion: they craft together (``Attack.craft`` with all
        of them) from the honest updates this pool computed; its generator is seeded by the task,
        the round and its first member. Client DP (if any) is applied after the attack step.
        """
        from deai.learn.attacks import get_attack

        prepared = {p: self.model_data(spec, p) for p in providers if p in self.accounts}
        data = {a: d for a, d in prepared.items() if d is not None}
        mine = sorted(data)
        if not mine:
            return []
        task = spec.task_id
        model = load_checkpoint(spec, checkpoint)
        start = get_flat(model)
        config = spec.train_config(get_strategy(spec.strategy, **spec.strategy_kwargs).prox_mu)
        config = dataclasses.replace(config, device=self.device)
        groups: dict[str, list[int]] = {}
        for i, a in enumerate(mine):
            if a in self.behaviours:
                groups.setdefault(self.behaviours[a], []).append(i)
        collusions = [
            Collusion(
                get_attack(name),
                rows,
                torch.Generator().manual_seed(provider_seed(task, round, mine[rows[0]]) + 1),
            )
            for name, rows in sorted(groups.items())
        ]
        attack_of = {i: c.attack for c in collusions for i in c.members}
        datasets = [
            attack_of[i].poison(data[a], torch.Generator().manual_seed(provider_seed(task, 0, a)))
            if i in attack_of
            else data[a]
            for i, a in enumerate(mine)
        ]
        seeds = [provider_seed(task, round, a) for a in mine]
        # provider momentum: the rows of the providers that train, in local_step's order
        idle = {i for c in collusions if not c.attack.trains for i in c.members}
        trainees = [a for i, a in enumerate(mine) if i not in idle]
        held = [self.momentum[(task, a)] for a in trainees if (task, a) in self.momentum]
        beta = spec.provider_momentum
        previous = torch.stack(held) if beta and trainees and len(held) == len(trainees) else None
        with deterministic(self.threads):
            step = local_step(
                model, start, datasets, config, seeds, collusions=collusions, momentum=previous, beta=beta
            )
            deltas = step.sent
            if step.momentum is not None:
                for row, a in enumerate(trainees):
                    self.momentum[(task, a)] = step.momentum[row].clone()
            out = []
            for i, a in enumerate(mine):
                delta = self._privatize(spec, round, a, deltas[i], expected)
                try:
                    blob, delta = self._compress(spec, round, a, delta)
                except CompressionError as exc:  # e.g. a diverged model's update: nothing to send
                    log.warning("provider %s, round %d: update not sent: %s", a, round, exc)
                    continue
                digest = sha256(blob).hex()
                st = UpdateStatement.sign(self.accounts[a], task, round, digest, len(self.data[a]))
                out.append(TrainedUpdate(a, blob, digest, delta, st))
        return out

    def _compress(
        self, spec: TaskSpec, round: int, address: str, delta: torch.Tensor
    ) -> tuple[bytes, torch.Tensor]:
        """The update's wire bytes and what they decompress to: dense, or compressed through the
        provider's error feedback (after DP: the residual only ever holds noised values)."""
        if spec.compression == "none":
            return update_bytes(delta), delta
        comp = get_compressor(spec.compression)
        head = delta.numel() - dense_tail(spec)  # the buffers travel dense (compression/tail.py)
        key = (spec.task_id, address)
        if key not in self.feedback:
            self.feedback[key] = ErrorFeedback(comp, head)
        seed = compression_seed(spec, round, address)
        step = self.feedback[key].step(
            delta[:head],
            seed=seed if comp.needs_seed else None,
            generator=torch.Generator().manual_seed(seed) if comp.needs_generator else None,
        )
        tail = delta[head:].detach().float().contiguous()
        wire = {**step.tensors, TAIL: tail} if tail.numel() else step.tensors
        return to_safetensors(wire), torch.cat([step.sent, tail])

    def _privatize(self, spec: TaskSpec, round: int, address: str, delta: torch.Tensor, expected: int):
        if spec.dp is None:
            return delta
        from deai.learn.privacy.client_dp import ClientDP  # loads Opacus: only for DP tasks

        dp = ClientDP(spec.dp.clip, spec.dp.noise_multiplier, spec.dp.mode, max(expected, 1))
        secret = sha256(self.accounts[address].sign(f"deai-dp:{spec.task_id}:{round}".encode()))
        gen = torch.Generator().manual_seed(int.from_bytes(secret[:8], "big") & (2**63 - 1))
        return dp.privatize(delta, gen)

    # -- secure aggregation --------------------------------------------------------------------------

    def secagg_start(
        self, spec: TaskSpec, round: int, view: dict, updates: Mapping[str, torch.Tensor]
    ) -> list[SecAggStatement]:
        """The first message (advertise keys) of each of our providers in the round's buckets."""
        out = []
        support = shared_support(spec, round, len(next(iter(updates.values())))) if updates else None
        for b, members in enumerate(view["buckets"]):
            if b in view.get("aborted", []):
                continue
            config = secagg_config(view, b)
            for u, a in enumerate(members):
                key = (a, round, view["attempt"])
                if a not in self.accounts or a not in updates or key in self.secagg:
                    continue
                client = SecAggClient(config, u, self.accounts[a])
                self.secagg[key] = client
                values = updates[a] if support is None else updates[a][support]  # the shared support
                msg = client.start(values.double().numpy())
                out.append(
                    SecAggStatement.sign(
                        self.accounts[a], spec.task_id, round, view["attempt"], b, encode(msg, config)
                    )
                )
        return out

    def secagg_handle(
        self, spec: TaskSpec, round: int, view: dict, address: str, inbox: dict
    ) -> SecAggStatement:
        """Answer the server's message ``inbox`` ({bucket, phase, data}) for ``address``."""
        client = self.secagg[(address, round, view["attempt"])]
        config = client.config
        reply = client.handle(decode(bytes.fromhex(inbox["data"]), config))
        return SecAggStatement.sign(
            self.accounts[address],
            spec.task_id,
            round,
            view["attempt"],
            inbox["bucket"],
            encode(reply, config),
        )

    def forget_secagg(self, round: int) -> None:
        self.secagg = {k: v for k, v in self.secagg.items() if k[1] >= round}

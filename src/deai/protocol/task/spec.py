"""The task spec: everything a federated task fixes before its first round, hashed into its id.

A spec is canonical JSON (RFC 8785) stored as a blob; the **task id** is ``0x`` + its SHA-256, the
``task`` of the ledger's ``create_task`` (whose ``params`` is the same hash). Anyone holding the id
fetches the spec, re-hashes it and knows exactly what the task promised: the model and its initial
checkpoint (a blob digest), the public validation data (a blob digest: the defense's root data and
the reported metrics), the hidden scoring sets the contributions are scored on (blob digests), the
recipe, the strategy and robust aggregator, the privacy settings, the verification parameters, the
budget and the deadlines of each phase (milliseconds of the ledger clock).

Only model names from :data:`deai.learn.models.MODELS` are accepted (an import path would make every
participant import code chosen by the task creator). Anyone may post a spec, so everything it would
make a participant build is checked here, before anything is allocated: the model's arguments and
size (built on the ``meta`` device: its state vector -- what travels in every update -- at most
:data:`MAX_PARAMS` floats), and the strategy's and scorer's options (scalars only, each built once
to see that it accepts them).

The local recipe (:meth:`TaskSpec.train_config`) is the learn layer's
:class:`~deai.learn.training.TrainConfig`: ``local_epochs`` or ``local_steps``, ``batch_size``,
``optimizer`` (``sgd``/``adamw``), ``lr``, ``momentum``, ``weight_decay``, ``grad_clip``,
``schedule`` and ``warmup_steps``, ``accumulate`` and ``loss`` (``auto``: cross-entropy for labelled
data, next-token for token windows). ``provider_momentum`` (``beta``): each provider sends
``beta * m + (1 - beta) * delta`` of its updates across rounds
(:func:`deai.learn.federated.momentum_step`), which robust aggregators tell apart from attacks
better than single-round updates. ``score_samples`` bounds the validation samples each candidate
of the contribution scoring is evaluated on (its cost budget for large models; 0 = all).
A model built on a pretrained base (``lora``) names the base in ``model_kwargs`` (``base``) and pins
its exact weights there (``digest``: :func:`deai.learn.pretrained.base_digest`), so every
participant -- providers, executors, hosts -- builds the same adapters on the same base or refuses.

**Hidden scoring sets** (``scoring_sets``): the data the contributions are scored on must not be
data the providers can train on, or a provider that trains on it earns the top payout. The creator
commits to up to :data:`MAX_SCORING_SETS` held-back sets by digest; round ``r`` is scored on set
``(r - 1) mod k`` (:meth:`TaskSpec.scoring_data`), which the coordinator keeps sealed and reveals
only once the round's updates are committed. With fewer sets than rounds a set is reused after it
was revealed (public from then on); with none, rounds are scored on the public ``validation`` data.

**Preprocessing** (``preprocessing``, :class:`deai.learn.preprocess.Preprocessing`): how raw
features become the model's input (``none``, or ``standardize`` with the ``mean``/``std`` the
creator fixed from its own data). Data providers apply it to their raw data before training
(:class:`deai.protocol.task.provider.ProviderPool`); the validation and scoring blobs the creator
publishes are already in model space (preprocessed), as are the inputs of inference requests.
It is part of the digest: a provider knows exactly what its data goes through.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from deai.core.blobs import check_digest
from deai.core.encoding import canonical, decode_canonical, sha256_hex
from deai.core.errors import EncodingError
from deai.learn.errors import DataError
from deai.learn.preprocess import Preprocessing
from deai.protocol.task.errors import BadTaskSpec

__all__ = [
    "DP_MODES",
    "MAX_PARAMS",
    "MAX_SCORING_SETS",
    "MAX_SPEC_BYTES",
    "DPSettings",
    "DelegatedSettings",
    "TaskSpec",
    "Windows",
]

MAX_SPEC_BYTES = 64 * 1024
MAX_PARAMS = 1 << 24  # 16.8M float32 parameters: a 64 MiB checkpoint, and as much per update
MAX_SCORING_SETS = 512  # 512 digests: about 34 KiB of the spec's 64 KiB
MAX_OPTION = 1e6  # the largest magnitude of a numeric strategy or scorer option
DP_MODES = ("local", "distributed", "central")


def _options(name: str, value: Any, build: Any) -> None:
    """Options are scalars (None, bool, a string of at most 64 characters, a number of magnitude at
    most :data:`MAX_OPTION`) that ``build(**value)`` accepts."""
    for k, v in value.items():
        ok = v is None or isinstance(v, bool) or (isinstance(v, str) and len(v) <= 64)
        ok = ok or (isinstance(v, int | float) and abs(v) <= MAX_OPTION)
        if not ok:
            raise BadTaskSpec(f"task spec: {name}.{str(k)[:40]} must be a scalar option, got {str(v)[:80]}")
    try:
        build(**value)
    except Exception as exc:  # whatever the constructor says of foreign options, it is a refusal
        raise BadTaskSpec(f"task spec: {name}: {type(exc).__name__}: {str(exc)[:200]}") from None


def _num(name: str, value: Any, lo: float, hi: float, *, integer: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if integer:
        ok = ok and isinstance(value, int)
    if not ok or not lo <= value <= hi:
        kind = "an integer" if integer else "a number"
        raise BadTaskSpec(f"task spec: {name} must be {kind} in [{lo}, {hi}], got {value!r}")


@dataclass(frozen=True)
class DPSettings:
    """Client-level DP: each update clipped to L2 ``clip``; noise ``noise_multiplier * clip`` on the
    sum, added by each provider (``local``: all of it; ``distributed``: its 1/sqrt(m) share) or by
    the aggregation job (``central``, seeded by the job seed)."""

    mode: str = "local"
    clip: float = 1.0
    noise_multiplier: float = 1.0
    delta: float = 1e-5

    def check(self) -> None:
        if self.mode not in DP_MODES:
            raise BadTaskSpec(f"task spec: dp.mode must be one of {DP_MODES}, got {self.mode!r}")
        _num("dp.clip", self.clip, 1e-9, 1e9)
        _num("dp.noise_multiplier", self.noise_multiplier, 0.0, 1e6)
        _num("dp.delta", self.delta, 1e-30, 0.999)

    def sample_rate(self, contributors: int, members: int) -> float:
        """A round's sampling rate for the accountant: local noise protects every update alone (1);
        central and distributed noise cover the contributors among the task's members."""
        return 1.0 if self.mode == "local" else min(1.0, contributors / max(members, 1))

    def epsilon(self, steps: list[list[float]]) -> float:
        """The privacy budget spent by the rounds so far (``[noise multiplier, sample rate]`` each),
        at :attr:`delta`, from the RDP accountant."""
        from deai.learn.privacy.accountant import PrivacyAccountant  # loads Opacus: only for DP tasks

        acc = PrivacyAccountant(self.delta)
        for z, q in steps:
            acc.step(z, q)
        return acc.epsilon


@dataclass(frozen=True)
class Windows:
    """Phase deadlines, in ms of the ledger clock: joining, local training (update upload), each
    secure-aggregation phase, and the commit and reveal windows of each verified job.

    ``join_grace_ms`` (0: off) ends the join phase early: once ``min_providers`` have joined and no
    one joined for that long, the first round starts without waiting for the rest of ``join_ms``
    (the phase also ends as soon as ``max_providers`` joined)."""

    join_ms: int = 30_000
    train_ms: int = 60_000
    secagg_ms: int = 15_000
    commit_ms: int = 30_000
    reveal_ms: int = 30_000
    join_grace_ms: int = 0

    def check(self) -> None:
        for f in fields(self):
            lo = 0 if f.name == "join_grace_ms" else 1
            _num(f"windows.{f.name}", getattr(self, f.name), lo, 2**40, integer=True)


@dataclass(frozen=True)
class DelegatedSettings:
    """Delegated training (``TaskSpec.delegated``): instead of data providers training where their
    data lives, each round is one verified ``train_steps`` job of ``steps`` plain-SGD steps (the
    spec's ``lr`` and ``batch_size``) over the creator's public training ``data`` (a blob digest),
    run by ``r`` drawn staked compute providers with hidden sampling ``p`` and refereed on
    disagreement, committing the state every ``commit_every`` steps
    (:mod:`deai.protocol.task.delegated_round`)."""

    data: str
    steps: int = 64
    commit_every: int = 8
    r: int = 2
    p: float = 0.5

    def check(self) -> None:
        from deai.protocol.jobs.trajectory import MAX_KEPT_LEAVES, leaf_steps

        _num("delegated.steps", self.steps, 1, 1 << 20, integer=True)
        _num("delegated.commit_every", self.commit_every, 1, self.steps, integer=True)
        _num("delegated.r", self.r, 2, 16, integer=True)
        _num("delegated.p", self.p, 0.0, 1.0)
        if len(leaf_steps(self.steps, self.commit_every)) > MAX_KEPT_LEAVES:
            raise BadTaskSpec(
                f"task spec: delegated.steps / commit_every gives over {MAX_KEPT_LEAVES - 1} committed"
                " states per job: raise commit_every"
            )


@dataclass(frozen=True)
class TaskSpec:
    """One federated task. Build it, store :meth:`to_bytes` as a blob, use :attr:`task_id`."""

    init: str  # digest of the initial checkpoint (safetensors state dict of the model)
    validation: str  # digest of the public validation data (safetensors {"x": float [N, F], "y": int64 [N]})
    in_features: int
    num_classes: int
    model: str = "mlp"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    rounds: int = 3
    local_epochs: float = 1.0
    lr: float = 0.1
    batch_size: int = 32
    momentum: float = 0.0
    provider_momentum: float = 0.0  # momentum of each provider's update across rounds (0: off)
    local_steps: int | None = None
    optimizer: str = "sgd"
    weight_decay: float = 0.0
    grad_clip: float = 0.0
    schedule: str = "constant"
    warmup_steps: int = 0
    accumulate: int = 1
    loss: str = "auto"
    score_samples: int = 0
    strategy: str = "fedavg"
    strategy_kwargs: dict[str, Any] = field(default_factory=dict)
    aggregator: str = "default"  # the recommended defense, sized per round (deai.learn.aggregators)
    f: int = 0
    dp: DPSettings | None = None
    secure_aggregation: bool = False
    bucket_size: int = 3
    scoring: str = "gtg_shapley"
    scoring_options: dict[str, Any] = field(default_factory=dict)
    split: dict[str, Any] = field(default_factory=dict)
    redundancy: int = 3
    sample_rate: float = 0.1
    job_fee: int = 10
    budget: int = 10_000
    provider_stake: int = 0
    min_providers: int = 2
    max_providers: int = 10_000
    windows: Windows = field(default_factory=Windows)
    seed: int = 0
    scoring_sets: list[str] = field(default_factory=list)  # digests of the hidden scoring sets
    compression: str = "none"  # how providers send updates (deai.learn.compression spec)
    global_compression: str = "none"  # how the round's global update is broadcast (ditto)
    preprocessing: Preprocessing = field(default_factory=Preprocessing)  # raw features -> model input
    delegated: DelegatedSettings | None = None  # set: delegated training on compute providers

    @property
    def training(self) -> str:
        """``federated`` (data providers train) or ``delegated`` (compute providers do)."""
        return "federated" if self.delegated is None else "delegated"

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "init", check_digest(self.init))
            object.__setattr__(self, "validation", check_digest(self.validation))
            if not isinstance(self.scoring_sets, list | tuple) or len(self.scoring_sets) > MAX_SCORING_SETS:
                raise BadTaskSpec(
                    f"task spec: scoring_sets must be a list of at most {MAX_SCORING_SETS} digests"
                )
            object.__setattr__(self, "scoring_sets", [check_digest(d) for d in self.scoring_sets])
        except (EncodingError, TypeError, AttributeError) as exc:
            raise BadTaskSpec(f"task spec: {exc}") from exc
        if len(set(self.scoring_sets)) != len(self.scoring_sets) or {self.init, self.validation} & set(
            self.scoring_sets
        ):
            raise BadTaskSpec("task spec: scoring_sets must be distinct and differ from init and validation")
        if isinstance(self.dp, dict):
            object.__setattr__(self, "dp", DPSettings(**self.dp))
        if isinstance(self.windows, dict):
            object.__setattr__(self, "windows", Windows(**self.windows))
        if isinstance(self.delegated, dict):
            try:
                object.__setattr__(self, "delegated", DelegatedSettings(**self.delegated))
            except TypeError as exc:
                raise BadTaskSpec(f"task spec: delegated: {exc}") from None
        if isinstance(self.preprocessing, dict):
            try:
                object.__setattr__(self, "preprocessing", Preprocessing.from_json(self.preprocessing))
            except (DataError, TypeError) as exc:
                raise BadTaskSpec(f"task spec: {exc}") from None
        self.check()

    def check(self) -> None:
        from deai.learn.aggregators import get_aggregator
        from deai.learn.errors import LearnError
        from deai.learn.models import MODELS
        from deai.learn.strategies import STRATEGIES

        if self.model not in MODELS.names():
            raise BadTaskSpec(f"task spec: model must be one of {MODELS.names()}, got {self.model!r}")
        if self.strategy not in STRATEGIES.names():
            raise BadTaskSpec(
                f"task spec: strategy must be one of {STRATEGIES.names()}, got {self.strategy!r}"
            )
        from deai.learn.scoring import SCORERS
        from deai.protocol.incentives.errors import BadSplit
        from deai.protocol.incentives.split import SplitRule

        if self.scoring not in SCORERS.names():
            raise BadTaskSpec(f"task spec: scoring must be one of {SCORERS.names()}, got {self.scoring!r}")
        try:
            SplitRule.from_json(self.split)
        except (BadSplit, TypeError) as exc:
            raise BadTaskSpec(f"task spec: split: {exc}") from exc
        for name in ("model_kwargs", "strategy_kwargs", "scoring_options"):
            if not isinstance(getattr(self, name), dict):
                raise BadTaskSpec(f"task spec: {name} must be an object")
        _num("in_features", self.in_features, 1, 1 << 24, integer=True)
        _num("num_classes", self.num_classes, 2, 1 << 20, integer=True)
        _num("rounds", self.rounds, 1, 100_000, integer=True)
        _num("local_epochs", self.local_epochs, 0.0, 10_000)
        _num("lr", self.lr, 1e-12, 1e6)
        _num("batch_size", self.batch_size, 1, 1 << 20, integer=True)
        _num("momentum", self.momentum, 0.0, 0.999999)
        _num("provider_momentum", self.provider_momentum, 0.0, 0.999999)
        if self.local_steps is not None:
            _num("local_steps", self.local_steps, 0, 1 << 24, integer=True)
        _num("weight_decay", self.weight_decay, 0.0, 1e3)
        _num("grad_clip", self.grad_clip, 0.0, 1e9)
        _num("warmup_steps", self.warmup_steps, 0, 1 << 24, integer=True)
        _num("accumulate", self.accumulate, 1, 1 << 10, integer=True)
        _num("score_samples", self.score_samples, 0, 1 << 24, integer=True)
        from deai.learn.objectives import LOSSES
        from deai.learn.training import OPTIMIZERS, SCHEDULES

        for name, value, allowed in (
            ("optimizer", self.optimizer, OPTIMIZERS),
            ("schedule", self.schedule, SCHEDULES),
            ("loss", self.loss, ("auto", *LOSSES.names())),
        ):
            if value not in allowed:
                raise BadTaskSpec(
                    f"task spec: {name} must be one of {tuple(allowed)}, got {str(value)[:40]!r}"
                )
        _num("f", self.f, 0, 1 << 20, integer=True)
        _num("bucket_size", self.bucket_size, 2, 1 << 20, integer=True)
        _num("redundancy", self.redundancy, 1, 64, integer=True)
        _num("sample_rate", self.sample_rate, 0.0, 1.0)
        _num("job_fee", self.job_fee, 0, 2**53 - 1, integer=True)
        _num("budget", self.budget, 0, 2**53 - 1, integer=True)
        _num("provider_stake", self.provider_stake, 0, 2**53 - 1, integer=True)
        _num("min_providers", self.min_providers, 1, 1 << 20, integer=True)
        _num("max_providers", self.max_providers, self.min_providers, 1 << 20, integer=True)
        _num("seed", self.seed, 0, 2**53 - 1, integer=True)
        if self.dp is not None:
            if not isinstance(self.dp, DPSettings):
                raise BadTaskSpec("task spec: dp must be an object or null")
            self.dp.check()
            if self.secure_aggregation and self.dp.mode == "central":
                raise BadTaskSpec(
                    "task spec: central DP needs single updates; use distributed with secure aggregation"
                )
        if not isinstance(self.windows, Windows):
            raise BadTaskSpec("task spec: windows must be an object")
        self.windows.check()
        if not isinstance(self.preprocessing, Preprocessing):
            raise BadTaskSpec("task spec: preprocessing must be an object")
        try:
            self.preprocessing.check(self.in_features)
        except DataError as exc:
            raise BadTaskSpec(f"task spec: {exc}") from None
        try:
            get_aggregator(self.aggregator, f=self.f)
        except (LearnError, TypeError, ValueError) as exc:
            raise BadTaskSpec(f"task spec: aggregator {self.aggregator!r}: {exc}") from exc
        self._check_model()
        self._check_compression()
        if self.delegated is not None:
            if not isinstance(self.delegated, DelegatedSettings):
                raise BadTaskSpec("task spec: delegated must be an object or null")
            try:
                object.__setattr__(self.delegated, "data", check_digest(self.delegated.data))
            except (EncodingError, TypeError, AttributeError) as exc:
                raise BadTaskSpec(f"task spec: delegated.data: {exc}") from None
            self.delegated.check()
        from deai.learn.scoring import get_scorer
        from deai.learn.strategies import get_strategy

        _options("strategy_kwargs", self.strategy_kwargs, lambda **kw: get_strategy(self.strategy, **kw))
        _options("scoring_options", self.scoring_options, lambda **kw: get_scorer(self.scoring, **kw))
        size = len(self.to_bytes())
        if size > MAX_SPEC_BYTES:  # what every participant would refuse to parse
            raise BadTaskSpec(
                f"task spec: {size} bytes, over the limit of {MAX_SPEC_BYTES} (per-feature preprocessing"
                " statistics of many features? give them per channel)"
            )

    def _check_compression(self) -> None:
        """A compressor spec the providers can build; under secure aggregation only one whose
        support every provider shares and whose values add up in the ring (``none``, ``randomk``)."""
        from deai.learn.compression import get_compressor

        for name in ("compression", "global_compression"):
            value = getattr(self, name)
            if not isinstance(value, str) or len(value) > 512:
                raise BadTaskSpec(f"task spec: {name} must be a compressor spec of at most 512 characters")
            try:
                get_compressor(value)
            except (LookupError, TypeError, ValueError) as exc:
                raise BadTaskSpec(f"task spec: {name}: {exc}") from None
        comp = get_compressor(self.compression)
        if self.secure_aggregation and not comp.ring_compatible:
            raise BadTaskSpec(
                "task spec: with secure aggregation, compression must be 'none' or 'randomk(...)' alone"
                " (a shared support; quantized codes with per-provider scales do not add up in the ring)"
            )

    def _check_model(self) -> None:
        """The model's arguments and size, before any participant builds it (on the meta device)."""
        from deai.learn.errors import LearnError
        from deai.learn.models import count_state

        try:
            n = count_state(self.model, self.in_features, self.num_classes, **self.model_kwargs)
        except (LearnError, TypeError) as exc:
            raise BadTaskSpec(f"task spec: model {self.model!r}: {exc}") from None
        if n > MAX_PARAMS:
            raise BadTaskSpec(
                f"task spec: the model has {n:,} parameters and buffers to exchange, over the limit of"
                f" {MAX_PARAMS:,}"
            )

    # -- wire form -----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if out["delegated"] is None:  # a federated spec (and its task id) as before the field existed
            del out["delegated"]
        out["v"] = 1
        return json.loads(canonical(out))

    def to_bytes(self) -> bytes:
        return canonical(self.to_json())

    @property
    def digest(self) -> str:
        return sha256_hex(self.to_bytes())

    @property
    def task_id(self) -> str:
        """``0x`` + SHA-256 of the canonical spec: the task's id on the ledger."""
        return "0x" + self.digest

    @classmethod
    def from_json(cls, value: Any) -> TaskSpec:
        if not isinstance(value, dict):
            raise BadTaskSpec("a task spec must be a JSON object")
        value = dict(value)
        if value.pop("v", None) != 1:
            raise BadTaskSpec("task spec: unsupported or missing version field v (expected 1)")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise BadTaskSpec(f"task spec: unknown field(s) {', '.join(unknown)}")
        try:
            if isinstance(value.get("dp"), dict):
                value["dp"] = DPSettings(**value["dp"])
            if isinstance(value.get("windows"), dict):
                value["windows"] = Windows(**value["windows"])
            if isinstance(value.get("preprocessing"), dict):
                value["preprocessing"] = Preprocessing.from_json(value["preprocessing"])
            if isinstance(value.get("delegated"), dict):
                value["delegated"] = DelegatedSettings(**value["delegated"])
            return cls(**value)
        except DataError as exc:
            raise BadTaskSpec(f"task spec: {exc}") from exc
        except TypeError as exc:
            raise BadTaskSpec(f"task spec: {exc}") from exc

    @classmethod
    def from_bytes(cls, data: bytes, *, task_id: str | None = None) -> TaskSpec:
        """Parse spec bytes; with ``task_id``, check they hash to it (and are canonical)."""
        spec = decode_canonical(
            data, cls.from_json, cls.to_bytes, what="task spec", error=BadTaskSpec, max_bytes=MAX_SPEC_BYTES
        )
        if task_id is not None and spec.task_id != task_id.lower():
            raise BadTaskSpec(f"task spec hashes to {spec.task_id}, not the task id {task_id}")
        return spec

    # -- derived ---------------------------------------------------------------------------------

    def split_rule(self):
        from deai.protocol.incentives.split import SplitRule

        return SplitRule.from_json(self.split)

    def train_config(self, prox_mu: float = 0.0):
        """The providers' local recipe as the learn layer's ``TrainConfig`` (``prox_mu``: the
        strategy's FedProx term)."""
        from deai.learn.training import TrainConfig

        return TrainConfig(
            epochs=self.local_epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            prox_mu=prox_mu,
            steps=self.local_steps,
            optimizer=self.optimizer,
            grad_clip=self.grad_clip,
            schedule=self.schedule,
            warmup_steps=self.warmup_steps,
            accumulate=self.accumulate,
            loss=self.loss,
        )

    def scoring_data(self, round: int) -> str:
        """The digest of the data round ``round`` (1-based) is scored on: hidden set
        ``(round - 1) mod k``, or the public validation data when the task has no hidden sets."""
        if not self.scoring_sets:
            return self.validation
        return self.scoring_sets[(round - 1) % len(self.scoring_sets)]

    def round_pool(self) -> int:
        """What each round may pay out (compute reimbursement plus data rewards)."""
        return self.budget // self.rounds

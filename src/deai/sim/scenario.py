"""Scenario files: one YAML document describes a whole network run.

A scenario is validated before anything starts. Unknown keys, wrong types and impossible values
are refused with :class:`ScenarioError`, whose message names each bad key by its dotted path and
the value found there, e.g. ``task.rounds: must be >= 1 (got -3)``. Every key is documented in
``docs/scenarios.md``.

Names are checked against the registries of the layers that implement them: the strategy and
aggregator registries of :mod:`deai.learn`, the attack suite for data-provider behaviours, the
cheating executors for compute-provider behaviours and for hosts (``honest`` plus every cheater).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from deai.core.errors import DeaiError

__all__ = ["Scenario", "ScenarioError", "load_scenario", "parse_scenario"]


class ScenarioError(DeaiError, ValueError):
    """A scenario file is malformed; the message lists each bad key and value."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


BUILTIN_DATASETS = ("digits", "wine", "breast_cancer", "fashion_mnist")
TEXT_CORPORA = ("shakespeare", "kjv")
_PATH_KINDS = ("csv:", "npz:", "parquet:", "images:", "idx:", "text:")


class DatasetSpec(_Model):
    """What the providers train on. Labelled data: a built-in table, ``fashion_mnist`` (its own test
    split is the test set) or a ``csv:``/``npz:``/``parquet:``/``images:``/``idx:`` path. Text: a
    built-in corpus (``shakespeare``, ``kjv``) or ``text:PATH`` (a file or folder), cut into
    windows of ``seq_len`` tokens by ``tokenizer`` (``byte``; ``bpe`` trained on the training text
    with ``vocab_size`` tokens; ``base``: the pretrained base's tokenizer, for ``lora`` models)."""

    name: str = "digits"
    label: str = "label"
    test_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.2
    validation_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.1
    max_train_samples: Annotated[int | None, Field(ge=1)] = None
    max_validation_samples: Annotated[int | None, Field(ge=1)] = None
    max_test_samples: Annotated[int | None, Field(ge=1)] = None
    # the task's declared preprocessing: per-feature standardization with statistics fitted on the
    # validation split (the creator's data); default: tables yes, images and text no
    standardize: bool | None = None
    tokenizer: Literal["byte", "bpe", "base"] = "byte"
    vocab_size: Annotated[int, Field(ge=257, le=1 << 17)] = 1024
    seq_len: Annotated[int, Field(ge=2, le=8192)] = 64

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v in BUILTIN_DATASETS or v in TEXT_CORPORA or v.startswith(_PATH_KINDS):
            return v
        raise ValueError(
            f"must be one of {', '.join(BUILTIN_DATASETS + TEXT_CORPORA)} or a {'/'.join(_PATH_KINDS)} PATH"
        )

    @property
    def is_text(self) -> bool:
        return self.name in TEXT_CORPORA or self.name.startswith("text:")


class PartitionSpec(_Model):
    """How the training data is dealt to providers. ``documents`` (text only): whole documents
    (plays, books, files) per provider -- providers with different texts."""

    kind: Literal["iid", "dirichlet", "shards", "quantity", "documents"] = "iid"
    alpha: Annotated[float, Field(gt=0)] = 0.5
    shards_per_provider: Annotated[int, Field(ge=1)] = 2


class ModelSpec(_Model):
    name: str = "mlp"
    options: dict[str, Any] = Field(default_factory=dict)


class NetworkSpec(_Model):
    data_providers: Annotated[int, Field(ge=1, le=100_000)] = 8
    compute_providers: Annotated[int, Field(ge=1, le=10_000)] = 4
    hosts: Annotated[int, Field(ge=0, le=10_000)] = 3
    transport: Literal["memory", "http"] = "memory"


Role = Literal["data_provider", "compute_provider", "host"]


class Adversary(_Model):
    role: Role
    behaviour: str
    count: Annotated[int, Field(ge=1)] = 1
    options: dict[str, Any] = Field(default_factory=dict)


class DPSpec(_Model):
    epsilon: Annotated[float | None, Field(gt=0)] = None
    delta: Annotated[float, Field(gt=0, lt=1)] = 1e-5
    noise_multiplier: Annotated[float | None, Field(ge=0)] = None
    clip: Annotated[float, Field(gt=0)] = 1.0
    mode: Literal["central", "local", "dpsgd"] = "central"

    @model_validator(mode="after")
    def _one_of(self) -> DPSpec:
        if (self.epsilon is None) == (self.noise_multiplier is None):
            raise ValueError("give exactly one of epsilon or noise_multiplier")
        return self


class VerificationSpec(_Model):
    redundancy: Annotated[int, Field(ge=1, le=15)] = 3
    sample_rate: Annotated[float, Field(ge=0, le=1)] = 0.1


class DelegatedSpec(_Model):
    """Delegated training (``task.training: delegated``): each round is one refereed ``train_steps``
    job of ``steps`` SGD steps over the creator's data, run by ``r`` drawn compute providers
    (replicated with probability ``p``), the state committed every ``commit_every`` steps."""

    steps: Annotated[int, Field(ge=1, le=1 << 20)] = 64
    commit_every: Annotated[int, Field(ge=1, le=1 << 20)] = 8
    p: Annotated[float, Field(ge=0, le=1)] = 0.5
    r: Annotated[int, Field(ge=2, le=16)] = 2

    @model_validator(mode="after")
    def _leaves(self) -> DelegatedSpec:
        from deai.protocol.jobs.trajectory import MAX_KEPT_LEAVES

        if self.commit_every > self.steps:
            raise ValueError(f"commit_every {self.commit_every} exceeds steps {self.steps}")
        if -(-self.steps // self.commit_every) + 1 > MAX_KEPT_LEAVES:
            raise ValueError(
                f"steps / commit_every gives over {MAX_KEPT_LEAVES - 1} committed states per job:"
                " raise commit_every"
            )
        return self


class WindowsSpec(_Model):
    """The task's phase windows in ms of the ledger clock (:class:`deai.protocol.task.spec.Windows`)."""

    join_ms: Annotated[int, Field(ge=1, le=2**40)] = 120_000
    join_grace_ms: Annotated[int, Field(ge=0, le=2**40)] = 10_000
    train_ms: Annotated[int, Field(ge=1, le=2**40)] = 60_000
    secagg_ms: Annotated[int, Field(ge=1, le=2**40)] = 15_000
    commit_ms: Annotated[int, Field(ge=1, le=2**40)] = 20_000
    reveal_ms: Annotated[int, Field(ge=1, le=2**40)] = 20_000


class TaskSpec(_Model):
    rounds: Annotated[int, Field(ge=1, le=10_000)] = 5
    local_epochs: Annotated[float, Field(gt=0, le=1000)] = 1
    local_steps: Annotated[int | None, Field(ge=1, le=1 << 24)] = None  # overrides local_epochs
    lr: Annotated[float, Field(gt=0)] = 0.1
    batch_size: Annotated[int, Field(ge=1)] = 32
    optimizer: Literal["sgd", "adamw"] = "sgd"
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.0
    # each provider's update averaged across rounds (beta * m + (1 - beta) * delta); 0: off
    provider_momentum: Annotated[float, Field(ge=0, lt=1)] = 0.0
    weight_decay: Annotated[float, Field(ge=0, le=1000)] = 0.0
    grad_clip: Annotated[float, Field(ge=0)] = 0.0
    schedule: Literal["constant", "cosine", "linear"] = "constant"
    warmup_steps: Annotated[int, Field(ge=0, le=1 << 24)] = 0
    accumulate: Annotated[int, Field(ge=1, le=1024)] = 1
    loss: Literal["auto", "cross_entropy", "next_token"] = "auto"
    strategy: str = "fedavg"
    # the strategy's settings, e.g. {mu: 0.01} (fedprox), {server_lr: 1.0, momentum: 0.9} (diloco)
    strategy_options: dict[str, Any] = Field(default_factory=dict)
    aggregator: str = "default"  # the recommended defense (root gate + centered clipping)
    scoring: str = "gtg_shapley"
    scoring_options: dict[str, Any] = Field(default_factory=dict)
    score_samples: Annotated[int, Field(ge=0, le=1 << 24)] = 0
    # the share of the validation split held back as hidden scoring sets (the rest is public: the
    # defense's root data and the reported metrics); 0 scores on the public data
    scoring_holdout: Annotated[float, Field(ge=0, lt=1)] = 0.5
    # how providers send updates: a deai.learn.compression spec, e.g. "topk(ratio=0.01)+int2"
    compression: Annotated[str, Field(max_length=512)] = "none"
    # how the round's global update is broadcast to providers (same specs; "none": the full model)
    global_compression: Annotated[str, Field(max_length=512)] = "none"
    dp: DPSpec | None = None
    secure_aggregation: bool = False
    verification: VerificationSpec = VerificationSpec()
    budget: Annotated[int, Field(ge=0, lt=2**53)] = 100_000
    min_providers: Annotated[int | None, Field(ge=1)] = None
    max_providers: Annotated[int | None, Field(ge=1)] = None  # default: network.data_providers
    windows: WindowsSpec = WindowsSpec()
    # federated: data providers train where their data lives; delegated: compute providers train on
    # the creator's data (the training split), verified by refereed delegation
    training: Literal["federated", "delegated"] = "federated"
    delegated: DelegatedSpec = DelegatedSpec()


class InferenceSpec(_Model):
    requests: Annotated[int, Field(ge=0, le=1_000_000)] = 20
    fee: Annotated[int, Field(ge=0, lt=2**53)] = 10
    redundancy: Annotated[int, Field(ge=1, le=15)] = 3
    sample_rate: Annotated[float, Field(ge=0, le=1)] = 1.0
    batch_size: Annotated[int, Field(ge=1, le=10_000)] = 8


class PolicySpec(_Model):
    """What every daemon of the network accepts (:class:`deai.node.participant.policy.JoinPolicy`); an unset
    key keeps the policy's default. The scenario's own task and requests must pass it."""

    min_reward: Annotated[int | None, Field(ge=0, lt=2**53)] = None
    max_task_stake: Annotated[int | None, Field(ge=0, lt=2**53)] = None
    min_job_fee: Annotated[int | None, Field(ge=0, lt=2**53)] = None
    min_reveal_ms: Annotated[int | None, Field(ge=0, lt=2**53)] = None


class Scenario(_Model):
    seed: int
    name: str = "scenario"
    description: str = ""
    dataset: DatasetSpec = DatasetSpec()
    partition: PartitionSpec = PartitionSpec()
    model: ModelSpec = ModelSpec()
    network: NetworkSpec = NetworkSpec()
    adversaries: list[Adversary] = Field(default_factory=list)
    task: TaskSpec = TaskSpec()
    inference: InferenceSpec = InferenceSpec()
    policy: PolicySpec = PolicySpec()
    small: dict[str, Any] = Field(default_factory=dict)  # overrides for the small form (``--small``)

    @model_validator(mode="after")
    def _counts(self) -> Scenario:
        counts = {
            "data_provider": self.network.data_providers,
            "compute_provider": self.network.compute_providers,
            "host": self.network.hosts,
        }
        for role, available in counts.items():
            wanted = sum(a.count for a in self.adversaries if a.role == role)
            if wanted > available:
                raise ValueError(f"{wanted} adversarial {role}s but the network has only {available}")
        if self.task.min_providers is not None and self.task.min_providers > self.network.data_providers:
            raise ValueError("task.min_providers exceeds network.data_providers")
        top = self.task.max_providers
        if top is not None and top < (self.task.min_providers or 1):
            raise ValueError(f"task.max_providers {top} is below task.min_providers")
        text = self.dataset.is_text
        if self.partition.kind == "documents" and not text:
            raise ValueError("partition.kind 'documents' deals whole texts: it needs a text dataset")
        if text and self.partition.kind not in ("documents", "iid"):
            raise ValueError(f"partition.kind {self.partition.kind!r} splits by label: text data has none")
        if self.dataset.tokenizer == "base" and "base" not in self.model.options:
            raise ValueError(
                "dataset.tokenizer 'base' needs a model on a pretrained base (model.options.base)"
            )
        if self.task.training == "delegated" and self.network.compute_providers <= self.task.delegated.r:
            raise ValueError(
                f"task.training delegated draws task.delegated.r = {self.task.delegated.r} compute"
                f" providers per job: network.compute_providers must exceed it"
                f" (got {self.network.compute_providers})"
            )
        self._affordable()
        return self

    def _affordable(self) -> None:
        """The honest daemons' join policy must take the scenario's own task and requests."""
        from deai.node.participant.policy import JoinPolicy

        policy = JoinPolicy(**{k: v for k, v in dict(self.policy).items() if v is not None})
        per = self.task.budget // self.task.rounds // self.network.data_providers
        if per < policy.min_reward:
            raise ValueError(
                f"task.budget {self.task.budget} pays {per} per provider per round, below the"
                f" daemons' policy.min_reward {policy.min_reward}: no honest provider would join"
            )
        if self.inference.requests and self.network.hosts and self.inference.fee < policy.min_job_fee:
            raise ValueError(
                f"inference.fee {self.inference.fee} is below the daemons' policy.min_job_fee"
                f" {policy.min_job_fee}: no honest host would serve"
            )


def _attack_names() -> set[str]:
    from deai.learn.attacks import ATTACKS

    return set(ATTACKS.names())


def _cheater_names() -> set[str]:
    from deai.protocol.jobs.cheaters import cheater_names

    return set(cheater_names())


def _host_names() -> set[str]:
    from deai.protocol.inference import host_behaviours

    return set(host_behaviours())


_REGISTRIES: dict[str, Callable[[], set[str]]] = {
    "data_provider": _attack_names,
    "compute_provider": _cheater_names,
    "host": _host_names,
}


def _check_names(scenario: Scenario) -> list[str]:
    from deai.learn.aggregators import AGGREGATORS, PRE_AGGREGATORS, parse_spec
    from deai.learn.errors import UnknownName
    from deai.learn.strategies import STRATEGIES

    bad = []
    if scenario.task.strategy.lower() not in STRATEGIES.names():
        bad.append(
            f"task.strategy: unknown strategy (got {scenario.task.strategy!r});"
            f" known: {', '.join(STRATEGIES.names())}"
        )
    else:
        bad += _strategy_options(scenario.task.strategy.lower(), scenario.task.strategy_options)
    try:
        stages = parse_spec(scenario.task.aggregator)
        for name, _ in stages:
            if name not in AGGREGATORS.names() and name not in PRE_AGGREGATORS.names():
                known = ", ".join(AGGREGATORS.names() + PRE_AGGREGATORS.names())
                raise UnknownName(f"unknown stage {name!r}; known: {known}")
    except UnknownName as exc:
        bad.append(f"task.aggregator: {exc} (got {scenario.task.aggregator!r})")
    from deai.learn.scoring import SCORERS

    if scenario.task.scoring not in SCORERS.names():
        known = ", ".join(SCORERS.names())
        bad.append(f"task.scoring: unknown scorer (got {scenario.task.scoring!r}); known: {known}")
    from deai.learn.compression import COMPRESSORS, get_compressor

    for key in ("compression", "global_compression"):
        value = getattr(scenario.task, key)
        try:
            get_compressor(value)
        except (LookupError, ValueError) as exc:
            known = ", ".join(COMPRESSORS.names())
            bad.append(f"task.{key}: {exc} (got {value!r}); stages: {known}")
    return bad


def _strategy_options(name: str, options: dict[str, Any]) -> list[str]:
    """``task.strategy_options``: scalar settings the strategy's constructor accepts."""
    import inspect

    from deai.learn.strategies import STRATEGIES, get_strategy

    cls = STRATEGIES.get(name)
    known = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    bad = []
    for key, value in options.items():
        if key not in known:
            hint = _did_you_mean(str(key), known)
            bad.append(
                f"task.strategy_options.{key}: unknown setting of {name}{hint} (got {value!r});"
                f" known: {', '.join(known) or 'none'}"
            )
        elif isinstance(value, bool) or not isinstance(value, int | float):
            bad.append(f"task.strategy_options.{key}: must be a number (got {str(value)[:80]!r})")
    if not bad:
        try:
            get_strategy(name, **options)
        except (TypeError, ValueError) as exc:
            bad.append(f"task.strategy_options: {exc} (got {options!r})")
    return bad


def _did_you_mean(word: str, known: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _known_keys(loc: tuple) -> list[str]:
    """The keys the scenario model accepts at the parent of ``loc`` (for did-you-mean hints)."""
    model: Any = Scenario
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        info = getattr(model, "model_fields", {}).get(part)
        model = None
        if info is not None:
            ann = info.annotation
            for cand in (ann, *getattr(ann, "__args__", ())):
                if isinstance(cand, type) and issubclass(cand, BaseModel):
                    model = cand
                    break
    return list(getattr(model, "model_fields", {}))


def _format(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key" + _did_you_mean(str(err["loc"][-1]), _known_keys(tuple(err["loc"])))
        got = err.get("input")
        shown = repr(got) if not isinstance(got, dict | list) else type(got).__name__
        lines.append(f"{path}: {msg} (got {shown[:80]})")
    return "\n".join(lines)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def parse_scenario(data: Any, *, source: str = "scenario", small: bool = False) -> Scenario:
    """Validate a parsed YAML/JSON document. With ``small``, the document's ``small`` section (keys
    of the scenario, merged key by key) is applied first: the small form CI and quick checks run."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario must be a mapping of keys, got {type(data).__name__}")
    if small and isinstance(data.get("small"), dict):
        data = _merge(data, data["small"])
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(f"{source} is invalid:\n{_format(exc)}") from None
    bad = _check_names(scenario)
    for i, adv in enumerate(scenario.adversaries):
        known = _REGISTRIES.get(adv.role)
        if known is not None and adv.behaviour not in (names := known()):
            bad.append(
                f"adversaries.{i}.behaviour: unknown {adv.role} behaviour (got {adv.behaviour!r});"
                f" known: {', '.join(sorted(names))}"
            )
    if bad:
        raise ScenarioError(f"{source} is invalid:\n" + "\n".join(bad))
    return scenario


def load_scenario(path: str | Path, *, small: bool = False) -> Scenario:
    """Read and validate a scenario YAML file (its small form with ``small``)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path} is not valid YAML: {exc}") from exc
    return parse_scenario(data, source=str(path), small=small)

"""A scenario's data: the train/validation/test splits and each provider's part, fixed by the seed.

:func:`prepare_workload` reads the scenario's ``dataset`` and ``partition`` and returns a
:class:`Workload`:

- **labelled data** (tables, ``fashion_mnist``, ``idx:``/``images:`` folders): a stratified split
  (``fashion_mnist`` keeps its own test split), optional seeded subsampling
  (``max_*_samples``), then the label partition of :func:`deai.learn.partition.partition`. Every
  part stays **raw**: the task declares its :class:`~deai.learn.preprocess.Preprocessing`
  (``standardize`` for tables by default, with per-feature statistics the creator fits on the
  validation split -- data it holds -- never on the providers' data), which the providers apply
  to their own parts and the creator to the data it publishes, as a real network does;
- **text** (``shakespeare``, ``kjv``, ``text:PATH``): every document's tail is held out for
  validation and test (:func:`deai.learn.text.split_corpus`: unseen text of the same style), the
  training documents are dealt whole to providers (``documents``) or their windows shuffled
  (``iid``), and every part is cut into windows of ``seq_len`` tokens by the tokenizer.

When the data is not installed, :class:`~deai.learn.errors.MissingData` says how to get it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from deai.learn.data import Dataset, Splits, load_dataset, split_dataset
from deai.learn.partition import partition
from deai.learn.preprocess import Preprocessing
from deai.sim.scenario import Scenario

__all__ = ["Workload", "prepare_workload"]


@dataclass(frozen=True)
class Workload:
    """What a run trains and evaluates on. ``parts[i]`` is provider i's private data; the splits
    and parts are raw, ``preprocessing`` turns them into the model's input."""

    splits: Splits
    parts: list[Dataset]
    tokenizer: object | None = None  # the text tokenizer (``encode``/``decode``), for text data
    preprocessing: Preprocessing = field(default_factory=Preprocessing)


def _cap(data: Dataset, limit: int | None, rng: np.random.Generator) -> Dataset:
    if limit is None or len(data) <= limit:
        return data
    return data.subset(np.sort(rng.permutation(len(data))[:limit]))


def _labelled(scenario: Scenario, n: int) -> Workload:
    ds, seed = scenario.dataset, scenario.seed
    rng = np.random.default_rng(seed)
    if ds.name == "fashion_mnist":
        from deai.learn.images import fashion_mnist

        parts = split_dataset(fashion_mnist("train"), val=ds.validation_fraction, test=0.0, seed=seed)
        splits = Splits(parts.train, parts.val, fashion_mnist("test"))
    else:
        full = load_dataset(ds.name, ds.label)
        splits = split_dataset(full, val=ds.validation_fraction, test=ds.test_fraction, seed=seed)
    splits = Splits(
        _cap(splits.train, ds.max_train_samples, rng),
        _cap(splits.val, ds.max_validation_samples, rng),
        _cap(splits.test, ds.max_test_samples, rng),
    )
    tabular = splits.train.x.dim() == 2 and not ds.name.startswith(("images:", "idx:"))
    scale = ds.standardize if ds.standardize is not None else (tabular and ds.name != "fashion_mnist")
    prep = Preprocessing.fit(splits.val) if scale else Preprocessing()
    p = scenario.partition
    options = {"dirichlet": {"alpha": p.alpha}, "quantity": {"alpha": p.alpha}}.get(p.kind, {})
    if p.kind == "shards":
        options = {"classes_per_provider": p.shards_per_provider}
    index = partition(splits.train.y.numpy(), n, p.kind, seed=seed, **options)
    return Workload(splits, [splits.train.subset(i) for i in index], None, prep)


def _tokenizer(scenario: Scenario, train_texts):
    from deai.learn.text import ByteTokenizer, HFTokenizer, train_bpe

    ds = scenario.dataset
    if ds.tokenizer == "byte":
        return ByteTokenizer()
    if ds.tokenizer == "bpe":
        return train_bpe(train_texts, ds.vocab_size, seed=scenario.seed)
    from deai.learn.pretrained import load_tokenizer

    return HFTokenizer(load_tokenizer(str(scenario.model.options["base"])))


def _text(scenario: Scenario, n: int) -> Workload:
    from deai.learn.text import load_corpus, partition_documents, split_corpus, token_windows

    ds, seed = scenario.dataset, scenario.seed
    rng = np.random.default_rng(seed)
    corpus = split_corpus(load_corpus(ds.name), val=ds.validation_fraction, test=ds.test_fraction)
    tok = _tokenizer(scenario, corpus.train)

    def windows(texts, name: str, limit: int | None) -> Dataset:
        return token_windows(texts, tok, ds.seq_len, max_windows=limit, name=name)

    val = _cap(windows(corpus.val, "validation", None), ds.max_validation_samples, rng)
    test = _cap(windows(corpus.test, "test", None), ds.max_test_samples, rng)
    if scenario.partition.kind == "documents":
        per = None if ds.max_train_samples is None else max(1, ds.max_train_samples // n)
        parts = [
            windows(c, f"provider{i}", per) for i, c in enumerate(partition_documents(corpus.train, n, seed))
        ]
        train = Dataset(
            torch.cat([p.x for p in parts]),
            torch.cat([p.y for p in parts]),
            val.num_classes,
            (ds.seq_len,),
            "train",
        )
    else:
        train = _cap(windows(corpus.train, "train", None), ds.max_train_samples, rng)
        order = rng.permutation(len(train))
        parts = [train.subset(np.sort(chunk)) for chunk in np.array_split(order, n)]
    return Workload(Splits(train, val, test), parts, tok)


def prepare_workload(scenario: Scenario) -> Workload:
    """The scenario's splits and provider parts (see the module docstring)."""
    n = scenario.network.data_providers
    return _text(scenario, n) if scenario.dataset.is_text else _labelled(scenario, n)

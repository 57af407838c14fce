"""The dense tail: a state vector's last values (batch-norm statistics) travel exactly."""

import pytest
import torch

from deai.core.tensorio import from_safetensors, to_safetensors
from deai.learn.compression import TAIL, BadCompressed, decompress_with_tail, get_compressor


def _wire(comp, x, tail):
    tensors = comp.compress(x[:-tail])
    return from_safetensors(to_safetensors({**tensors, TAIL: x[-tail:].contiguous()}))


def test_the_tail_comes_back_exactly_and_the_head_as_compressed():
    comp = get_compressor("topk(ratio=0.1)+int2")
    x = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    out = decompress_with_tail(comp, _wire(comp, x, 40), 1000, 40)
    assert torch.equal(out[-40:], x[-40:])
    assert torch.equal(out[:-40], comp.decompress(comp.compress(x[:-40]), 960))
    assert torch.equal(
        decompress_with_tail(comp, comp.compress(x), 1000, 0), comp.decompress(comp.compress(x), 1000)
    )


@pytest.mark.parametrize(
    "change",
    [
        lambda w: w.pop(TAIL),  # missing
        lambda w: w.__setitem__(TAIL, w[TAIL][:-1]),  # short
        lambda w: w.__setitem__(TAIL, w[TAIL].double()),  # wrong dtype
        lambda w: w[TAIL].__setitem__(3, float("inf")),  # not finite
        lambda w: w.__setitem__("header", w["header"].clone().fill_(0)),  # the head is checked too
    ],
)
def test_a_bad_tail_is_refused(change):
    comp = get_compressor("topk(ratio=0.1)+int8")
    wire = dict(_wire(comp, torch.randn(500), 20))
    change(wire)
    with pytest.raises(BadCompressed):
        decompress_with_tail(comp, wire, 500, 20)
    with pytest.raises(BadCompressed):
        decompress_with_tail(comp, _wire(comp, torch.randn(500), 20), 500, 500)  # no head left

"""Error feedback: nothing dropped is lost, and it makes top-k converge where plain top-k stalls."""

import pytest
import torch

from deai.learn.compression import BadCompressed, ErrorFeedback, get_compressor


@pytest.mark.parametrize(
    "spec",
    ["topk(ratio=0.01)+int2", "chunked_topk(ratio=0.02, chunk=256)+int4", "randomk(ratio=0.05)", "int2"],
)
def test_sent_plus_residual_is_what_was_meant(spec):
    d, rounds = 4000, 40
    fb = ErrorFeedback(get_compressor(spec), d)
    gen = torch.Generator().manual_seed(0)
    meant = torch.zeros(d, dtype=torch.float64)
    sent = torch.zeros(d, dtype=torch.float64)
    for r in range(rounds):
        delta = torch.randn(d, generator=gen) * (1 + r % 3)
        step = fb.step(delta, seed=r, generator=gen)
        assert torch.equal(step.sent, fb.compressor.decompress(step.tensors, d))
        meant += delta.double()
        sent += step.sent.double()
    # exact up to float32 rounding of the residual updates (one rounding per round per entry)
    gap = (meant - sent - fb.residual.double()).abs().max()
    assert float(gap) < 1e-4 * float(meant.abs().max() + fb.residual.abs().max())
    # the residual stays bounded: dropped mass is sent later, not piled up forever
    assert float(fb.residual.abs().max()) < 60
    fb.reset()
    assert not bool(fb.residual.any())


def test_refuses_wrong_shape():
    fb = ErrorFeedback(get_compressor("topk(ratio=0.1)"), 10)
    with pytest.raises(BadCompressed):
        fb.step(torch.zeros(11))


def _distance_to_optimum(error_feedback: bool) -> tuple[float, float]:
    """Two providers, f_i(w) = |w - c_i|^2 / 2, each sending top-1 of its step lr * (c_i - w) on
    d = 10. The large coordinates pull the providers apart (+10 / -10); the small ones agree (+1).
    Plain top-k always sends the large, opposed coordinates, which cancel in the average: the model
    never moves. Error feedback accumulates the small ones until they are sent."""
    d, lr, rounds = 10, 0.02, 600
    c1, c2 = torch.ones(d), torch.ones(d)
    c1[:2], c2[:2] = 10.0, -10.0
    opt = (c1 + c2) / 2
    comp = get_compressor("topk(ratio=0.1)")
    feedback = [ErrorFeedback(comp, d) for _ in range(2)]
    w, avg = torch.zeros(d), torch.zeros(d)
    for r in range(rounds):
        sent = []
        for c, fb in zip((c1, c2), feedback, strict=True):
            delta = lr * (c - w)
            sent.append(fb.step(delta).sent if error_feedback else comp.decompress(comp.compress(delta), d))
        w = w + (sent[0] + sent[1]) / 2
        if r >= rounds // 2:
            avg += w / (rounds - rounds // 2)
    return float((w - opt).norm() / opt.norm()), float((avg - opt).norm() / opt.norm())


def test_error_feedback_converges_where_plain_topk_stalls():
    plain_last, plain_avg = _distance_to_optimum(False)
    ef_last, ef_avg = _distance_to_optimum(True)
    assert plain_last == pytest.approx(1.0) and plain_avg == pytest.approx(1.0)  # stalled at the start
    assert ef_avg < 0.05 and ef_last < 0.25

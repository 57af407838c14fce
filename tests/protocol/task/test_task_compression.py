"""Compressed updates through the whole network round: providers compress with error feedback,
the coordinator and every job check and decompress them, secure aggregation masks a shared
random-k support, and DP noise is added before compression."""

import pytest
import torch

from deai.core.tensorio import from_safetensors, to_safetensors
from deai.learn.compression import get_compressor
from deai.protocol.jobs.kinds import get_kind
from deai.protocol.task.errors import BadTaskSpec, BadUpdate
from deai.protocol.task.model import load_sent, param_count, shared_support
from deai.protocol.task.spec import DPSettings, TaskSpec

D = [f"{i:064x}" for i in range(1, 4)]


def test_spec_checks_the_compression():
    base = dict(init=D[0], validation=D[1], in_features=64, num_classes=10)
    assert TaskSpec(**base, compression="topk(ratio=0.01)+int2").compression == "topk(ratio=0.01)+int2"
    for bad in ("zip", "int2+topk(ratio=0.1)", "topk(ratio=2)", 7, "x" * 600):
        with pytest.raises(BadTaskSpec):
            TaskSpec(**base, compression=bad)
    TaskSpec(**base, compression="randomk(ratio=0.1)", secure_aggregation=True)
    for bad in ("topk(ratio=0.1)", "int8", "randomk(ratio=0.1)+int8"):  # no shared support or scales
        with pytest.raises(BadTaskSpec, match="secure aggregation"):
            TaskSpec(**base, compression=bad, secure_aggregation=True)


def test_a_compressed_task_trains_on_small_updates(small_net):
    net = small_net()
    bundle = net.bundle(rounds=3, compression="topk(ratio=0.05)+int8", aggregator="trimmed_mean(trim=1)")
    _task, status = net.run(bundle)
    assert status.phase == "done", status.reason
    d = param_count(bundle.spec)
    store = net.net.store
    sizes = [store.size(digest) for h in status.history for digest in h.updates.values()]
    assert max(sizes) * 10 < 4 * d  # each update is a small fraction of the dense float32 vector
    accuracy = [h.val_accuracy for h in status.history]
    assert accuracy[-1] > max(0.5, accuracy[0])  # it learns (digits chance is 0.1)
    # the jobs decompressed what was sent: re-run the accepted aggregate from the blobs
    h = status.history[-1]
    sent = [load_sent(store.get(u), bundle.spec, d) for u in h.updates.values()]
    assert all(int((s != 0).sum()) <= get_compressor(bundle.spec.compression).max_k(d) for s in sent)


def test_compressed_updates_are_checked_before_use(small_net):
    net = small_net()
    spec = net.bundle(compression="topk(ratio=0.05)+int8").spec
    d = param_count(spec)
    comp = get_compressor(spec.compression)
    good = comp.compress(torch.randn(d))
    assert load_sent(to_safetensors(good), spec, d).shape == (d,)
    bad = dict(good)
    bad["header"] = good["header"].clone()
    bad["header"][1] = d + 1  # claims another length
    for blob in (to_safetensors(bad), to_safetensors({"delta": torch.zeros(d)}), b"junk"):
        with pytest.raises(BadUpdate):
            load_sent(blob, spec, d)


def test_aggregate_job_decompresses_identically_to_dense_inputs():
    d, n = 1000, 5
    comp = get_compressor("chunked_topk(ratio=0.05, chunk=256)+int2")
    wires = [
        from_safetensors(
            to_safetensors(comp.compress(torch.randn(d, generator=torch.Generator().manual_seed(i))))
        )
        for i in range(n)
    ]
    kind = get_kind("aggregate")
    params = {"aggregator": "median", "compression": comp.spec, "dim": d}
    kind.check_params(params)
    assert kind.output_layout(wires, params) == {"delta": ((d,), torch.float32)}
    out = kind.run(wires, params, seed=0)["delta"]
    dense = [{"delta": comp.decompress(w, d)} for w in wires]
    assert torch.equal(out, kind.run(dense, {"aggregator": "median"}, seed=0)["delta"])
    wires[2] = {**wires[2], "scales": -wires[2]["scales"]}  # a malformed update refuses the job
    with pytest.raises(Exception, match="update 2"):
        kind.output_layout(wires, params)


def test_secure_aggregation_masks_a_shared_random_k_support(small_net):
    net = small_net(n=6)
    bundle = net.bundle(
        rounds=2, secure_aggregation=True, bucket_size=3, max_providers=6, compression="randomk(ratio=0.2)"
    )
    _task, status = net.run(bundle)
    assert status.phase == "done", status.reason
    d = param_count(bundle.spec)
    for h in status.history:
        support = shared_support(bundle.spec, h.round, d)
        assert support is not None and len(support) == get_compressor("randomk(ratio=0.2)").max_k(d)
        for digest in h.updates.values():  # bucket means: zero off the round's support
            mean = from_safetensors(net.net.store.get(digest))["delta"]
            off = torch.ones(d, dtype=torch.bool)
            off[support] = False
            assert int((mean[off] != 0).sum()) == 0 and int((mean[support] != 0).sum()) > 0


def test_local_dp_noise_is_added_before_compression(small_net):
    net = small_net()
    dp = DPSettings(mode="local", clip=1.0, noise_multiplier=0.5)
    bundle = net.bundle(rounds=2, dp=dp, compression="topk(ratio=0.1)+int8")
    _task, status = net.run(bundle)
    assert status.phase == "done", status.reason
    assert status.epsilon is not None and status.epsilon > 0


def test_the_global_update_is_broadcast_compressed_and_rebuilt_by_providers(small_net, monkeypatch):
    net = small_net()
    fetched: list[str] = []
    get_blob = net.data_daemon.client.get_blob

    def counting(digest):
        fetched.append(digest)
        return get_blob(digest)

    monkeypatch.setattr(net.data_daemon.client, "get_blob", counting)
    bundle = net.bundle(
        rounds=3, compression="topk(ratio=0.05)+int8", global_compression="topk(ratio=0.2)+int8"
    )
    task, status = net.run(bundle)
    assert status.phase == "done", status.reason
    coord = net.net.hub.coordinators[task]
    checkpoints = [bundle.spec.init] + [h.checkpoint for h in status.history]
    # rounds 2 and 3 started from rebuilt checkpoints: the providers never downloaded them
    assert checkpoints[0] in fetched and checkpoints[1] not in fetched and checkpoints[2] not in fetched
    assert fetched[:2] == [task.removeprefix("0x"), bundle.spec.init] and len(fetched) == 4  # + 2 patches
    # every checkpoint is the previous one plus the decompressed global update (anyone can check)
    d = param_count(bundle.spec)
    store = net.net.store
    patch = store.get(coord.state.global_update)
    from deai.protocol.task.broadcast import apply_patch

    rebuilt = apply_patch(bundle.spec, store.get(checkpoints[2]), patch, d, checkpoints[3])
    assert rebuilt == store.get(checkpoints[3])
    with pytest.raises(BadUpdate):
        apply_patch(bundle.spec, store.get(checkpoints[1]), patch, d, checkpoints[3])  # wrong base
    assert status.history[-1].val_accuracy > 0.3


def test_a_provider_whose_update_cannot_be_encoded_skips_the_round(small_net, monkeypatch):
    from deai.protocol.task.provider import ProviderPool

    net = small_net()
    spec = net.bundle(compression="topk(ratio=0.05)+int8").spec
    pool = ProviderPool(net.providers, net.datasets)
    broken = sorted(a.address for a in net.providers)[1]
    privatize = ProviderPool._privatize

    def diverged(self, spec, round, address, delta, expected):
        out = privatize(self, spec, round, address, delta, expected)
        return out * float("nan") if address == broken else out  # a model that blew up

    monkeypatch.setattr(ProviderPool, "_privatize", diverged)
    roster = [a.address for a in net.providers]
    sent = pool.train(spec, 1, net.bundle().init, roster, len(roster))
    assert sorted(u.provider for u in sent) == sorted(a for a in roster if a != broken)


def test_batch_norm_statistics_travel_dense_in_a_compressed_update(small_net):
    from deai.protocol.task.model import dense_tail

    net = small_net()
    spec = net.bundle(
        model="resnet", model_kwargs={"widths": [4, 8]}, compression="topk(ratio=0.01)+int2"
    ).spec
    tail = dense_tail(spec)
    assert tail > 0  # running means and variances (and the batch counters are not floats)
    d = param_count(spec)
    delta = torch.randn(d, generator=torch.Generator().manual_seed(1))
    from deai.protocol.task.provider import ProviderPool

    pool = ProviderPool(net.providers[:1], {net.providers[0].address: net.splits.train.subset([0, 1])})
    blob, sent = pool._compress(spec, 1, net.providers[0].address, delta)
    assert torch.equal(sent[-tail:], delta[-tail:])  # exact
    assert torch.equal(load_sent(blob, spec, d), sent)  # what every receiver rebuilds
    assert len(blob) < 4 * d // 5  # smaller than dense float32 even on this tiny model (headers dominate)


def test_compressed_robust_secure_and_private_in_one_task(small_net):
    net = small_net(n=6)
    dp = DPSettings(mode="distributed", clip=1.0, noise_multiplier=0.3)
    bundle = net.bundle(
        rounds=2,
        secure_aggregation=True,
        bucket_size=2,
        max_providers=6,
        dp=dp,
        compression="randomk(ratio=0.3)",
        global_compression="topk(ratio=0.3)+int8",
    )
    assert bundle.spec.aggregator == "default"  # robust without asking
    _task, status = net.run(bundle)
    assert status.phase == "done", status.reason
    assert status.epsilon is not None and status.epsilon > 0
    assert all(
        "root_gate+centered_clipping" in h.defense and "bucket means" in h.defense for h in status.history
    )

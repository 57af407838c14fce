"""The whole task lifecycle over the in-memory transport: rounds, jobs, payouts, model, refunds."""

from deai.ledger.commitments import model_id
from deai.ledger.merkle import shares_tree


def test_task_completes_pays_and_registers_the_model(small_net):
    net = small_net()
    ledger = net.net.ledger
    before = {p.address: ledger.balance(p.address) for p in net.providers}
    creator_before = ledger.balance(net.creator.address)
    task, status = net.run(net.bundle(rounds=3, aggregator="trimmed_mean(trim=1)"))
    assert status.phase == "done" and status.reason is None
    history = status.history
    assert [h.round for h in history] == [1, 2, 3]
    assert history[-1].val_accuracy > 0.6 > history[0].val_accuracy - 0.3
    # every round's checkpoint is on the ledger and is the blob the round recorded
    for h in history:
        assert ledger.checkpoint(task, h.round) == "0x" + h.checkpoint
    # the model is registered by the coordinator with provenance over the contributors
    model = ledger.model(status.model)
    assert model.task == task and model.owner == ledger.task(task).coordinator
    assert status.model == model_id(model.owner, task, model.document)
    doc = net.net.store.get(model.document[2:])
    import json

    assert json.loads(doc)["checkpoint"] == "0x" + history[-1].checkpoint  # the document names it
    shares = json.loads(doc)["shares"]
    assert set(shares) == {p.address for p in net.providers}
    assert shares_tree(shares).root == model.provenance
    # data providers were paid by score (claimed, task stake back), nothing left in escrow
    assert all(ledger.balance(p.address) > before[p.address] for p in net.providers)
    supply = ledger.check_invariants()
    assert supply["task_escrow"] == 0 and supply["unclaimed_payouts"] == 0 and supply["job_escrow"] == 0
    assert ledger.task(task).status == "closed"
    spent = creator_before - ledger.balance(net.creator.address)
    assert 0 < spent <= 6_000
    assert ledger.verify().ok


def test_round_proceeds_without_a_silent_provider(small_net):
    net = small_net(n=5)
    silent = net.providers[4].address
    net.data_daemon.roles["data_provider"].accounts.pop(silent)  # it joined nothing and sends nothing
    _task, status = net.run(net.bundle(rounds=2, max_providers=5))
    assert status.phase == "done"
    assert all(silent not in h.contributors for h in status.history)
    assert len(status.history[0].contributors) == 4


def test_too_few_providers_fails_and_refunds(small_net):
    net = small_net(n=2)
    ledger = net.net.ledger
    before = ledger.balance(net.creator.address)
    task, status = net.run(net.bundle(min_providers=3, max_providers=3))
    assert status.phase == "failed" and "only 2 providers joined" in status.reason
    assert ledger.balance(net.creator.address) == before
    assert ledger.task(task).status == "closed"


def test_cheating_executor_is_slashed_and_the_round_stands(small_net):
    net = small_net(m=4, compute_behaviours={0: "fake_result"})
    ledger = net.net.ledger
    stakes = {c.address: ledger.stake(c.address, "compute_provider") for c in net.computes}
    _task, status = net.run(net.bundle(rounds=2, sample_rate=1.0, redundancy=3))
    assert status.phase == "done"
    cheats = {net.computes[0].address}
    faulted = {a for h in status.history for a in h.faulted}
    assert faulted and faulted <= cheats
    for c in net.computes:
        now = ledger.stake(c.address, "compute_provider")
        assert (now < stakes[c.address]) == (c.address in faulted)


def test_root_gate_task_verifies_its_root_update_in_the_aggregation_job(small_net):
    from deai.protocol.jobs.spec import JobSpec

    net = small_net(provider_behaviours={0: "sign_flip"})
    bundle = net.bundle(rounds=2, aggregator="root_gate+centered_clipping", f=1)
    _task, status = net.run(bundle)
    assert status.phase == "done", status.reason
    first, second = status.history
    job_id = second.aggregate_job
    job = JobSpec.from_bytes(net.net.store.get(job_id.removeprefix("0x")), job_id=job_id)
    # the executors trained the round's starting checkpoint on the task's validation data
    assert job.params["root"]["recipe"]["lr"] == 0.1 and job.inputs[:2] == (
        first.checkpoint,
        bundle.spec.validation,
    )
    assert second.val_accuracy > 0.5

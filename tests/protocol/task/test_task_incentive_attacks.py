"""Incentive attacks through the whole network round: copies and replays earn nothing.

A wrapper around the providers' training replaces one provider's update by another's (what a
copier or a replayer sends); the coordinator, the verified score job and the score book must flag
it, pay it nothing, and leave the credit with the provider that committed the update first.
"""

import dataclasses

from deai.protocol.task import provider as provider_module
from deai.protocol.task.statements import UpdateStatement


def _resend(trained, source, account, round):
    """``trained`` re-signed by ``account`` over ``source``'s blob (a copy or a replay)."""
    st = UpdateStatement.sign(
        account, trained.statement.task, round, source.digest, trained.statement.samples
    )
    return dataclasses.replace(
        trained, blob=source.blob, digest=source.digest, delta=source.delta, statement=st
    )


def _payouts(net, task):
    return {
        a: net.net.hub.coordinators[task].state.earned.get(a, 0) for a in (p.address for p in net.providers)
    }


def test_a_copy_earns_nothing_and_the_first_committer_keeps_the_credit(small_net, monkeypatch):
    net = small_net(n=6)
    by_address = sorted(net.providers, key=lambda a: a.address)
    copier, original = by_address[0], by_address[-1]  # the copier sorts first but commits after
    train = provider_module.ProviderPool.train

    def copying(self, spec, round, checkpoint, providers, expected):
        out = train(self, spec, round, checkpoint, providers, expected)
        src = next(u for u in out if u.provider == original.address)
        out = [_resend(u, src, copier, round) if u.provider == copier.address else u for u in out]
        # the original's statement goes first: it committed first
        return sorted(out, key=lambda u: u.provider != original.address)

    monkeypatch.setattr(provider_module.ProviderPool, "train", copying)
    task, status = net.run(net.bundle(rounds=2))
    assert status.phase == "done"
    for record in status.history:
        assert record.contributors == sorted(record.contributors)  # jobs see a canonical order
        assert record.scores[copier.address] == 0.0
        assert record.scores[original.address] != 0.0  # the credit follows the commit order
    book = status.scores
    assert all(book["flags"][str(r)][copier.address] == "COPY" for r in (1, 2))
    assert all(original.address not in book["flags"][str(r)] for r in (1, 2))
    paid = _payouts(net, task)
    assert paid[copier.address] == 0 and paid[original.address] > 0


def test_a_replay_of_an_earlier_round_earns_nothing(small_net, monkeypatch):
    net = small_net(n=6)
    replayer, victim = net.providers[0], net.providers[1]
    train = provider_module.ProviderPool.train
    sent: dict[int, object] = {}

    def replaying(self, spec, round, checkpoint, providers, expected):
        out = train(self, spec, round, checkpoint, providers, expected)
        sent[round] = next(u for u in out if u.provider == victim.address)
        if round >= 2:  # the victim's previous update is public in the task history
            out = [
                _resend(u, sent[round - 1], replayer, round) if u.provider == replayer.address else u
                for u in out
            ]
        return out

    monkeypatch.setattr(provider_module.ProviderPool, "train", replaying)
    _task, status = net.run(net.bundle(rounds=3))
    assert status.phase == "done"
    book = status.scores
    for r in (2, 3):
        assert book["flags"][str(r)][replayer.address] == "REPLAY"
        assert book["replays"][str(r)][replayer.address] == [r - 1, victim.address]
        assert status.history[r - 1].scores[replayer.address] == 0.0
    assert victim.address not in book["flags"].get("2", {})  # the victim's fresh update is no copy

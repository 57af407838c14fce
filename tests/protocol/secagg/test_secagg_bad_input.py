"""Bad input is refused with a clear error; a round completes correctly or aborts, never a wrong sum."""

import dataclasses

import numpy as np
import pytest

from deai.core.accounts import Account
from deai.protocol.secagg import RoundAborted, SecAggClient, SecAggConfig, SecAggServer
from deai.protocol.secagg.errors import (
    AuthenticationFailed,
    DuplicateMessage,
    ForgedShare,
    InconsistentRequest,
    MalformedMessage,
    NonFiniteInput,
    UnexpectedMessage,
)
from deai.protocol.secagg.messages import MaskedInput, ShareKeys, UnmaskRequest, UnmaskShares, decode, encode
from deai.protocol.secagg.phases import Phase

ACCOUNTS = [Account.from_seed("secagg-bad", i) for i in range(8)]
N, D = 8, 16


class Round:
    """Steps a round by hand so a test can tamper with any message."""

    def __init__(self, tag="bad"):
        self.cfg = SecAggConfig(tuple(a.address for a in ACCOUNTS), D, tag=tag)
        self.clients = [SecAggClient(self.cfg, u, ACCOUNTS[u], seed=b"%d" % u) for u in range(N)]
        self.server = SecAggServer(self.cfg)
        self.x = np.random.default_rng(0).uniform(-1, 1, (N, D))
        for u in range(N):
            self.server.receive(self.clients[u].start(self.x[u]))
        self.inbox = self.server.close_phase()

    def replies(self, skip=()):
        return {u: self.clients[u].handle(m) for u, m in self.inbox.items() if u not in skip}

    def step(self, skip=(), replies=None):
        for msg in (replies or self.replies(skip)).values():
            self.server.receive(msg)
        self.inbox = self.server.close_phase()

    def run_to(self, phase, skip_masked=()):
        order = [Phase.SHARE, Phase.MASKED, Phase.CONSISTENCY, Phase.UNMASK]
        for p in order[: order.index(phase)]:
            self.step(skip=skip_masked if p == Phase.MASKED else ())


def expected_sum(r, included):
    total = np.zeros(D, dtype=r.cfg.ring.dtype)
    for u in included:
        total += r.cfg.ring.encode(r.x[u])[0]
    return r.cfg.ring.decode(total, len(included))


def test_masked_vector_of_wrong_size_is_refused_and_round_completes():
    r = Round()
    r.run_to(Phase.MASKED)
    replies = r.replies()
    short = MaskedInput(0, replies[0].vector[:-1])
    with pytest.raises(MalformedMessage, match="masked vector"):
        r.server.receive(short)
    with pytest.raises(MalformedMessage, match="masked vector is"):
        decode(encode(short, r.cfg), r.cfg)
    with pytest.raises(MalformedMessage, match="masked vector"):
        r.server.receive(MaskedInput(0, replies[0].vector.astype(np.uint64)))
    r.step(replies=replies)  # the genuine message is still accepted
    r.step()
    r.step()
    np.testing.assert_array_equal(r.server.result.total, expected_sum(r, range(N)))


def test_duplicate_message_and_late_message_are_refused():
    r = Round()
    replies = r.replies()
    r.server.receive(replies[1])
    with pytest.raises(DuplicateMessage):
        r.server.receive(replies[1])
    for u, m in replies.items():
        if u not in (1, 2):
            r.server.receive(m)
    r.inbox = r.server.close_phase()
    with pytest.raises(UnexpectedMessage, match="takes MaskedInput"):  # provider 2 missed the deadline
        r.server.receive(replies[2])
    with pytest.raises(UnexpectedMessage, match="not live"):  # and cannot rejoin later
        r.server.receive(MaskedInput(2, np.zeros(D, dtype=np.uint32)))


def test_truncated_or_trailing_bytes_and_other_round_are_refused():
    r = Round()
    msg = r.replies()[0]
    data = encode(msg, r.cfg)
    with pytest.raises(MalformedMessage):
        decode(data[:-5], r.cfg)
    with pytest.raises(MalformedMessage, match="trailing"):
        decode(data + b"\x00", r.cfg)
    other = SecAggConfig(r.cfg.roster, D, tag="another round")
    with pytest.raises(MalformedMessage, match="another round"):
        decode(data, other)


def test_share_of_wrong_size_and_duplicate_share_entries_are_refused():
    r = Round()
    msg = r.replies()[3]
    bad = ShareKeys(
        3,
        ((msg.entries[0][0], msg.entries[0][1][:-1], *msg.entries[0][2:]), *msg.entries[1:]),
        msg.seed_commitment,
    )
    with pytest.raises(MalformedMessage, match="wrong size"):
        r.server.receive(bad)
    dup = ShareKeys(3, (msg.entries[0], *msg.entries), msg.seed_commitment)
    with pytest.raises(DuplicateMessage):
        r.server.receive(dup)


def test_tampered_share_ciphertext_is_detected_by_the_holder():
    r = Round()
    r.step()
    inbox = r.inbox[4]
    d, ct = inbox.ciphertexts[0]
    forged = dataclasses.replace(
        inbox, ciphertexts=((d, ct[:-1] + bytes([ct[-1] ^ 1])), *inbox.ciphertexts[1:])
    )
    with pytest.raises(ForgedShare, match="authentication"):
        r.clients[4].handle(forged)
    assert r.clients[4].phase == Phase.ABORTED


def test_forged_revealed_share_is_refused_and_the_sum_is_still_exact():
    r = Round()
    r.run_to(Phase.UNMASK, skip_masked=(6,))
    replies = r.replies()
    owner, kind, share = replies[0].entries[0]
    forged = UnmaskShares(0, ((owner, kind, share[:-1] + bytes([share[-1] ^ 1])), *replies[0].entries[1:]))
    with pytest.raises(ForgedShare, match="commitment"):
        r.server.receive(forged)
    wrong_kind = UnmaskShares(0, ((owner, 1 - kind, share), *replies[0].entries[1:]))
    with pytest.raises(ForgedShare, match="wrong kind"):
        r.server.receive(wrong_kind)
    for u, m in replies.items():
        if u != 0:
            r.server.receive(m)
    r.server.close_phase()  # 7 honest holders are enough (threshold 4)
    np.testing.assert_array_equal(r.server.result.total, expected_sum(r, [u for u in range(N) if u != 6]))


def test_bad_key_signature_is_refused():
    r = Round.__new__(Round)
    r.cfg = SecAggConfig(tuple(a.address for a in ACCOUNTS), D, tag="sig")
    server = SecAggServer(r.cfg)
    msg = SecAggClient(r.cfg, 0, ACCOUNTS[0]).start(np.zeros(D))
    impostor = dataclasses.replace(msg, party=1)  # provider 0's keys claimed as provider 1's
    with pytest.raises(AuthenticationFailed):
        server.receive(impostor)
    with pytest.raises(ValueError, match="not provider"):
        SecAggClient(r.cfg, 1, ACCOUNTS[0])


def test_client_refuses_request_for_both_self_mask_and_mask_key_shares():
    """The classic consistency rule: revealing both would unmask that provider's single update."""
    r = Round()
    r.run_to(Phase.UNMASK, skip_masked=(5,))
    req = r.inbox[0]
    assert req.dropped == (5,)
    lying = UnmaskRequest(
        0, req.survivors, tuple(sorted((*req.dropped, 3))), req.signatures
    )  # 3 did send its input
    with pytest.raises(InconsistentRequest, match="both the self-mask share and the mask-key share"):
        r.clients[0].handle(lying)
    with pytest.raises(UnexpectedMessage):  # an aborted client answers nothing more
        r.clients[0].handle(req)


def test_client_refuses_a_survivor_set_other_than_the_signed_one_or_without_majority():
    r = Round()
    r.run_to(Phase.UNMASK, skip_masked=(5,))
    req = r.inbox[1]
    claim_dropped = tuple(u for u in req.survivors if u != 3)
    with pytest.raises(InconsistentRequest, match="other than the one this client signed"):
        r.clients[1].handle(UnmaskRequest(1, claim_dropped, (3, 5), req.signatures))
    few = UnmaskRequest(2, r.inbox[2].survivors, r.inbox[2].dropped, r.inbox[2].signatures[:3])
    with pytest.raises(InconsistentRequest, match="signatures"):
        r.clients[2].handle(few)
    fake = ((req.signatures[0][0], req.signatures[1][1]), *req.signatures[1:])
    with pytest.raises(AuthenticationFailed):
        r.clients[4].handle(UnmaskRequest(4, req.survivors, req.dropped, fake))


def test_client_refuses_to_mask_with_too_few_neighbours():
    r = Round()
    inbox = r.inbox[0]
    starved = dataclasses.replace(inbox, keys=inbox.keys[:2])
    with pytest.raises(RoundAborted, match="neighbours"):
        r.clients[0].handle(starved)


def test_non_finite_update_is_refused():
    cfg = SecAggConfig(tuple(a.address for a in ACCOUNTS), D, tag="nan")
    x = np.zeros(D)
    x[3] = np.nan
    with pytest.raises(NonFiniteInput):
        SecAggClient(cfg, 0, ACCOUNTS[0]).start(x)
    x[3] = np.inf
    with pytest.raises(NonFiniteInput):
        SecAggClient(cfg, 1, ACCOUNTS[1]).start(x)


def test_too_many_dropouts_abort_cleanly():
    r = Round()
    r.step()
    with pytest.raises(RoundAborted, match="need"):
        r.step(skip=(0, 1, 2, 3, 4))
    assert r.server.phase == Phase.ABORTED and r.server.result is None


def test_provider_masking_with_wrong_keys_makes_the_round_abort_not_lie():
    r = Round()
    r.run_to(Phase.MASKED)
    replies = r.replies()
    garbage = np.random.default_rng(1).integers(0, 2**32, D, dtype=np.uint64).astype(np.uint32)
    replies[2] = MaskedInput(2, garbage)
    r.step(replies=replies)
    r.step()
    with pytest.raises(RoundAborted, match="masked incorrectly"):
        r.step()
    assert r.server.result is None


def test_dealer_with_inconsistent_shares_makes_the_round_abort(monkeypatch):
    from deai.protocol.secagg import shamir

    r = Round()
    honest_split = shamir.split

    def bad_split(secret, xs, t, rand):  # shares that lie on no degree t-1 polynomial
        return [(y + i * i) % shamir.PRIME for i, y in enumerate(honest_split(secret, xs, t, rand))]

    replies = {}
    for u, m in r.inbox.items():
        if u == 3:
            monkeypatch.setattr(shamir, "split", bad_split)
        replies[u] = r.clients[u].handle(m)
        monkeypatch.setattr(shamir, "split", honest_split)
    r.step(replies=replies)
    r.step()
    r.step()
    with pytest.raises(RoundAborted, match="provider 3 dealt inconsistent shares"):
        r.step()

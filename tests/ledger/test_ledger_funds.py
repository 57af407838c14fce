"""Conformance: funds, nonces, authority, refusals leave state byte-identical."""

from __future__ import annotations

import json

import pytest

from deai.core.accounts import Account
from deai.ledger import COMPUTE, DATA, HOST, SignedTx, errors, txs


def refused(net, account, tx, error, nonce=None):
    """Submit ``tx`` and check it is refused with ``error`` and changes nothing."""
    ledger = net.ledger
    root, head = ledger.state_root(), ledger.head()
    with pytest.raises(error) as info:
        ledger.submit(ledger.sign(account, tx, nonce=nonce))
    assert ledger.state_root() == root and ledger.head() == head
    return str(info.value)


def test_mint_transfer_and_conservation(net):
    a, b = net.accounts[1], net.accounts[2]
    receipt = net.send(net.minter, txs.Mint(to=a.address, amount=5_000))
    assert receipt.height == 0 and receipt.event("minted").data == {"to": a.address, "amount": 5_000}
    net.send(a, txs.Transfer(to=b.address, amount=1_234))
    assert net.ledger.balance(a.address) == 3_766 and net.ledger.balance(b.address) == 1_234
    assert net.ledger.nonce(a.address) == 1 and net.ledger.nonce(b.address) == 0
    assert net.ledger.check_invariants()["minted"] == 5_000
    assert net.ledger.head().height == 2


def test_only_minter_mints_and_supply_cap(net):
    a = net.accounts[1]
    msg = refused(net, a, txs.Mint(to=a.address, amount=1), errors.NotAuthorized)
    assert "only" in msg and a.address in msg
    net.fund(a, 2**53 - 10)
    refused(net, net.minter, txs.Mint(to=a.address, amount=10), errors.SupplyCapExceeded)


def test_insufficient_balance_names_amounts(net):
    a, b = net.accounts[1], net.accounts[2]
    net.fund(a, 10)
    msg = refused(net, a, txs.Transfer(to=b.address, amount=11), errors.InsufficientBalance)
    assert "10" in msg and "11" in msg


def test_nonces_replay_and_out_of_order(net):
    a, b = net.accounts[1], net.accounts[2]
    net.fund(a, 100)
    first = net.ledger.sign(a, txs.Transfer(to=b.address, amount=1))
    net.ledger.submit(first)
    with pytest.raises(errors.ReplayedNonce):
        net.ledger.submit(first)
    with pytest.raises(errors.ReplayedNonce):
        net.ledger.submit(first.to_bytes())
    refused(net, a, txs.Transfer(to=b.address, amount=1), errors.BadNonce, nonce=5)
    # a refused transaction does not consume its nonce
    refused(net, a, txs.Transfer(to=b.address, amount=1_000), errors.InsufficientBalance)
    assert net.send(a, txs.Transfer(to=b.address, amount=1)).nonce == 1


def test_wrong_network_and_signature(net):
    a, b = net.accounts[1], net.accounts[2]
    net.fund(a, 100)
    other = SignedTx.create(a, txs.Transfer(to=b.address, amount=1), nonce=0, network="elsewhere")
    with pytest.raises(errors.WrongNetwork):
        net.ledger.submit(other)
    good = net.ledger.sign(a, txs.Transfer(to=b.address, amount=1))
    forged = SignedTx(good.tx, a.address, good.nonce, good.network, b.sign(good.signing_bytes))
    with pytest.raises(errors.BadTxSignature, match="signed by"):
        net.ledger.submit(forged)
    wire = good.to_dict()
    wire["body"]["amount"] = 99  # altered after signing
    with pytest.raises(errors.BadTxSignature):
        net.ledger.submit(json.dumps(wire).encode())
    assert net.ledger.balance(b.address) == 0
    net.ledger.submit(good)  # the ledger keeps serving
    assert net.ledger.balance(b.address) == 1


def test_bad_input_is_refused_with_reasons(net):
    a = net.accounts[1]
    cases = [
        (b"not json", errors.MalformedTx, "JSON"),
        (b"[1, 2]", errors.MalformedTx, "object"),
        (b"{}", errors.MalformedTx, "missing"),
        (b"x" * 70_000, errors.TxTooLarge, "limit"),
    ]
    for raw, error, words in cases:
        with pytest.raises(error, match=words):
            net.ledger.submit(raw)
    stx = net.ledger.sign(a, txs.Transfer(to=a.address, amount=1))
    for field, value, words in [
        ("kind", "steal", "unknown transaction kind"),
        ("nonce", -1, "nonce"),
        ("signature", "0x1234", "65 bytes"),
        ("sender", a.address.lower(), "checksummed"),
        ("extra", 1, "unknown field"),
    ]:
        wire = {**stx.to_dict(), field: value}
        with pytest.raises(errors.MalformedTx, match=words):
            net.ledger.submit(json.dumps(wire).encode())
    for body, words in [
        ({"to": a.address, "amount": 0}, "amount"),
        ({"to": a.address, "amount": 2**60}, "amount"),
        ({"to": a.address, "amount": True}, "amount"),
        ({"to": a.address}, "missing"),
        ({"to": "0x12", "amount": 1}, "address"),
    ]:
        with pytest.raises(errors.MalformedTx, match=words):
            net.ledger.submit(json.dumps({**stx.to_dict(), "body": body}).encode())
    with pytest.raises(errors.MalformedTx):
        net.ledger.submit("a string")  # type: ignore[arg-type]
    assert net.ledger.head().height == 0


def test_stake_unstake_unbonding_withdraw(net, ledger_factory):
    p = net.accounts[3]
    net.fund(p, 5_000)
    refused(net, p, txs.Stake(role=COMPUTE, amount=999), errors.StakeBelowMinimum)
    refused(net, p, txs.Stake(role=COMPUTE, amount=6_000), errors.InsufficientBalance)
    net.send(p, txs.Stake(role=COMPUTE, amount=3_000))
    net.send(p, txs.Stake(role=DATA, amount=100))
    assert net.ledger.stake(p.address, COMPUTE) == 3_000 and net.ledger.balance(p.address) == 1_900
    refused(net, p, txs.Unstake(role=COMPUTE, amount=2_500), errors.StakeBelowMinimum)
    refused(net, p, txs.Unstake(role=COMPUTE, amount=3_001), errors.InsufficientStake)
    refused(net, p, txs.Withdraw(role=COMPUTE), errors.NothingToWithdraw)
    r = net.send(p, txs.Unstake(role=COMPUTE, amount=2_000))
    release = r.event("unstaked").data["release"]
    assert release == net.clock.now + 10_000
    assert net.ledger.unbonding(p.address, COMPUTE).to_json() == {"amount": 2_000, "release": release}
    assert net.ledger.supply()["unbonding"] == 2_000
    refused(net, p, txs.Withdraw(role=COMPUTE), errors.StillUnbonding)
    net.clock.advance(10_000)
    net.send(p, txs.Withdraw(role=COMPUTE))
    assert net.ledger.balance(p.address) == 3_900 and net.ledger.unbonding(p.address, COMPUTE) is None
    net.send(p, txs.Unstake(role=COMPUTE, amount=1_000))  # to zero is fine
    assert net.ledger.stake(p.address, COMPUTE) == 0
    net.ledger.check_invariants()


def test_slash_and_reputation_need_their_authority(net, ledger_factory, make_config):
    p = net.accounts[3]
    net.staked(p, HOST, 2_000)
    refused(net, p, txs.Slash(account=p.address, role=HOST, amount=1), errors.NotAuthorized)
    refused(net, p, txs.UpdateReputation(account=p.address, role=HOST, delta=5), errors.NotAuthorized)
    refused(net, net.minter, txs.Slash(account=p.address, role=HOST, amount=2_001), errors.InsufficientStake)
    net.send(net.minter, txs.Slash(account=p.address, role=HOST, amount=500, reason="wrong answer"))
    assert net.ledger.stake(p.address, HOST) == 1_500 and net.ledger.supply()["burned"] == 500
    net.send(net.minter, txs.UpdateReputation(account=p.address, role=HOST, delta=-3))
    assert net.ledger.reputation(p.address, HOST) == -3
    assert net.ledger.check_invariants()["minted"] == 2_000
    oracle = Account.from_seed("oracle", 0)
    other = ledger_factory(make_config(reputation_oracle=oracle.address, network="n2"))
    with pytest.raises(errors.NotAuthorized):
        other.send(net.minter, txs.UpdateReputation(account=p.address, role=HOST, delta=1))
    other.send(oracle, txs.UpdateReputation(account=p.address, role=HOST, delta=1))
    assert other.reputation(p.address, HOST) == 1


def test_submit_many_mixes_receipts_and_errors(net):
    a, b = net.accounts[1], net.accounts[2]
    net.fund(a, 10)
    batch = [
        SignedTx.create(a, txs.Transfer(to=b.address, amount=4), nonce=0, network="deai-test"),
        SignedTx.create(a, txs.Transfer(to=b.address, amount=40), nonce=1, network="deai-test"),
        SignedTx.create(a, txs.Transfer(to=b.address, amount=5), nonce=1, network="deai-test").to_bytes(),
        b"garbage",
    ]
    results = net.ledger.submit_many(batch)
    assert [type(r).__name__ for r in results] == ["Receipt", "InsufficientBalance", "Receipt", "MalformedTx"]
    assert results[2].height == results[0].height + 1
    assert net.ledger.balance(b.address) == 9
    assert [r.kind for r in net.ledger.history(a.address)] == ["transfer", "transfer"]
    assert net.ledger.verify().ok


def test_events_cursor(net):
    a = net.accounts[1]
    for _ in range(3):
        net.fund(a, 7)
    events = net.ledger.events()
    assert [e.seq for e in events] == [0, 1, 2] and {e.kind for e in events} == {"minted"}
    assert [e.seq for e in net.ledger.events(since=1, limit=1)] == [1]
    assert net.ledger.events(since=3) == []
    assert [e.height for e in events] == [0, 1, 2]


def test_fast_signature_path_agrees_with_core():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from deai.core.accounts import recover_signer
    from deai.ledger.tx import _recover_fast

    accounts = [Account.from_seed("fast", i) for i in range(4)]

    @settings(max_examples=50, deadline=None)
    @given(st.binary(max_size=300), st.integers(0, 3), st.integers(0, 64 * 8 - 1))
    def check(data, who, flip):
        sig = accounts[who].sign(data)
        assert "0x" + _recover_fast(data, sig).hex() == recover_signer(data, sig).lower()
        bad = bytearray(sig)
        bad[flip // 8] ^= 1 << (flip % 8)
        fast = _recover_fast(data, bytes(bad))
        try:
            core = recover_signer(data, bytes(bad)).lower()
        except Exception:
            core = None
        assert (None if fast is None else "0x" + fast.hex()) == core

    check()

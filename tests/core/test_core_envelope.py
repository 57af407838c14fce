import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deai.core.accounts import Account
from deai.core.envelope import Envelope, EnvelopeVerifier, ReplayCache
from deai.core.errors import (
    BadSignature,
    BodyTooLarge,
    EnvelopeError,
    MalformedEnvelope,
    ReplayedNonce,
    SenderMismatch,
    StaleTimestamp,
    UnknownMessageType,
    WrongNetwork,
)

NET = "testnet"
NOW = 1_700_000_000_000
ALICE = Account.from_seed("alice")
BOB = Account.from_seed("bob")


def verifier(**kw):
    return EnvelopeVerifier(NET, {"update", "hello"}, **kw)


def seal(acct=ALICE, type="update", body=None, network=NET, **kw):
    kw.setdefault("timestamp", NOW)
    return Envelope.seal(
        acct, type, body if body is not None else {"round": 3, "digest": "ab"}, network, **kw
    )


def test_valid_envelope_passes_in_every_form():
    env = seal()
    assert verifier().verify(env, now=NOW) == env
    assert verifier().verify(env.to_bytes(), now=NOW) == env
    assert verifier().verify(env.to_dict(), now=NOW) == env
    assert Envelope.from_bytes(env.to_bytes()) == env


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_tampered_byte_fails(data):
    raw = bytearray(seal(nonce=42).to_bytes())
    i = data.draw(st.integers(0, len(raw) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != raw[i]))
    raw[i] = new
    with pytest.raises(EnvelopeError):
        verifier().verify(bytes(raw), now=NOW)


def test_each_refusal_has_its_own_error():
    cases = [
        (seal(network="mainnet"), WrongNetwork),
        (seal(type="mint"), UnknownMessageType),
        (seal(timestamp=NOW - 301_000), StaleTimestamp),
        (seal(timestamp=NOW + 301_000), StaleTimestamp),
        (seal(body={"blob": "x" * 2000}), BodyTooLarge),
    ]
    for env, err in cases:
        with pytest.raises(err):
            verifier(max_body_bytes=1000).verify(env, now=NOW)


def test_sender_mismatch_and_bad_signature():
    env = seal()
    forged = Envelope(env.type, env.body, BOB.address, env.nonce, env.timestamp, env.network, env.signature)
    with pytest.raises(SenderMismatch):
        verifier().verify(forged, now=NOW)
    d = env.to_dict()
    d["signature"] = "0x" + "00" * 64 + "1b"
    with pytest.raises(BadSignature):
        verifier().verify(d, now=NOW)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("nonce"),
        lambda d: d.update(extra=1),
        lambda d: d.update(nonce=-1),
        lambda d: d.update(nonce=True),
        lambda d: d.update(timestamp="now"),
        lambda d: d.update(sender="0x1234"),
        lambda d: d.update(signature="0x00"),
        lambda d: d.update(body=[1, 2]),
    ],
)
def test_malformed_fields(mutate):
    d = seal().to_dict()
    mutate(d)
    with pytest.raises(MalformedEnvelope):
        verifier().verify(d, now=NOW)


def test_malformed_bytes():
    with pytest.raises(MalformedEnvelope, match="not valid JSON"):
        verifier().verify(b"{nope", now=NOW)
    with pytest.raises(MalformedEnvelope, match="over the limit"):
        verifier(max_body_bytes=10).verify(b"x" * 10_000, now=NOW)
    with pytest.raises(MalformedEnvelope):
        verifier().verify(json.dumps([1]).encode(), now=NOW)


def test_replay_rejected_including_across_restart(tmp_path):
    env = seal()
    v1 = verifier(replay_cache=ReplayCache(tmp_path / "r.sqlite"))
    v1.verify(env, now=NOW)
    with pytest.raises(ReplayedNonce):
        v1.verify(env, now=NOW)
    v1.replay_cache.close()
    v2 = verifier(replay_cache=ReplayCache(tmp_path / "r.sqlite"))  # a restarted receiver
    with pytest.raises(ReplayedNonce):
        v2.verify(env, now=NOW + 1000)
    # same nonce from another sender is fine
    v2.verify(seal(acct=BOB, nonce=env.nonce), now=NOW)


def test_replay_cache_is_bounded_and_eviction_never_reopens_a_replay(tmp_path):
    cache = ReplayCache(tmp_path / "r.sqlite", max_entries=20)
    v = verifier(replay_cache=cache, window_s=10_000)
    sent = [seal(nonce=i, timestamp=NOW + i) for i in range(60)]
    for env in sent:
        v.verify(env, now=NOW + 60)
    assert len(cache) <= 20
    for env in sent:  # every old envelope is refused: either remembered or below the horizon
        with pytest.raises((ReplayedNonce, StaleTimestamp)):
            v.verify(env, now=NOW + 60)
    cache.close()
    reopened = ReplayCache(tmp_path / "r.sqlite", max_entries=20)
    assert reopened.horizon == cache.horizon >= NOW

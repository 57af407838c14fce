import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deai.protocol.secagg import RoundAborted, shamir
from deai.protocol.secagg.crypto import Randomness


@settings(max_examples=40, deadline=None)
@given(
    secret=st.binary(min_size=32, max_size=32),
    n=st.integers(min_value=1, max_value=12),
    data=st.data(),
)
def test_any_threshold_shares_recover_the_secret(secret, n, data):
    t = data.draw(st.integers(min_value=1, max_value=n))
    xs = data.draw(st.lists(st.integers(1, 10**6), min_size=n, max_size=n, unique=True))
    ys = shamir.split(secret, xs, t, Randomness(b"s"))
    subset = data.draw(st.permutations(list(zip(xs, ys, strict=True))))[:t]
    assert shamir.combine(subset) == secret


def test_fewer_shares_give_another_value_and_a_changed_share_is_caught_by_the_caller():
    secret = bytes(range(32))
    xs = [1, 2, 3, 4, 5]
    ys = shamir.split(secret, xs, 3, Randomness(b"x"))
    pts = list(zip(xs, ys, strict=True))
    try:
        short = shamir.combine(pts[:2])
    except RoundAborted:
        short = None
    assert short != secret
    forged = [(pts[0][0], (pts[0][1] + 1) % shamir.PRIME), *pts[1:3]]
    with contextlib.suppress(RoundAborted):
        assert shamir.combine(forged) != secret


def test_share_encoding_is_checked():
    with pytest.raises(Exception, match="33 bytes"):
        shamir.decode_share(b"\x00" * 32)
    with pytest.raises(Exception, match="field element"):
        shamir.decode_share(b"\xff" * 33)
    assert shamir.decode_share(shamir.encode_share(12345)) == 12345

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deai.core.encoding import canonical, from_hex, hash_value, keccak256, sha256, sha256_hex, to_hex
from deai.core.errors import EncodingError

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@given(json_values)
def test_canonical_is_deterministic_and_parses_back(value):
    encoded = canonical(value)
    assert canonical(json.loads(encoded)) == encoded
    assert encoded == canonical(value)


@given(st.dictionaries(st.text(max_size=8), st.integers(-1000, 1000), min_size=1, max_size=8))
def test_key_order_does_not_matter(d):
    reordered = dict(reversed(list(d.items())))
    assert canonical(d) == canonical(reordered)


def test_known_form():
    assert canonical({"b": 1, "a": [1.5, "x", None, True]}) == b'{"a":[1.5,"x",null,true],"b":1}'
    assert canonical({"k": b"\x01\xff"}) == b'{"k":"0x01ff"}'
    assert canonical((1, 2)) == b"[1,2]"


@pytest.mark.parametrize("bad", [math.nan, math.inf, 2**60, {1: "x"}, object()])
def test_refuses_values_without_a_canonical_form(bad):
    with pytest.raises(EncodingError):
        canonical(bad)


def test_hashes_match_known_vectors():
    assert sha256_hex(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256(b"abc").hex() == sha256_hex(b"abc")
    assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert hash_value({"a": 1}) == to_hex(sha256(b'{"a":1}'))


def test_hex_round_trip_and_errors():
    assert from_hex(to_hex(b"\x00\x01")) == b"\x00\x01"
    with pytest.raises(EncodingError, match="not valid hex"):
        from_hex("0xzz")
    with pytest.raises(EncodingError, match="must be 4 bytes"):
        from_hex("0x00", length=4)


def test_decode_canonical_refuses_oversized_non_json_and_non_canonical_bytes():
    from deai.core.encoding import decode_canonical

    class Bad(Exception):
        pass

    def parse(data: bytes):
        return decode_canonical(data, dict, canonical, what="thing", error=Bad, max_bytes=64)

    assert parse(canonical({"b": 1, "a": [1, 2]})) == {"a": [1, 2], "b": 1}
    with pytest.raises(Bad, match="over 64"):
        parse(b"[" + b"1," * 40 + b"1]")
    with pytest.raises(Bad, match="not JSON"):
        parse(b"{nope")
    with pytest.raises(Bad, match="canonical"):
        parse(b'{"b": 1, "a": 2}')  # same value, other bytes: another hash for one object

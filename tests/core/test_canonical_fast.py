"""canonical's fast path (C json) gives rfc8785's bytes, or rfc8785's answer, on every value."""

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from deai.core.encoding import _normalize, canonical
from deai.core.errors import EncodingError

_KEYS = st.one_of(st.text(max_size=6), st.sampled_from(["a", "B", "_", "é", "\ue000", "\U0001f600", "a\x00"]))
_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=1e-6, max_value=1e18),
    st.sampled_from(
        [1e-4, 9.999e-5, 1e16, 9999999999999998.0, 0.1, -0.0, 2.0**53, 2.0**53 - 1, 1e21, 5e-324]
    ),
    st.text(),
    st.binary(max_size=8),
    st.sampled_from(["\ud800", "a\udfff", "\x7f\x1f\u2028", '\\/"', 2**53 - 1, -(2**53) + 1, 2**53]),
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(_KEYS, inner, max_size=4),
    ),
    max_leaves=20,
)


def _reference(value):
    try:
        return rfc8785.dumps(_normalize(value))
    except (EncodingError, rfc8785.CanonicalizationError, TypeError, ValueError):
        return EncodingError


def _ours(value):
    try:
        return canonical(value)
    except EncodingError:
        return EncodingError


@settings(max_examples=1500, deadline=None)
@given(_VALUES)
def test_fast_path_matches_rfc8785(value):
    assert _ours(value) == _reference(value)


def test_edges():
    edges = [{"k": "\ud800"}, {"\U0001f600": 1, "\ue000": 2}, 2**53, -(2**53), {"x": 2**53 - 1}, {1: 2}]
    for value in [*edges, "\x7f\x1f", [1.0, 1e21, -0.0], (b"\x00", bytearray(b"\x01"))]:
        assert _ours(value) == _reference(value)
    assert _ours({"\U0001f600": 1, "\ue000": 2}) == '{"\U0001f600":1,"\ue000":2}'.encode()  # UTF-16 order

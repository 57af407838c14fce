"""PII scrubbing on realistic strings and tables."""

import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from deai.learn.privacy.pii import find_pii, luhn_valid, scrub_dataframe, scrub_text


def luhn_complete(prefix: str) -> str:
    for d in "0123456789":
        if luhn_valid(prefix + d):
            return prefix + d
    raise AssertionError


words = st.sampled_from(
    [
        "the",
        "order",
        "was",
        "shipped",
        "to",
        "our",
        "office",
        "please",
        "call",
        "me",
        "about",
        "invoice",
        "total",
        "of",
        "12",
        "items",
    ]
)
emails = st.builds(
    lambda a, b, tld: f"{a}.{b}@{b}-mail.{tld}",
    st.text("abcdefghij", min_size=1, max_size=8),
    st.text("klmnopqrs", min_size=1, max_size=8),
    st.sampled_from(["com", "org", "co.uk", "de"]),
)
cards = st.builds(
    lambda body, sep: sep.join(luhn_complete("4" + body)[i : i + 4] for i in range(0, 16, 4)),
    st.text("0123456789", min_size=14, max_size=14),
    st.sampled_from(["", " ", "-"]),
)
phones = st.builds(
    lambda a, b, c, fmt: fmt.format(a, b, c),
    st.integers(200, 999),
    st.integers(200, 999),
    st.integers(1000, 9999),
    st.sampled_from(["({}) {}-{}", "+1 {} {} {}", "{}.{}.{}", "+1-{}-{}-{}"]),
)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(lambda a: a.exploded if a.ipv4_mapped is None else str(a))
ssns = st.builds(
    lambda a, b, c: f"{a:03d}-{b:02d}-{c:04d}", st.integers(1, 665), st.integers(1, 99), st.integers(1, 9999)
)
pii = st.one_of(emails, cards, phones, ipv4, ipv6, ssns)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(words, pii), min_size=1, max_size=12), st.lists(pii, min_size=1, max_size=3))
# a card followed by an ID whose first group makes a longer Luhn-valid span (found by hypothesis)
@example(tokens=["4003791244777879", "203-01-0001"], planted=["(200) 200-1000"])
def test_scrubbed_text_contains_no_detectable_pii(tokens, planted):
    text = " ".join(tokens + planted) + "."
    clean, report = scrub_text(text)
    assert find_pii(clean) == []
    for value in planted:
        assert value not in clean
    assert report.total >= 1


@given(st.text("0123456789", min_size=15, max_size=15))
def test_luhn_invalid_numbers_are_not_cards(body):
    valid = luhn_complete(body)
    invalid = valid[:-1] + str((int(valid[-1]) + 1) % 10)
    assert not luhn_valid(invalid)
    assert [f.kind for f in find_pii(f"ref {invalid} end")] == []
    assert [f.kind for f in find_pii(f"ref {valid} end")] == ["CARD"]


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("Mail jane.doe+news@example.co.uk today", ["EMAIL"]),
        ("Call +44 20 7946 0958 or (555) 123-4567", ["PHONE", "PHONE"]),
        ("Visa 4111 1111 1111 1111, ref 4111 1111 1111 1112", ["CARD"]),
        ("SSN 078-05-1120 NINO AB 12 34 56 C", ["NATIONAL_ID", "NATIONAL_ID"]),
        ("from 10.0.0.254 and 2001:db8::ff00:42:8329 and ::1", ["IP", "IP", "IP"]),
        ("not an ip 999.10.1.1, a time 12:30:45, a date 2024-01-15, order 12345", []),
    ],
)
def test_realistic_strings(text, kinds):
    assert [f.kind for f in find_pii(text)] == kinds


def test_never_issued_ssn_ranges_are_not_national_ids():
    kinds = [f.kind for f in find_pii("SSN-like but never issued: 000-12-3456 and 666-12-3456")]
    assert "NATIONAL_ID" not in kinds


def test_report_says_what_without_the_values():
    clean, report = scrub_text("write to a@b.org or call 555-123-4567")
    assert clean == "write to [EMAIL] or call [PHONE]"
    assert report.counts == {"EMAIL": 1, "PHONE": 1}
    assert "a@b.org" not in str(report.to_dict())


def test_dataframe_scrubbing():
    df = pd.DataFrame(
        {
            "note": ["ok", "mail me: x.y@z.com", None, "ip 8.8.8.8"],
            "card": [4111111111111111, 4111111111111112, 5, 6],
            "age": [30, 40, 50, 60],
        }
    )
    out, report = scrub_dataframe(df)
    assert out["note"].tolist()[:2] == ["ok", "mail me: [EMAIL]"] and out["note"].iloc[3] == "ip [IP]"
    assert pd.isna(out["card"].iloc[0]) and out["card"].iloc[1] == 4111111111111112
    assert out["age"].tolist() == [30, 40, 50, 60]
    assert report.counts == {"EMAIL": 1, "IP": 1, "CARD": 1}
    assert {(f.row, f.column) for f in report.findings} == {(1, "note"), (3, "note"), (0, "card")}
    assert df["note"].iloc[1] == "mail me: x.y@z.com"  # the input is not modified

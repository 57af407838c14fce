"""PII scrubbing for text and tables a provider hands to others.

Detected and replaced by a placeholder (``[EMAIL]``, ``[PHONE]``, ``[CARD]``, ``[IP]``,
``[NATIONAL_ID]``):

- e-mail addresses;
- card numbers: 13-19 digits that pass the Luhn check (a number failing it is not a card and is
  left alone), written as one run or as cards are printed: groups of four (the last one shorter),
  4-6-5 or 4-6-4, separated by spaces or by dashes;
- IPv4 and IPv6 addresses (validated by :mod:`ipaddress`, so ``999.1.1.1`` is not one);
- national-ID-like patterns: US social security numbers (``123-45-6789``, excluding the ranges the
  SSA never issues) and UK national insurance numbers;
- phone numbers: 7-15 digits in common international and national layouts (``+44 20 7946 0958``,
  ``(555) 123-4567``, ``555.123.4567``).

Detection is pattern-based: it finds what these formats cover and nothing else (names, street
addresses and free-form identifiers need an NER model and are out of scope). The report says what was
removed (kind, where, how long) without repeating the removed values.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

__all__ = ["KINDS", "Finding", "PiiReport", "find_pii", "luhn_valid", "scrub_dataframe", "scrub_text"]

KINDS = ("EMAIL", "CARD", "NATIONAL_ID", "IP", "PHONE")

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}\b"
)
_CARD = re.compile(r"(?<![\d+-])\d(?:[ -]?\d){12,}")
_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\d-])")
_NINO = re.compile(
    r"\b(?![DFIQUV])[A-CEGHJ-PR-TW-Z](?![DFIOQUV])[A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"
)
_IPV4 = re.compile(r"(?<!\d\.)(?<!\d)\d{1,3}(?:\.\d{1,3}){3}(?!\.?\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|\d{1,3}(?:\.\d{1,3}){3})?(?![\w:])"
)
_PHONE_GROUP = r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}"
# A candidate takes a whole run of digit groups (several numbers written side by side included);
# _phone_spans then cuts it into phone numbers.
_PHONE = re.compile(rf"(?<![\w+]){_PHONE_GROUP}(?:[ .-]?{_PHONE_GROUP}){{1,12}}(?![\w])")


_DATE = re.compile(r"\d{4}[./-]\d{1,2}[./-]\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a digit string (card numbers satisfy it)."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _is_card(m: str) -> bool:
    digits = re.sub(r"[ -]", "", m)
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _card_layout(text: str, groups: list[tuple[int, int]]) -> bool:
    """Whether digit groups are written the way card numbers are printed: one run of 13-19 digits,
    or groups of four (the last one shorter) or 4-6-5 / 4-6-4, with one separator used throughout."""
    sizes = [e - s for s, e in groups]
    seps = {text[groups[k][1] : groups[k + 1][0]] for k in range(len(groups) - 1)}
    if len(sizes) == 1:
        return 13 <= sizes[0] <= 19
    if len(seps) != 1:
        return False
    return sizes in ([4, 6, 5], [4, 6, 4]) or (all(n == 4 for n in sizes[:-1]) and 1 <= sizes[-1] <= 4)


def _card_spans(text: str):
    """Card numbers inside runs of digit groups, scanning left to right: at each group, the span of
    groups in a card layout (see _card_layout) that passes the Luhn check. The layout matters: a
    loose run of groups is Luhn-valid one time in ten by chance, and taking a phone number or the
    first group of an ID for a card would cut that finding in half."""
    for m in _CARD.finditer(text):
        groups = [(m.start() + g.start(), m.start() + g.end()) for g in re.finditer(r"\d+", m.group())]
        i = 0
        while i < len(groups):
            for j in range(len(groups) - 1, i - 1, -1):
                span = groups[i : j + 1]
                if _card_layout(text, span) and _is_card(text[groups[i][0] : groups[j][1]]):
                    yield groups[i][0], groups[j][1]
                    i = j
                    break
            i += 1


def _split_phones(start: int, candidate: str) -> list[tuple[int, int]]:
    """Split a run of more than 15 digits at whitespace into complete phone numbers (10-15 digits
    each), e.g. two numbers written side by side. A run with no such split (a Luhn-invalid card
    number, an account number) is a number of another kind: no spans."""
    cuts = [0] + [w.end() for w in re.finditer(r"\s+", candidate)] + [len(candidate) + 1]
    best: dict[int, list[tuple[int, int]] | None] = {len(cuts) - 1: []}
    for i in range(len(cuts) - 2, -1, -1):
        best[i] = None
        for j in range(i + 1, len(cuts)):
            piece = candidate[cuts[i] : cuts[j] - 1].strip() if j < len(cuts) - 1 else candidate[cuts[i] :]
            digits = len(re.sub(r"\D", "", piece))
            if digits > 15:
                break
            rest = best[j]
            if digits >= 10 and _is_phone(piece) and rest is not None:
                best[i] = [(start + cuts[i], start + cuts[i] + len(piece)), *rest]
                break
    return best[0] or []


def _phone_spans(text: str):
    """Phone numbers: the longest valid prefix (ending at a digit group) of each candidate. A run
    of more than 15 digits is split into whole phone numbers when it can be (see _split_phones)."""
    for m in _PHONE.finditer(text):
        if len(re.sub(r"\D", "", m.group())) > 15:
            yield from _split_phones(m.start(), m.group())
            continue
        for g in reversed(list(re.finditer(r"\d+", m.group()))):
            if _is_phone(m.group()[: g.end()]):
                yield m.start(), m.start() + g.end()
                break


def _is_ip(m: str) -> bool:
    try:
        ipaddress.ip_address(m)
    except ValueError:
        return False
    return True


def _is_phone(m: str) -> bool:
    digits = re.sub(r"\D", "", m)
    if not 7 <= len(digits) <= 15 or _DATE.fullmatch(m):
        return False
    # A bare run of digits is a number, not a phone; a phone has separators, a '+', or brackets.
    return m.startswith("+") or "(" in m or bool(re.search(r"\d[ .-]\d", m))


# Order matters: earlier kinds win overlapping spans (a card number is not also a phone number).
_DETECTORS = (
    ("EMAIL", _EMAIL, None),
    ("CARD", _card_spans, None),
    ("NATIONAL_ID", _SSN, None),
    ("NATIONAL_ID", _NINO, None),
    ("IP", _IPV4, _is_ip),
    ("IP", _IPV6, _is_ip),
    ("PHONE", _phone_spans, None),
)


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int
    row: int | None = None
    column: str | None = None


@dataclass
class PiiReport:
    """What was removed: one finding per replaced span, and counts per kind."""

    findings: list[Finding] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(f.kind for f in self.findings))

    @property
    def total(self) -> int:
        return len(self.findings)

    def to_dict(self) -> dict:
        return {
            "total": self.total,
            "counts": self.counts,
            "findings": [f.__dict__ for f in self.findings],
        }


def find_pii(text: str) -> list[Finding]:
    """Non-overlapping PII spans in ``text``, in order of position.

    Detectors run in priority order; each sees the text with the spans already found blanked out,
    so a lower-priority pattern never swallows (or is blocked by) a higher-priority finding.
    """
    work = text
    found: list[Finding] = []
    for kind, pattern, valid in _DETECTORS:
        spans = pattern(work) if callable(pattern) else [m.span() for m in pattern.finditer(work)]
        new = [(s, e) for s, e in spans if valid is None or valid(work[s:e])]
        for s, e in new:
            found.append(Finding(kind, s, e))
            work = work[:s] + "\x00" * (e - s) + work[e:]
    return sorted(found, key=lambda f: f.start)


def scrub_text(text: str) -> tuple[str, PiiReport]:
    """``text`` with every detected PII span replaced by ``[KIND]``, and the report."""
    findings = find_pii(text)
    out, pos = [], 0
    for f in findings:
        out += [text[pos : f.start], f"[{f.kind}]"]
        pos = f.end
    out.append(text[pos:])
    return "".join(out), PiiReport(findings)


def scrub_dataframe(df: pd.DataFrame) -> tuple[pd.DataFrame, PiiReport]:
    """A copy of ``df`` with PII scrubbed from every text cell; integer columns are checked for card
    numbers (Luhn-valid 13-19 digit values), which are replaced by a missing value."""
    out = df.copy()
    report = PiiReport()
    for col in df.columns:
        series = df[col]
        name = str(col)
        if pd.api.types.is_integer_dtype(series.dtype):
            as_text = series.astype("string")
            hit = as_text.map(lambda v: v is not pd.NA and _is_card(str(v))).astype(bool)
            if hit.any():
                out[col] = series.astype("Int64").mask(hit.to_numpy())
                for row in hit.to_numpy().nonzero()[0]:
                    report.findings.append(Finding("CARD", 0, len(as_text.iloc[row]), int(row), name))
            continue
        if not (pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype)):
            continue
        values = series.to_list()
        for row, value in enumerate(values):
            if not isinstance(value, str):
                continue
            clean, rep = scrub_text(value)
            if rep.total:
                values[row] = clean
                report.findings += [Finding(f.kind, f.start, f.end, row, name) for f in rep.findings]
        out[col] = pd.Series(values, index=df.index, dtype=series.dtype)
    return out, report

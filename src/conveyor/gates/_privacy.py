"""The privacy check of a gate: does the evaluation data hold personal data outside the
columns declared to hold it? (ML Test Score Data 5.)

Every column is scanned (a seeded sample of at most ``max_rows`` rows): its name against
names that identify a person (``email``, ``phone``, ``ssn``, ``first_name``, ``address``,
``date_of_birth``, ``ip_address``, ``iban``, ``credit_card``, …), and its text values
against patterns of e-mail addresses, phone numbers, payment card numbers (13–19 digits
passing the Luhn checksum), IBANs, IPv4 addresses and US social security numbers. A column
counts as personal when its name matches or when at least ``min_share`` of its non-empty
values match one pattern. Only column names, kinds and counts are recorded, never a value.

What it cannot see: personal data in free text that matches no pattern (names in a comment
field), data that identifies a person only in combination (quasi-identifiers such as
postcode + birth year), and who may read the stores: that is the stores' access control.
"""

from __future__ import annotations

import re
from typing import Any

from conveyor.gates._result import Check
from conveyor.gates._spec import GateSpec

_NAMES = re.compile(
    r"(^|_)(e_?mail|phone|mobile|telephone|ssn|social_security|passport|first_?name|last_?name|full_?name|surname|"
    r"given_?name|street|address|birth_?date|date_of_birth|dob|ip_?address|iban|credit_?card|card_?number|"
    r"national_?id|tax_?id)($|_)",
    re.I,
)
_PATTERNS: dict[str, re.Pattern[str]] = {
    "email": re.compile(r"^[\w.+-]+@[\w-]+(\.[\w-]+)+$"),
    "ssn": re.compile(r"^\d{3}-\d{2}-\d{4}$"),
    "iban": re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$"),
    "ipv4": re.compile(r"^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$"),
    "phone": re.compile(r"^\+?[\d\s().-]{7,20}$"),
}
_CARD = re.compile(r"^[\d -]{13,23}$")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def kind_of(value: str) -> str | None:
    """The kind of personal data ``value`` looks like, or None."""
    text = value.strip()
    if _CARD.match(text):
        digits = re.sub(r"\D", "", text)
        if 13 <= len(digits) <= 19 and _luhn(digits):
            return "payment_card"
    for kind, pattern in _PATTERNS.items():
        if pattern.match(text):
            if kind == "phone" and sum(ch.isdigit() for ch in text) < 7:
                continue
            return kind
    return None


def scan(frame: Any, *, max_rows: int, min_share: float) -> dict[str, list[str]]:
    """Column → what marks it as personal data (``name`` and/or value kinds with counts)."""
    import pandas as pd

    rows = frame.sample(n=max_rows, random_state=0) if len(frame) > max_rows else frame
    found: dict[str, list[str]] = {}
    for column in rows.columns:
        reasons = []
        if _NAMES.search(str(column)):
            reasons.append("name")
        series = rows[column]
        if not pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            values = [v for v in series.dropna().tolist() if isinstance(v, str) and v.strip()]
            counts: dict[str, int] = {}
            for value in values:
                kind = kind_of(value)
                if kind is not None:
                    counts[kind] = counts.get(kind, 0) + 1
            reasons += [f"{kind} ({n} of {len(values)} values)" for kind, n in sorted(counts.items())
                        if n >= max(1, min_share * len(values))]
        if reasons:
            found[str(column)] = reasons
    return found


def privacy_check(spec: GateSpec, frame: Any) -> Check:
    privacy = spec.privacy
    assert privacy is not None
    found = scan(frame, max_rows=privacy.max_rows, min_share=privacy.min_share)
    allowed = set(privacy.allow)
    flagged = sorted(c for c in found if c not in allowed)
    evidence = {"scanned_rows": int(min(len(frame), privacy.max_rows)), "columns": int(len(frame.columns)),
                "personal": found, "allowed": sorted(allowed), "flagged": flagged}
    if flagged:
        summary = (f"{len(flagged)} column(s) hold personal data and are not in allow: "
                   + "; ".join(f"{c}: {', '.join(found[c])}" for c in flagged[:5]))
    else:
        summary = (f"no personal data in {len(frame.columns)} column(s)" if not found else
                   f"personal data only in allowed column(s): {', '.join(sorted(found))}")
    return Check("privacy: personal data in the evaluation data", "privacy", not flagged, summary, evidence)

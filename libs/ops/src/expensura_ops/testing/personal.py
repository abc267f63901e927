"""The personal values the tests used, and where plaintext copies of them turn up.

Tests (and the token helpers) record every personal value they hand a service: e-mail
addresses, phone numbers, evidence, case references, loan amounts. The last test of a
session (`tests/e2e/test_nothing_personal_outside_sealed_fields.py`) searches every database
dump, topic, log file and span of the session for them: anything personal must exist only
as ciphertext under the subject's key, or crypto-shredding would not reach it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# value -> what it was (for the failure message). Process-wide: the test session's registry.
_RECORDED: dict[str, str] = {}

# Shorter values match by chance in unrelated bytes (ids, counters, base64): a search for
# them would fail for no leak. Personal values the tests use are longer.
MIN_LENGTH = 6


def record(what: str, *values: str | int | None) -> None:
    """Remember values a test gave a service as personal data (None is ignored)."""
    for value in values:
        if value is None:
            continue
        text = str(value)
        if len(text) < MIN_LENGTH:
            raise ValueError(f"{what} {text!r} is too short to search for; use a longer one")
        _RECORDED.setdefault(text, what)


def recorded() -> dict[str, str]:
    return dict(_RECORDED)


def encodings(value: str) -> set[bytes]:
    """The byte forms a stored copy of `value` could take: as is, JSON-escaped, and as
    PostgreSQL's hex output of a bytea holding it (how pg_dump shows the event log)."""
    raw = value.encode()
    return {raw, json.dumps(value)[1:-1].encode(), raw.hex().encode()}


@dataclass(frozen=True)
class Finding:
    where: str
    what: str
    value: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what} {self.value!r}"


def find_plaintext(
    values: Mapping[str, str], sources: Iterable[tuple[str, bytes]]
) -> list[Finding]:
    """Every (source, value) pair where a value appears in a source's bytes."""
    forms = {value: encodings(value) for value in values}
    found: list[Finding] = []
    for where, data in sources:
        for value, what in values.items():
            if any(form in data for form in forms[value]):
                found.append(Finding(where, what, value))
    return found

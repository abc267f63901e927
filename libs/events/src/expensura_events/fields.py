"""Constrained types for everything that enters a service: bodies, paths, queries, headers.

PostgreSQL text cannot hold NUL, and control characters in names, reasons and references
only ever come from mistakes or attacks: refuse them at the edge (422) instead of failing
deep inside (500) or poisoning a read model downstream. Declared once here so that every
service draws the same line, and every string type says how long it may be.

Lone surrogates (JSON `"\\ud800"`) are refused by pydantic for every `str` already: they
cannot be encoded as UTF-8, so no type needs to name them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    EmailStr,
    StringConstraints,
)

# C0 controls, DEL, C1 controls, and the Unicode line and paragraph separators.
_LINE_BREAKING = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
_SINGLE_LINE = rf"^[^{_LINE_BREAKING}]*$"
# The same, except tab, line feed and carriage return, which free text may contain.
_MULTI_LINE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"

Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@+-]*$"),
]
"""Ids and names of things: subjects, recipients, requesters, versions, client ids. ASCII
only, and never `#` (it separates a subject from its retention hold in key names) nor `/`."""

SingleLine = Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=_SINGLE_LINE)]
# A personal-data field's name as requests, agreements and decisions name it ("email").
FieldName = Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,40}$")]
"""A name, a reference, a reason: one line of printable text."""

ShortText = Annotated[str, StringConstraints(min_length=1, max_length=1000, pattern=_MULTI_LINE)]
"""A few lines of printable text (tabs and line breaks allowed)."""

LongText = Annotated[str, StringConstraints(min_length=1, max_length=200_000, pattern=_MULTI_LINE)]
"""A document, such as a policy text."""

Secret = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=_SINGLE_LINE)]
"""A password or a client secret: any printable characters, never stored as given."""

Token = Annotated[
    str, StringConstraints(min_length=1, max_length=4000, pattern=r"^[A-Za-z0-9_.~+/=-]+$")
]
"""An opaque token the service issued (refresh tokens, challenges, JWTs): URL-safe ASCII."""


def _no_control_characters(value: object) -> object:
    if isinstance(value, str) and _CONTROL.search(value):
        raise ValueError("control characters are not allowed")
    return value


_CONTROL = re.compile(rf"[{_LINE_BREAKING}]")

EmailAddress = Annotated[
    EmailStr, BeforeValidator(_no_control_characters), StringConstraints(max_length=254)
]
"""An e-mail address as RFC 5321/5322 allow it, checked by email-validator (no DNS look-up),
at most 254 characters (the SMTP limit). Control characters are refused before it looks:
it would strip a trailing one silently."""

PhoneNumber = Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")]
"""A phone number in E.164 form, e.g. +14155550100."""


def _storable(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # e.g. 9999-12-31T23:00-05:00 is in year 10000 once in UTC, which nothing can store
        raise ValueError("the instant must lie between the years 1 and 9999 in UTC") from None


Instant = Annotated[AwareDatetime, AfterValidator(_storable)]
"""A point in time with its UTC offset (a time without one is ambiguous), within the range
every store can hold once converted to UTC; normalised to UTC."""

__all__ = [
    "EmailAddress",
    "Identifier",
    "Instant",
    "LongText",
    "PhoneNumber",
    "Secret",
    "ShortText",
    "SingleLine",
    "Token",
]

"""Constrained string types for request models.

PostgreSQL text cannot hold NUL, and control characters in names, reasons and references
only ever come from mistakes or attacks: refuse them at the edge (422) instead of failing
deep inside (500).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][\w.:@/#+-]*$")
]
"""Ids and names of things: subjects, recipients, requesters, versions."""

_NO_CONTROL = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=1000, pattern=_NO_CONTROL)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=200_000, pattern=_NO_CONTROL)]

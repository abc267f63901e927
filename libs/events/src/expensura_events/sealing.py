"""Personal values in a service's own tables, sealed with the subject's data key (SEC-1).

The mapper seals an event's personal fields; a read model or a service's state that keeps a
personal value keeps the same sealed box (`{"$enc", "kid", "iv", "ct"}`, JSON), so that
destroying the subject's key reaches that copy too, and a dump of the database shows no
plaintext. The box's additional data names where it lives (table, row and column): a box
copied into another row or column does not open.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from expensura_events.cipher import FieldCipher
from expensura_events.obligations import enforces


def place(table: str, row: object) -> str:
    """Where a sealed value lives: its table and row (the column is added per value)."""
    return f"{table}:{row}"


@enforces("SEC-1")
async def seal(
    cipher: FieldCipher[Any], subject_id: str, where: str, values: Mapping[str, Any]
) -> dict[str, dict[str, str]]:
    """Each value sealed with the subject's key (None values are left out)."""
    present = {k: v for k, v in values.items() if v is not None}
    return await cipher.encrypt_fields(subject_id, where, present)


async def unseal(
    cipher: FieldCipher[Any], subject_id: str, where: str, boxes: Mapping[str, Any]
) -> dict[str, Any]:
    """The values opened; `REDACTED` where the subject's key was destroyed; None stays None."""
    return await cipher.decrypt_fields(subject_id, where, dict(boxes))

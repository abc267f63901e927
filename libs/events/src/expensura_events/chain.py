"""The hash chain over the log and its verifier.

hash(n) = SHA-256(hash(n-1) || seq as 8 bytes || stored record bytes), hash(0) = 32 zero
bytes. The record bytes hold ciphertext, so crypto-shredding never breaks the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from expensura_events.obligations import enforces

GENESIS = b"\x00" * 32


@enforces("SEC-3")
def link_hash(prev: bytes, seq: int, record: bytes) -> bytes:
    return hashlib.sha256(prev + seq.to_bytes(8, "big") + record).digest()


@dataclass(frozen=True)
class ChainRow:
    seq: int
    event_id: str
    stream_id: str
    stream_version: int
    event_type: str
    subject_id: str | None
    record: bytes
    hash: bytes


@dataclass(frozen=True)
class Verification:
    checked: int
    head_seq: int
    head_hash: str
    first_broken: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.first_broken is None


@enforces("SEC-3")
async def verify_rows(
    rows: AsyncIterator[ChainRow], progress: Callable[[int], None] | None = None
) -> Verification:
    """Walk the log in sequence order; stop at the first link that does not hold."""
    prev, expected_seq, checked = GENESIS, 1, 0
    async for row in rows:
        problem = _check(row, expected_seq, prev)
        if problem is not None:
            return Verification(checked, expected_seq - 1, prev.hex(), row.seq, problem)
        prev, expected_seq, checked = row.hash, row.seq + 1, checked + 1
        if progress is not None:
            progress(1)
    return Verification(checked, expected_seq - 1, prev.hex())


def _check(row: ChainRow, expected_seq: int, prev: bytes) -> str | None:
    if row.seq != expected_seq:
        return f"sequence gap: expected {expected_seq}, found {row.seq}"
    if link_hash(prev, row.seq, row.record) != row.hash:
        return "hash does not match the stored record and the previous link"
    try:
        data: dict[str, Any] = json.loads(row.record)
    except ValueError:
        return "stored record is not valid JSON"
    mismatched = [
        name
        for name, column in (
            ("event_id", row.event_id),
            ("stream_id", row.stream_id),
            ("stream_version", row.stream_version),
            ("event_type", row.event_type),
            ("subject_id", row.subject_id),
        )
        if data.get(name) != column
    ]
    if mismatched:
        return "columns disagree with the stored record: " + ", ".join(mismatched)
    return None

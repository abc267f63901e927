"""The hash chain's verifier names the first link that does not hold (SEC-3)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace

import pytest

from expensura_events.chain import GENESIS, ChainRow, link_hash, verify_rows

pytestmark = pytest.mark.obligation("SEC-3")


def chain(n: int) -> list[ChainRow]:
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        record = json.dumps(
            {
                "event_id": f"e{seq}",
                "stream_id": "s",
                "stream_version": seq,
                "event_type": "testing.NoteRecorded",
                "subject_id": "subject-1",
                "purpose": "customer-care",
            },
            sort_keys=True,
        ).encode()
        prev = link_hash(prev, seq, record)
        rows.append(
            ChainRow(seq, f"e{seq}", "s", seq, "testing.NoteRecorded", "subject-1", record, prev)
        )
    return rows


async def feed(rows: Iterable[ChainRow]) -> AsyncIterator[ChainRow]:
    for row in rows:
        yield row


async def test_an_intact_chain_verifies_to_its_head() -> None:
    rows = chain(5)
    seen: list[int] = []
    result = await verify_rows(feed(rows), seen.append)
    assert result.ok and result.reason is None
    assert (result.checked, result.head_seq, result.head_hash) == (5, 5, rows[-1].hash.hex())
    assert sum(seen) == 5


async def test_an_empty_log_verifies_at_genesis() -> None:
    result = await verify_rows(feed([]))
    assert result.ok and (result.checked, result.head_seq) == (0, 0)
    assert result.head_hash == GENESIS.hex()


async def test_an_edited_record_is_named() -> None:
    rows = chain(5)
    forged = json.loads(rows[2].record) | {"purpose": "marketing"}
    rows[2] = replace(rows[2], record=json.dumps(forged, sort_keys=True).encode())
    result = await verify_rows(feed(rows))
    assert not result.ok
    assert (result.first_broken, result.checked, result.head_seq) == (3, 2, 2)
    assert result.reason is not None and "hash does not match" in result.reason


async def test_a_rehashed_forgery_breaks_the_next_link() -> None:
    rows = chain(5)
    forged = json.dumps(json.loads(rows[2].record) | {"purpose": "marketing"}).encode()
    rows[2] = replace(rows[2], record=forged, hash=link_hash(rows[1].hash, 3, forged))
    result = await verify_rows(feed(rows))
    assert result.first_broken == 4  # the forger recomputed one hash; the next still names it


async def test_a_deleted_link_is_named_as_a_gap() -> None:
    rows = chain(5)
    del rows[1]
    result = await verify_rows(feed(rows))
    assert result.first_broken == 3
    assert result.reason == "sequence gap: expected 2, found 3"


async def test_columns_that_disagree_with_the_record_are_named() -> None:
    rows = chain(3)
    rows[1] = replace(rows[1], subject_id="someone-else")
    result = await verify_rows(feed(rows))
    assert result.first_broken == 2
    assert result.reason == "columns disagree with the stored record: subject_id"

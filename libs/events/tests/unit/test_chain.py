"""The hash chain's verifier names the first link that does not hold (SEC-3)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from expensura_events.chain import (
    GENESIS,
    ChainRow,
    _columns_agree,
    link_hash,
    verify_links,
    verify_rows,
)

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


# The verifier's fast column check (`_columns_agree`) must never accept what the full check
# (`json.loads`, then compare) refuses: checked against it over records and columns that
# differ in the ways a forger could make them differ.
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False, allow_infinity=False, width=16),
    st.sampled_from(["e1", "s", "subject-1", "testing.NoteRecorded", "1", ""]),
    st.text(max_size=4),
)
_FIELDS = ("event_id", "stream_id", "stream_version", "event_type", "subject_id")


def _reference(link: tuple[Any, ...]) -> str | None:
    """The column check as it was before the fast path: json.loads, then compare."""
    try:
        data = json.loads(link[6])
    except ValueError:
        return "stored record is not valid JSON"
    if not isinstance(data, dict):
        return "stored record is not valid JSON"
    mismatched = [n for i, n in enumerate(_FIELDS, 1) if data.get(n) != link[i]]
    if mismatched:
        return "columns disagree with the stored record: " + ", ".join(mismatched)
    return None


@st.composite
def _records(draw: st.DrawFn) -> bytes:
    body = {name: draw(_VALUES) for name in draw(st.sets(st.sampled_from(_FIELDS)))}
    body |= draw(st.dictionaries(st.sampled_from(["payload", "purpose"]), _VALUES, max_size=2))
    form = draw(st.sampled_from(["canonical", "spaced", "padded", "bom", "utf16", "array", "junk"]))
    if form == "junk":
        return draw(st.binary(max_size=40))
    if form == "array":
        return json.dumps([body]).encode()
    text = json.dumps(body, sort_keys=True, separators=(",", ":") if form == "canonical" else None)
    if form == "padded":
        text = draw(st.sampled_from([" ", "\n", ""])) + text + draw(st.sampled_from([" ", "\t"]))
    if form == "utf16":
        return text.encode("utf-16-le")
    return (b"\xef\xbb\xbf" if form == "bom" else b"") + text.encode()


@settings(max_examples=200, deadline=None)
@given(record=_records(), columns=st.tuples(*[_VALUES] * 5), take_record=st.booleans())
def test_the_fast_column_check_gives_the_full_checks_verdict(
    record: bytes, columns: tuple[Any, ...], take_record: bool
) -> None:
    if take_record:  # columns copied from the record, as an honest append writes them
        try:
            data = json.loads(record)
            columns = tuple(data.get(n) for n in _FIELDS) if isinstance(data, dict) else columns
        except ValueError:
            pass
    link = (1, *columns, record, link_hash(GENESIS, 1, record))
    expected = _reference(link)
    if _columns_agree(link):
        assert expected is None
    done = verify_links([link])
    assert done.reason == expected
    assert done.first_broken == (None if expected is None else 1)


def test_an_honest_record_takes_the_fast_path() -> None:
    row = chain(1)[0]
    link = (row.seq, row.event_id, row.stream_id, row.stream_version, row.event_type,
            row.subject_id, row.record, row.hash)  # fmt: skip
    assert _columns_agree(link)

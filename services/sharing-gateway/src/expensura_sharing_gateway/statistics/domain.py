"""Statistics for the public and third parties (RUL-3): aggregates only, cells with fewer
than k people withheld, k never below the policy's floor, every release in a ledger. Pure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from expensura_events.catalog.sharing import StatisticsReleased
from expensura_events.obligations import enforces

# The policy's floor: no release may count fewer people per cell than this.
K_FLOOR = 10
K_MAX = 1000
QUERIES: dict[str, tuple[str, ...]] = {
    "disclosures-by-purpose": ("purpose",),
    "disclosures-by-partner-and-purpose": ("partner_id", "purpose"),
}

Key = tuple[str, ...]


class BelowFloor(ValueError):
    """k under the policy's floor (or above what is sensible): no release."""


class UnknownQuery(ValueError):
    pass


@dataclass(frozen=True)
class Release:
    release_id: UUID
    query: str
    columns: tuple[str, ...]
    k: int
    cells: dict[Key, int | None]  # None: withheld, fewer than k people behind it
    suppressed: int


@enforces("RUL-3")
def check_k(k: int) -> int:
    if not K_FLOOR <= k <= K_MAX:
        raise BelowFloor(f"k must be between {K_FLOOR} and {K_MAX}")
    return k


def columns_of(query: str) -> tuple[str, ...]:
    try:
        return QUERIES[query]
    except KeyError:
        raise UnknownQuery(f"no query {query}; one of {', '.join(sorted(QUERIES))}") from None


def people_per_cell(rows: Iterable[tuple[str, Key]]) -> Counter[Key]:
    """Distinct people per cell, not disclosures: k protects individuals.
    `rows` are (subject id, the cell's key)."""
    people: dict[Key, set[str]] = {}
    for subject_id, key in rows:
        people.setdefault(key, set()).add(subject_id)
    return Counter({key: len(s) for key, s in people.items()})


@enforces("RUL-3")
def suppress(counts: Counter[Key], k: int) -> tuple[dict[Key, int | None], int]:
    """Cells with fewer than k individuals are withheld."""
    out: dict[Key, int | None] = {}
    hidden = 0
    for key, n in counts.items():
        if n < k:
            out[key], hidden = None, hidden + 1
        else:
            out[key] = n
    return out, hidden


def release(release_id: UUID, query: str, k: int, rows: Iterable[tuple[str, Key]]) -> Release:
    """The release of a query over (subject, key) rows, small cells withheld."""
    columns = columns_of(query)
    cells, hidden = suppress(people_per_cell(rows), check_k(k))
    return Release(release_id, query, columns, k, cells, hidden)


def released(r: Release) -> StatisticsReleased:
    return StatisticsReleased(
        release_id=r.release_id,
        query=r.query,
        parameters={"columns": list(r.columns)},
        k=r.k,
        cells=len(r.cells),
        suppressed=r.suppressed,
    )


def statistics_stream(release_id: UUID) -> str:
    return f"statistics-{release_id}"

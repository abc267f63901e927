"""Computing a blast radius (SEC-5): check the chains of the logs the scope's rows came from,
read the index, apply the domain's rules, and record the result (a row with the subject list
sealed, and `incident.BlastRadiusComputed`) in one transaction.

Chains. The index holds rows of events whose signatures were checked as they applied; the
hash chain of each source log the scope read is checked here, from its first record to its
head, through the source's log feed (`/internal/log`, incident's own log locally), with
`expensura_events.chain.verify_rows`, the function `expensura log verify` uses. A feed that
cannot be read, or a log longer than `MAX_VERIFIED_RECORDS`, is listed as unverified with the
reason (the result still comes: an incident cannot wait for a peer that is down), and a
broken chain is listed with where it broke. The chain is checked from genesis each time: the
library has no verify-from-checkpoint, so a very long log is the gap documented here.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.incident_exposure import BlastRadiusComputed, ScopeKind
from expensura_events.chain import ChainRow, verify_rows
from expensura_events.cipher import LOOKUP_HMAC, KeyWrap
from expensura_events.envelope import Actor, utcnow
from expensura_events.obligations import enforces
from expensura_events.projections import HttpLogFeed, LocalLogFeed, LogFeed
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import ActorKind, Purpose
from expensura_incident.exposure import store
from expensura_incident.exposure.domain import BlastRadius, Scope, blast_radius
from expensura_incident.regimes.domain import NOTIFIABLE, Protection
from expensura_incident.tables import blast_radius_results

MAX_VERIFIED_RECORDS = 2_000_000  # per source and computation; beyond: listed as unverified
PAGE = 5000  # the log feed's largest page


@dataclass(frozen=True)
class ChainCheck:
    """What was checked of one source's chain: up to `head` (verified) or why not."""

    source: str
    head: int | None
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class Computed:
    computation_id: uuid.UUID
    radius: BlastRadius
    chains: tuple[ChainCheck, ...]
    subjects_digest: str


async def _rows(feed: LogFeed, cap: int) -> AsyncIterator[ChainRow]:
    after, seen = 0, 0
    while True:
        page = await feed.read(after, PAGE)
        if not page:
            return
        for r in page:
            seen += 1
            if seen > cap:
                raise _TooLong
            yield ChainRow(
                r.seq, r.event_id, r.stream_id, _version(r.record), r.event_type, r.subject_id,
                r.record, r.hash,
            )  # fmt: skip
        after = page[-1].seq


def _version(record: bytes) -> int:
    """The stream version as the record states it (a feed does not serve the column; the
    record is what the hash covers, so comparing it with itself adds nothing)."""
    value = json.loads(record).get("stream_version")
    return value if isinstance(value, int) else -1


class _TooLong(Exception):
    pass


@enforces("SEC-3", "SEC-5")
async def verify_source(feed: LogFeed, cap: int = MAX_VERIFIED_RECORDS) -> ChainCheck:
    """Recompute one source's chain from genesis to its head through its feed."""
    try:
        result = await verify_rows(_rows(feed, cap))
    except _TooLong:
        return ChainCheck(feed.source, None, f"longer than {cap} records: not checked")
    except (httpx.HTTPError, OSError):
        return ChainCheck(feed.source, None, "log feed unavailable")
    except Exception as exc:  # a feed answering garbage is a finding, not a crash
        return ChainCheck(feed.source, None, f"log feed unreadable: {type(exc).__name__}")
    if not result.ok:
        return ChainCheck(feed.source, result.head_seq, f"chain broken at {result.first_broken}")
    return ChainCheck(feed.source, result.head_seq, None)


def chain_feeds(
    rt: ServiceRuntime, client: httpx.AsyncClient, sources: Sequence[str]
) -> dict[str, LogFeed]:
    """Each source's whole log (every type: a chain has no gaps): incident's own locally,
    the others through their `/internal/log` with incident's service token."""
    feeds: dict[str, LogFeed] = {}
    for src in sources:
        if src == rt.name:
            feeds[src] = LocalLogFeed(rt.engine, src)
        elif src in rt.settings.service_urls:
            feeds[src] = HttpLogFeed(
                client,
                rt.settings.service_urls[src],
                src,
                functools.partial(rt.service_identity.headers_for, src),
            )
    return feeds


def _derived(secret: bytes, label: bytes) -> bytes:
    return hmac.digest(secret, b"expensura:blast-radius:" + label, "sha256")


def subjects_digest(secret: bytes, subjects: Sequence[str]) -> str:
    """The keyed digest of the sorted subject list (the event's `subjects_digest`)."""
    body = json.dumps(sorted(subjects), separators=(",", ":")).encode()
    return hmac.new(_derived(secret, b"digest"), body, hashlib.sha256).hexdigest()


def _where(computation_id: uuid.UUID) -> str:
    return f"{blast_radius_results.name}:{computation_id}:sealed"


def seal_subjects(secret: bytes, computation_id: uuid.UUID, listing: Mapping[str, str]) -> bytes:
    """The subjects with their protection, sealed with incident's own key, bound to the row."""
    body = json.dumps(dict(sorted(listing.items())), separators=(",", ":")).encode()
    return KeyWrap(_derived(secret, b"wrap")).wrap(_where(computation_id), body)


def open_subjects(secret: bytes, computation_id: uuid.UUID, sealed: bytes) -> dict[str, str]:
    opened: dict[str, str] = json.loads(
        KeyWrap(_derived(secret, b"wrap")).unwrap(_where(computation_id), sealed)
    )
    return opened


class UnknownBlastRadius(LookupError):
    """No stored blast radius with this id for this incident."""


@enforces("SEC-5")
async def notifiable_subjects(
    rt: ServiceRuntime, incident_id: uuid.UUID, computation_id: uuid.UUID
) -> list[str]:
    """The notifiable subjects (unsealed, or sealed under a key that was taken) of a stored
    computation of this incident, its sealed list opened inside the service and checked
    against the digest its event carries; raises UnknownBlastRadius (another incident's
    computation is unknown here: one incident's notices never reach another's subjects)."""
    async with rt.engine.connect() as conn:
        row = await store.result(conn, computation_id)
    if row is None or row.incident_id != incident_id:
        raise UnknownBlastRadius(str(computation_id))
    secret = await rt.secrets.get(LOOKUP_HMAC)
    listing = open_subjects(secret, computation_id, row.sealed)
    if not hmac.compare_digest(subjects_digest(secret, list(listing)), row.subjects_digest):
        raise ValueError(f"blast radius {computation_id}: its list does not match its digest")
    return sorted(s for s, p in listing.items() if Protection(p) in NOTIFIABLE)


@enforces("SEC-5")
async def compute(
    rt: ServiceRuntime,
    *,
    incident_id: uuid.UUID,
    scope: Scope,
    staff_id: str,
    role: str | None,
    feeds: Mapping[str, LogFeed],
    disclose_subjects: bool = False,
) -> Computed:
    """The blast radius of `scope`, recorded; with `disclose_subjects` each subject handed
    back is recorded as a read by the staff member (on the subject's access stream)."""
    async with rt.engine.connect() as conn:
        read = await store.sources(conn, scope)
    chains = []
    for src in sorted(read):
        feed = feeds.get(src)
        chains.append(
            ChainCheck(src, None, "no log feed for this source")
            if feed is None
            else await verify_source(feed)
        )
    secret = await rt.secrets.get(LOOKUP_HMAC)
    computation_id = uuid.uuid4()
    actor = Actor(kind=ActorKind.STAFF, id=staff_id, role=role)
    now = utcnow()
    async with rt.engine.begin() as conn:
        radius = blast_radius(scope, await store.groups(conn, scope))
        listing = {s: p.value for s, p in radius.protection.items()}
        digest = subjects_digest(secret, list(listing))
        event = _event(computation_id, incident_id, scope, radius, digest, chains)
        await store.add_result(
            conn,
            computation_id=computation_id,
            incident_id=incident_id,
            scope=scope,
            scope_value=event.scope_value,
            subjects=len(listing),
            notifiable_subjects=len(radius.notifiable),
            summary=event.model_dump(
                mode="json", include={"by_protection", "categories", "fields"}
            ),
            sealed=seal_subjects(secret, computation_id, listing),
            subjects_digest=digest,
            computed_by=staff_id,
            computed_at=now,
        )
        await rt.append(
            conn,
            [
                rt.envelope(
                    event,
                    stream_id=f"blast-radius-{incident_id}",
                    subject_id=None,
                    actor=actor,
                    purpose=Purpose.SECURITY,
                )
            ],
        )
        if disclose_subjects:
            await _record_reads(rt, conn, radius, actor)
    return Computed(computation_id, radius, tuple(chains), digest)


async def _record_reads(
    rt: ServiceRuntime, conn: AsyncConnection, radius: BlastRadius, actor: Actor
) -> None:
    for subject in sorted(radius.subjects):
        await rt.record_access(
            conn,
            subject_id=subject,
            actor=actor,
            purpose=Purpose.SECURITY,
            fields=["blast_radius_membership"],
            categories=sorted({*radius.categories} or {"unknown"}),
            case_reference="blast-radius",
        )


def _event(
    computation_id: uuid.UUID,
    incident_id: uuid.UUID,
    scope: Scope,
    radius: BlastRadius,
    digest: str,
    chains: Sequence[ChainCheck],
) -> BlastRadiusComputed:
    return BlastRadiusComputed(
        computation_id=computation_id,
        incident_id=incident_id,
        scope_kind=scope.kind,
        scope_value=None if scope.kind is ScopeKind.SUBJECT else scope.value,
        window_start=scope.start,
        window_end=scope.end,
        compromised_key_owners=len(scope.compromised_key_owners),
        subjects=len(radius.subjects),
        notifiable_subjects=len(radius.notifiable),
        by_protection=radius.by_protection(),
        categories=dict(radius.categories),
        fields=dict(radius.fields),
        subjects_digest=digest,
        verified_sources={c.source: c.head or 0 for c in chains if c.ok},
        unverified_sources={c.source: c.problem for c in chains if c.problem is not None},
    )

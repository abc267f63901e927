"""Publishing a policy version: the row and its `PolicyVersionPublished` event together.

A fresh system publishes its first version itself (the policy text shipped with the
service, a copy of `docs/spec/privacy-policy.txt`), so that apps always have a current
version to name in consents; later versions come from a privacy officer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import structlog
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_consent.tables import policy_versions
from expensura_events.catalog.consent import PolicyVersionPublished
from expensura_events.envelope import Actor, LegalBasis, utcnow
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import LegalGround, Purpose

log = structlog.get_logger("expensura.consent.policy")
POLICY_BASIS = LegalBasis(ground=LegalGround.OTHER_LAW, reference="POL-1 policy notice")
INITIAL_VERSION = "1"
INITIAL_TEXT = Path(__file__).with_name("privacy-policy.txt")
INITIAL_SUMMARY = "The Expensura Privacy Agreement as first published"


@dataclass(frozen=True)
class Published:
    version: str
    sha256: str
    summary: str
    effective_at: datetime
    published_at: datetime


async def publish_version(
    rt: ServiceRuntime,
    conn: AsyncConnection,
    *,
    version: str,
    text: str,
    summary: str,
    effective_at: datetime,
    actor: Actor,
) -> Published | None:
    """Record the version and its event in the caller's transaction; None if it exists."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    now = utcnow()
    inserted = await conn.execute(
        insert(policy_versions)
        .values(
            version=version,
            sha256=digest,
            text=text,
            summary=summary,
            effective_at=effective_at,
            published_at=now,
        )
        .on_conflict_do_nothing()
    )
    if inserted.rowcount != 1:
        return None
    await rt.append(
        conn,
        [
            rt.envelope(
                PolicyVersionPublished(
                    version=version, sha256=digest, effective_at=effective_at, summary=summary
                ),
                stream_id=f"policy-{version}",
                subject_id=None,
                actor=actor,
                purpose=Purpose.COMMUNICATION,
                legal_basis=POLICY_BASIS,
            )
        ],
        expected_version=0,
    )
    return Published(version, digest, summary, effective_at, now)


async def publish_initial_version(rt: ServiceRuntime) -> bool:
    """Publish version 1 from the shipped text unless some version exists; True once one
    does. Two processes starting together publish it once (the version is the key)."""
    async with rt.engine.begin() as conn:
        if (await conn.execute(select(policy_versions.c.version).limit(1))).first() is None:
            published = await publish_version(
                rt,
                conn,
                version=INITIAL_VERSION,
                text=INITIAL_TEXT.read_text(encoding="utf-8"),
                summary=INITIAL_SUMMARY,
                effective_at=utcnow(),
                actor=Actor.system("consent"),
            )
            if published is not None:
                log.info("policy.initial_version_published", version=INITIAL_VERSION)
    return True


async def publish_initial_version_on_start(rt: ServiceRuntime) -> None:
    """At start-up; a database that is not up yet leaves it to the consent worker."""
    try:
        await publish_initial_version(rt)
    except Exception as exc:  # the worker tries again every round until it succeeds
        log.warning("policy.initial_version_deferred", error=repr(exc))

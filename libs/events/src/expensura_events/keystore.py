"""Where subjects' data keys live: the `KeyStore` interface and its implementations.

Locally the keys are rows of a PostgreSQL table (`PostgresKeyStore`), each wrapped by the
master key; in production the same interface fronts a KMS such as Vault transit.
`InMemoryKeyStore` has the same semantics for unit tests, and
`testing/keystore_contract.py` holds the one contract every implementation passes:

- a subject's key is created once and read back unchanged (same key id);
- `destroy` is idempotent and permanent: a destroyed key is never created again;
- a retention hold's key (`<subject>#hold:<hold>`) outlives its subject's erasure but no
  new one is issued, nor an existing one used to seal, once the subject is erased.
"""

from __future__ import annotations

import os
from typing import Protocol
from uuid import uuid4

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from expensura_events.cipher import DataKey, MasterKey, SubjectErased
from expensura_events.envelope import utcnow
from expensura_events.tables import subject_keys


class KeyStore(Protocol):
    """Where subjects' data keys live. Local: a PostgreSQL table; production: a KMS."""

    async def get_or_create(self, subject_id: str) -> DataKey: ...

    async def get(self, subject_id: str) -> DataKey | None: ...

    async def get_or_create_many(self, subject_ids: set[str]) -> dict[str, DataKey]: ...

    async def destroy(self, subject_id: str) -> bool: ...


class PostgresKeyStore:
    """The local KMS: data keys wrapped by the master key, one row per subject."""

    def __init__(self, engine: AsyncEngine, master: MasterKey) -> None:
        self._engine = engine
        self._master = master

    async def get_or_create(self, subject_id: str) -> DataKey:
        base, _, hold = subject_id.partition("#hold:")
        if hold and await self._destroyed(base):
            raise SubjectErased(base)  # no new held records about an erased subject
        fresh = os.urandom(32)
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(subject_keys)
                .values(
                    subject_id=subject_id,
                    key_id=uuid4(),
                    kek_id=self._master.kek_id,
                    wrapped_key=self._master.wrap(subject_id, fresh),
                    created_at=utcnow(),
                )
                .on_conflict_do_nothing(index_elements=["subject_id"])
            )
            row = (
                await conn.execute(
                    select(subject_keys.c.key_id, subject_keys.c.wrapped_key).where(
                        subject_keys.c.subject_id == subject_id
                    )
                )
            ).one()
        if row.wrapped_key is None:
            raise SubjectErased(subject_id)
        return DataKey(row.key_id, self._master.unwrap(subject_id, row.wrapped_key))

    async def get_or_create_many(self, subject_ids: set[str]) -> dict[str, DataKey]:
        """One round trip for a batch of appends (a key per subject, created if new)."""
        if not subject_ids:
            return {}
        if any("#hold:" in s for s in subject_ids):  # rare: keep the erased-subject check
            return {s: await self.get_or_create(s) for s in subject_ids}
        wanted = sorted(subject_ids)
        select_keys = select(
            subject_keys.c.subject_id, subject_keys.c.key_id, subject_keys.c.wrapped_key
        ).where(subject_keys.c.subject_id.in_(wanted))
        async with self._engine.begin() as conn:
            rows = (await conn.execute(select_keys)).all()
            missing = set(wanted) - {r.subject_id for r in rows}
            if missing:  # only new subjects cost a key generation and a wrap
                now = utcnow()
                await conn.execute(
                    insert(subject_keys).on_conflict_do_nothing(index_elements=["subject_id"]),
                    [
                        {
                            "subject_id": s,
                            "key_id": uuid4(),
                            "kek_id": self._master.kek_id,
                            "wrapped_key": self._master.wrap(s, os.urandom(32)),
                            "created_at": now,
                        }
                        for s in sorted(missing)
                    ],
                )
                rows = (await conn.execute(select_keys)).all()
        out: dict[str, DataKey] = {}
        for row in rows:
            if row.wrapped_key is None:
                raise SubjectErased(row.subject_id)
            out[row.subject_id] = DataKey(
                row.key_id, self._master.unwrap(row.subject_id, row.wrapped_key)
            )
        return out

    async def _destroyed(self, subject_id: str) -> bool:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(subject_keys.c.destroyed_at).where(
                        subject_keys.c.subject_id == subject_id
                    )
                )
            ).one_or_none()
        return row is not None and row.destroyed_at is not None

    async def get(self, subject_id: str) -> DataKey | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(subject_keys.c.key_id, subject_keys.c.wrapped_key).where(
                        subject_keys.c.subject_id == subject_id
                    )
                )
            ).one_or_none()
        if row is None or row.wrapped_key is None:
            return None
        return DataKey(row.key_id, self._master.unwrap(subject_id, row.wrapped_key))

    async def destroy(self, subject_id: str) -> bool:
        """Destroy the subject's key. The row stays (with no key) so it is never re-created."""
        async with self._engine.begin() as conn:
            now = utcnow()
            await conn.execute(
                insert(subject_keys)
                .values(
                    subject_id=subject_id,
                    key_id=uuid4(),
                    kek_id=self._master.kek_id,
                    wrapped_key=None,
                    created_at=now,
                    destroyed_at=now,
                )
                .on_conflict_do_nothing(index_elements=["subject_id"])
            )
            result = await conn.execute(
                update(subject_keys)
                .where(
                    subject_keys.c.subject_id == subject_id, subject_keys.c.wrapped_key.is_not(None)
                )
                .values(wrapped_key=None, destroyed_at=now)
            )
        return bool(result.rowcount)


class InMemoryKeyStore:
    """The `KeyStore` semantics in a dict, for unit tests (nothing survives the process)."""

    def __init__(self) -> None:
        self._keys: dict[str, DataKey | None] = {}  # None: destroyed, never re-created

    async def get_or_create(self, subject_id: str) -> DataKey:
        base, _, hold = subject_id.partition("#hold:")
        if hold and base in self._keys and self._keys[base] is None:
            raise SubjectErased(base)  # no new held records about an erased subject
        if subject_id not in self._keys:
            self._keys[subject_id] = DataKey(uuid4(), os.urandom(32))
        key = self._keys[subject_id]
        if key is None:
            raise SubjectErased(subject_id)
        return key

    async def get(self, subject_id: str) -> DataKey | None:
        return self._keys.get(subject_id)

    async def get_or_create_many(self, subject_ids: set[str]) -> dict[str, DataKey]:
        return {s: await self.get_or_create(s) for s in sorted(subject_ids)}

    async def destroy(self, subject_id: str) -> bool:
        destroyed = self._keys.get(subject_id) is not None
        self._keys[subject_id] = None
        return destroyed

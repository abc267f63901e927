"""Where subjects' data keys live: the `KeyStore` interface and its implementations.

Locally the keys are rows of a PostgreSQL table (`PostgresKeyStore`), each wrapped by the
data-key-wrap sub-key of the master key; in production the same interface fronts a KMS
such as Vault transit. `InMemoryKeyStore` has the same semantics for unit tests, and
`testing/keystore_contract.py` holds the one contract every implementation passes:

- a subject's key is created once and read back unchanged (same key id);
- `destroy` is idempotent and permanent: a destroyed key is never created again;
- a key is never written back once destroyed (the table enforces it as well: services may
  only SELECT and INSERT, the erasure path destroys through `destroy_subject_key`);
- a retention hold's key (`<subject>#hold:<hold>`) outlives its subject's erasure but no
  new one is issued, nor an existing one used to seal, once the subject is erased.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import uuid4

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from expensura_events.cipher import (
    SERVICE_SECRET_LABELS,
    SERVICE_SECRET_WRAP,
    DataKey,
    KeyWrap,
    MasterKey,
    MasterKeys,
    SubjectErased,
)
from expensura_events.envelope import utcnow
from expensura_events.tables import service_secrets, subject_keys


class KeyStore(Protocol):
    """Where subjects' data keys live. Local: a PostgreSQL table; production: a KMS."""

    async def get_or_create(self, subject_id: str) -> DataKey: ...

    async def get(self, subject_id: str) -> DataKey | None: ...

    async def get_or_create_many(self, subject_ids: set[str]) -> dict[str, DataKey]: ...

    async def destroy(self, subject_id: str) -> bool: ...


class PostgresKeyStore:
    """The local KMS: data keys wrapped by the master key, one row per subject.

    New keys are wrapped by the current master key; a stored key is opened with the master
    key its row names (`kek_id`), so during a rotation both old and new wraps are read."""

    def __init__(self, engine: AsyncEngine, master: MasterKey | MasterKeys) -> None:
        self._engine = engine
        self._keys = master if isinstance(master, MasterKeys) else MasterKeys(master)
        self._master = self._keys.current

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
                    select(*_KEY_COLUMNS).where(subject_keys.c.subject_id == subject_id)
                )
            ).one()
        if row.wrapped_key is None:
            raise SubjectErased(subject_id)
        return self._open(row)

    async def get_or_create_many(self, subject_ids: set[str]) -> dict[str, DataKey]:
        """One round trip for a batch of appends (a key per subject, created if new)."""
        if not subject_ids:
            return {}
        if any("#hold:" in s for s in subject_ids):  # rare: keep the erased-subject check
            return {s: await self.get_or_create(s) for s in subject_ids}
        wanted = sorted(subject_ids)
        select_keys = select(*_KEY_COLUMNS).where(subject_keys.c.subject_id.in_(wanted))
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
            out[row.subject_id] = self._open(row)
        return out

    def _open(self, row: Any) -> DataKey:  # a row of _KEY_COLUMNS, wrapped_key not NULL
        master = self._keys.by_id(row.kek_id)
        return DataKey(row.key_id, master.unwrap(row.subject_id, row.wrapped_key))

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
                    select(*_KEY_COLUMNS).where(subject_keys.c.subject_id == subject_id)
                )
            ).one_or_none()
        if row is None or row.wrapped_key is None:
            return None
        return self._open(row)

    async def destroy(self, subject_id: str) -> bool:
        """Destroy the subject's key. The row stays (with no key) so it is never re-created.

        Only through `destroy_subject_key`: the database grants that function to the erasure
        path alone, and no service role may UPDATE a key."""
        async with self._engine.begin() as conn:
            destroyed = await conn.scalar(select(func.destroy_subject_key(subject_id)))
        return bool(destroyed)


class ServiceSecrets:
    """This service's own secrets in the key store: a random 32-byte key per label, created
    on first use, wrapped by the master key's service-secret-wrap sub-key. The database shows
    a service only the rows its role owns; a rotation re-wraps them, so a secret (and every
    look-up hash or wrap made with it) stays the same across master keys."""

    def __init__(self, engine: AsyncEngine, master: MasterKey | MasterKeys) -> None:
        self._engine = engine
        self._keys = master if isinstance(master, MasterKeys) else MasterKeys(master)
        self._cache: dict[str, bytes] = {}

    async def get(self, label: str) -> bytes:
        if label not in SERVICE_SECRET_LABELS:
            raise ValueError(f"unknown service secret {label!r}")
        if label in self._cache:
            return self._cache[label]
        current = self._keys.current
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(service_secrets)
                .values(
                    label=label,
                    kek_id=current.kek_id,
                    wrapped=current.key_wrap(SERVICE_SECRET_WRAP).wrap(
                        _secret_context(label), os.urandom(32)
                    ),
                    created_at=utcnow(),
                )
                .on_conflict_do_nothing(index_elements=["owner", "label"])
            )
            row = (
                await conn.execute(
                    select(service_secrets.c.kek_id, service_secrets.c.wrapped).where(
                        service_secrets.c.label == label,
                        service_secrets.c.owner == func.current_user(),
                    )
                )
            ).one()
        wrap = self._keys.by_id(row.kek_id).key_wrap(SERVICE_SECRET_WRAP)
        secret = wrap.unwrap(_secret_context(label), row.wrapped)
        self._cache[label] = secret
        return secret

    async def key_wrap(self, label: str) -> KeyWrap:
        return KeyWrap(await self.get(label))


def _secret_context(label: str) -> str:
    return f"service-secret:{label}"


_KEY_COLUMNS = (
    subject_keys.c.subject_id,
    subject_keys.c.key_id,
    subject_keys.c.kek_id,
    subject_keys.c.wrapped_key,
)


async def _rotate_service_secrets(owner_engine: AsyncEngine, keys: MasterKeys) -> Rotation:
    """The services' own secrets first: few rows, one transaction."""
    current = keys.current
    done = Rotation()
    async with owner_engine.begin() as conn:
        rows = (
            await conn.execute(
                select(service_secrets).where(service_secrets.c.kek_id != current.kek_id)
            )
        ).all()
        for row in rows:
            context = _secret_context(row.label)
            old = keys.by_id(row.kek_id).key_wrap(SERVICE_SECRET_WRAP)
            secret = old.unwrap(context, row.wrapped)
            moved = await conn.scalar(
                text("SELECT rewrap_service_secret(:o, :l, :old_kek, :old, :new_kek, :new)"),
                {
                    "o": row.owner,
                    "l": row.label,
                    "old_kek": row.kek_id,
                    "old": row.wrapped,
                    "new_kek": current.kek_id,
                    "new": current.key_wrap(SERVICE_SECRET_WRAP).wrap(context, secret),
                },
            )
            done.rewrapped += 1 if moved else 0
            done.skipped += 0 if moved else 1
    return done


@dataclass
class Rotation:
    """What `rotate_master` did: keys re-wrapped now, and keys it found already moved or
    destroyed between reading and writing (left as they were)."""

    rewrapped: int = 0
    skipped: int = 0

    @property
    def seen(self) -> int:
        return self.rewrapped + self.skipped


async def rotate_master(
    owner_engine: AsyncEngine,
    keys: MasterKeys,
    *,
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
) -> Rotation:
    """Re-wrap every live key not yet under `keys.current`, in batches, as the key store's
    owner. Each row moves by a compare-and-swap on its old wrap (`rewrap_subject_key`), so
    services keep creating, reading and destroying keys meanwhile, and a rotation that
    stopped half-way is finished by running it again. A key under a master key that is
    neither current nor previous stops the rotation (`UnknownMasterKey`): nothing is lost,
    but the operator must say which key that was."""
    current = keys.current
    done = await _rotate_service_secrets(owner_engine, keys)
    after = ""
    while True:
        async with owner_engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(*_KEY_COLUMNS)
                    .where(
                        subject_keys.c.subject_id > after,
                        subject_keys.c.wrapped_key.is_not(None),
                        subject_keys.c.kek_id != current.kek_id,
                    )
                    .order_by(subject_keys.c.subject_id)
                    .limit(batch_size)
                )
            ).all()
        if not rows:
            return done
        async with owner_engine.begin() as conn:
            for row in rows:
                old = keys.by_id(row.kek_id)
                raw = old.unwrap(row.subject_id, row.wrapped_key)  # proves the old wrap
                moved = await conn.scalar(
                    text("SELECT rewrap_subject_key(:s, :old_kek, :old_wrapped, :new_kek, :new)"),
                    {
                        "s": row.subject_id,
                        "old_kek": row.kek_id,
                        "old_wrapped": row.wrapped_key,
                        "new_kek": current.kek_id,
                        "new": current.wrap(row.subject_id, raw),
                    },
                )
                if moved:
                    done.rewrapped += 1
                else:
                    done.skipped += 1
        after = rows[-1].subject_id
        if progress is not None:
            progress(len(rows))


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

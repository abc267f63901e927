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
  new one is issued, nor an existing one used to seal, once the subject is erased;
- `readable` opens a subject's keys by key id (a sealed box names its key), `live` says
  whether any key of the subject is left.

Keys have owners (keystore_0004): each service seals with its own key of a subject and
opens another service's only as a declared reader, so a compromised service decrypts what
it writes and what it must read, not everything; the database enforces it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import uuid4

from sqlalchemy import ARRAY, Text, any_, bindparam, func, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
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
from expensura_events.db_errors import sqlstate
from expensura_events.envelope import utcnow
from expensura_events.metrics import timed_keystore
from expensura_events.tables import service_secrets, subject_keys


class KeyStore(Protocol):
    """Where subjects' data keys live. Local: a PostgreSQL table; production: a KMS.

    A service seals with keys of its own (`get_or_create`) and opens every key it may read
    (`readable`: its own, those of the services it is a declared reader of, and the shared
    keys from before keys had owners). Destroying is per subject, across every owner."""

    async def get_or_create(self, subject_id: str) -> DataKey: ...

    async def get(self, subject_id: str) -> DataKey | None: ...

    async def readable(self, subject_id: str) -> dict[str, DataKey]: ...

    async def live(self, subject_id: str) -> bool: ...

    async def get_or_create_many(self, subject_ids: set[str]) -> dict[str, DataKey]: ...

    async def destroy(self, subject_id: str) -> bool: ...


HOLD_MARK = "#hold:"  # `<subject>#hold:<hold>`: a retention hold's key (envelope.key_owner)
SHARED_OWNER = "*"  # keys written before keys had owners (keystore_0004): every reader's
SUBJECT_ERASED_SQLSTATE = "KS001"  # keystore_0004's trigger: no new key for an erased subject


def _wrap_context(subject_id: str, owner: str) -> str:
    """The wrap's additional data: a key opens only as its subject's, under its owner (a
    wrapped key copied to another owner's row does not open)."""
    return subject_id if owner == SHARED_OWNER else f"{subject_id}|owner:{owner}"


_ME = func.current_user()


class PostgresKeyStore:
    """The local KMS: data keys wrapped by the master key, a row per subject and owner.

    The database decides what a service's role may see (row-level security, keystore_0004):
    its own keys, its declared owners' and the shared ones. New keys are wrapped by the
    current master key; a stored key is opened with the master key its row names (`kek_id`),
    so during a rotation both old and new wraps are read."""

    def __init__(
        self, engine: AsyncEngine, master: MasterKey | MasterKeys, *, service: str | None = None
    ) -> None:
        self._engine = engine
        self._keys = master if isinstance(master, MasterKeys) else MasterKeys(master)
        self._master = self._keys.current
        self.service = service  # whose `expensura_keystore_duration_seconds`; None: not timed
        self._role_name: str | None = None

    async def _role(self, conn: Any) -> str:
        # The engine's user, which a connection of it cannot change: asked once.
        if self._role_name is None:
            self._role_name = str(await conn.scalar(select(_ME)))
        return self._role_name

    async def get_or_create(self, subject_id: str) -> DataKey:
        return (await self.get_or_create_many({subject_id}))[subject_id]

    @timed_keystore("get_or_create_many")
    async def get_or_create_many(self, subject_ids: set[str]) -> dict[str, DataKey]:
        """This service's key of each subject (created if new), in one round trip for the
        keys that exist. SubjectErased if a subject (or a held subject) was erased."""
        if not subject_ids:
            return {}
        wanted = sorted(subject_ids)
        # A hold's key is not used once its subject is erased (rare: checked one by one).
        await self._refuse_erased([s for s in wanted if "#hold:" in s])
        mine = _MY_KEYS.params(wanted=wanted)
        try:
            # Most appends are for subjects whose keys exist: one statement, its own
            # transaction (one round trip, not BEGIN, SELECT, COMMIT).
            async with self._engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                rows = (await conn.execute(mine)).all()
            missing = sorted(set(wanted) - {r.subject_id for r in rows})
            if missing:  # only new keys cost a generation and a wrap
                async with self._engine.begin() as conn:
                    role = await self._role(conn)
                    now = utcnow()
                    await conn.execute(
                        insert(subject_keys).on_conflict_do_nothing(
                            index_elements=["subject_id", "owner"]
                        ),
                        [
                            {
                                "subject_id": s,
                                "key_id": uuid4(),
                                "kek_id": self._master.kek_id,
                                "wrapped_key": self._master.wrap(
                                    _wrap_context(s, role), os.urandom(32)
                                ),
                                "created_at": now,
                            }
                            for s in missing
                        ],
                    )
                    rows = (await conn.execute(mine)).all()
        except DBAPIError as exc:
            # keystore_0004's trigger: a subject is erased (by another owner's tombstone)
            if sqlstate(exc) == SUBJECT_ERASED_SQLSTATE:
                await self._refuse_erased(wanted)
            raise
        out: dict[str, DataKey] = {}
        for row in rows:
            if row.wrapped_key is None:
                raise SubjectErased(row.subject_id)
            out[row.subject_id] = self._open(row)
        return out

    async def _refuse_erased(self, subject_ids: list[str]) -> None:
        """SubjectErased for the first of these (or the subject of a hold) that was erased."""
        if not subject_ids:
            return
        async with self._engine.connect() as conn:
            for s in subject_ids:
                for who in dict.fromkeys((s, s.partition("#hold:")[0])):
                    if await conn.scalar(select(func.subject_key_state(who))) == "destroyed":
                        raise SubjectErased(who)

    def _open(self, row: Any) -> DataKey:  # a row of _KEY_COLUMNS, wrapped_key not NULL
        master = self._keys.by_id(row.kek_id)
        raw = master.unwrap(_wrap_context(row.subject_id, row.owner), row.wrapped_key)
        return DataKey(row.key_id, raw)

    @timed_keystore("get")
    async def get(self, subject_id: str) -> DataKey | None:
        """This service's own live key of the subject, if it has one."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(*_KEY_COLUMNS).where(
                        subject_keys.c.subject_id == subject_id, subject_keys.c.owner == _ME
                    )
                )
            ).one_or_none()
        if row is None or row.wrapped_key is None:
            return None
        return self._open(row)

    @timed_keystore("readable")
    async def readable(self, subject_id: str) -> dict[str, DataKey]:
        """Every live key of the subject this service may open, by key id."""
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(*_KEY_COLUMNS).where(
                        subject_keys.c.subject_id == subject_id,
                        subject_keys.c.wrapped_key.is_not(None),
                    )
                )
            ).all()
        return {str(r.key_id): self._open(r) for r in rows}

    @timed_keystore("readable_many")
    async def readable_many(self, subject_ids: set[str]) -> dict[str, dict[str, DataKey]]:
        """`readable` for many subjects in one query each 5,000 (every one of them gets an
        entry, empty when it has no key this service may open)."""
        out: dict[str, dict[str, DataKey]] = {s: {} for s in subject_ids}
        wanted = sorted(subject_ids)
        async with self._engine.connect() as conn:
            for i in range(0, len(wanted), 5000):
                rows = await conn.execute(
                    select(*_KEY_COLUMNS).where(
                        subject_keys.c.subject_id.in_(wanted[i : i + 5000]),
                        subject_keys.c.wrapped_key.is_not(None),
                    )
                )
                for r in rows:
                    out[r.subject_id][str(r.key_id)] = self._open(r)
        return out

    @timed_keystore("live")
    async def live(self, subject_id: str) -> bool:
        """Whether any service still holds a live key of the subject (no key is shown)."""
        async with self._engine.connect() as conn:
            return await conn.scalar(select(func.subject_key_state(subject_id))) == "live"

    @timed_keystore("destroy")
    async def destroy(self, subject_id: str) -> bool:
        """Destroy every owner's key of the subject. The rows stay (with no key), and a
        tombstone, so no key is ever created for it again.

        Only through `destroy_subject_key`: the database grants that function to the erasure
        path alone, and no service role may UPDATE a key. A retention hold's key is ended by
        the service that holds it, through `destroy_held_key` (its own keys of that hold
        only, keystore_0005)."""
        async with self._engine.begin() as conn:
            if HOLD_MARK in subject_id:  # a retention hold's key: its owner ends the hold
                destroyed = await conn.scalar(select(func.destroy_held_key(subject_id)))
            else:
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
    subject_keys.c.owner,
    subject_keys.c.key_id,
    subject_keys.c.kek_id,
    subject_keys.c.wrapped_key,
)
# Built once: every append asks it, and building an IN clause per call was a tenth of an
# append's CPU (py-spy).
_MY_KEYS = select(*_KEY_COLUMNS).where(
    subject_keys.c.subject_id == any_(bindparam("wanted", type_=ARRAY(Text))),
    subject_keys.c.owner == _ME,
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
    after = ("", "")  # keyset: (subject, owner)
    while True:
        async with owner_engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(*_KEY_COLUMNS)
                    .where(
                        tuple_(subject_keys.c.subject_id, subject_keys.c.owner) > after,
                        subject_keys.c.wrapped_key.is_not(None),
                        subject_keys.c.kek_id != current.kek_id,
                    )
                    .order_by(subject_keys.c.subject_id, subject_keys.c.owner)
                    .limit(batch_size)
                )
            ).all()
        if not rows:
            return done
        async with owner_engine.begin() as conn:
            for row in rows:
                old = keys.by_id(row.kek_id)
                context = _wrap_context(row.subject_id, row.owner)
                raw = old.unwrap(context, row.wrapped_key)  # proves the old wrap
                moved = await conn.scalar(
                    text("SELECT rewrap_subject_key(:s, :old_kek, :old_wrapped, :new_kek, :new)"),
                    {
                        "s": row.subject_id,
                        "old_kek": row.kek_id,
                        "old_wrapped": row.wrapped_key,
                        "new_kek": current.kek_id,
                        "new": current.wrap(context, raw),
                    },
                )
                if moved:
                    done.rewrapped += 1
                else:
                    done.skipped += 1
        after = (rows[-1].subject_id, rows[-1].owner)
        if progress is not None:
            progress(len(rows))


class InMemoryKeyStore:
    """The `KeyStore` semantics in a dict, for unit tests (nothing survives the process): one
    owner, which reads its own keys only."""

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

    async def readable(self, subject_id: str) -> dict[str, DataKey]:
        key = self._keys.get(subject_id)
        return {} if key is None else {str(key.key_id): key}

    async def live(self, subject_id: str) -> bool:
        return self._keys.get(subject_id) is not None

    async def get_or_create_many(self, subject_ids: set[str]) -> dict[str, DataKey]:
        return {s: await self.get_or_create(s) for s in sorted(subject_ids)}

    async def destroy(self, subject_id: str) -> bool:
        destroyed = self._keys.get(subject_id) is not None
        self._keys[subject_id] = None
        return destroyed

"""Field encryption with per-subject data keys, and crypto-shredding.

Envelope encryption: each data subject has a 256-bit data key; it is stored wrapped
(AES-GCM) by a master key from configuration. Destroying the wrapped key makes every copy
of that subject's personal fields unreadable wherever it was copied (log, Kafka, backups),
while the stored bytes, and so the hash chain, stay exactly as they were.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID, uuid4

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from expensura_events.envelope import REDACTED, utcnow
from expensura_events.tables import subject_keys

ENC_MARK = "$enc"
ALGORITHM = "A256GCM"


class SubjectErased(Exception):
    """The subject's key was destroyed: nothing new can be recorded about them."""

    def __init__(self, subject_id: str) -> None:
        super().__init__(f"data subject {subject_id} has been erased")
        self.subject_id = subject_id


@dataclass(frozen=True)
class DataKey:
    key_id: UUID
    key: bytes


class KeyStore(Protocol):
    """Where subjects' data keys live. Local: a PostgreSQL table; production: a KMS."""

    async def get_or_create(self, subject_id: str) -> DataKey: ...

    async def get(self, subject_id: str) -> DataKey | None: ...

    async def get_or_create_many(self, subject_ids: set[str]) -> dict[str, DataKey]: ...

    async def destroy(self, subject_id: str) -> bool: ...


class MasterKey:
    """The key-encryption key. Its id is a fingerprint, so rotation can tell keys apart."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the master key must be 32 bytes (base64 in configuration)")
        self._aead = AESGCM(key)
        self.kek_id = hashlib.sha256(b"expensura-kek" + key).hexdigest()[:16]

    @classmethod
    def from_base64(cls, value: str) -> MasterKey:
        return cls(base64.b64decode(value))

    def wrap(self, subject_id: str, data_key: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, data_key, subject_id.encode())

    def unwrap(self, subject_id: str, wrapped: bytes) -> bytes:
        return self._aead.decrypt(wrapped[:12], wrapped[12:], subject_id.encode())


class PostgresKeyStore:
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


class FieldCipher:
    """Encrypts and decrypts marked payload fields. Keys are looked up once per call."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys

    async def encrypt_fields(
        self,
        subject_id: str,
        aad_prefix: str,
        values: dict[str, Any],
        keys: dict[str, DataKey] | None = None,
    ) -> dict[str, Any]:
        """Seal `values` with the subject's key (looked up in `keys` first, if given)."""
        if not values:
            return {}
        key = keys.get(subject_id) if keys is not None else None
        if key is None:
            key = await self.keys.get_or_create(subject_id)
        aead = AESGCM(key.key)
        out: dict[str, Any] = {}
        for name, value in values.items():
            nonce = os.urandom(12)
            plaintext = _json_bytes(value)
            ct = aead.encrypt(nonce, plaintext, f"{aad_prefix}:{name}".encode())
            out[name] = {
                ENC_MARK: ALGORITHM,
                "kid": str(key.key_id),
                "iv": _b64(nonce),
                "ct": _b64(ct),
            }
        return out

    async def decrypt_fields(
        self,
        subject_id: str | None,
        aad_prefix: str,
        payload: dict[str, Any],
        cache: dict[str, DataKey | None] | None = None,
    ) -> dict[str, Any]:
        """Return the payload with encrypted fields opened, or the redaction marker."""
        sealed = {k: v for k, v in payload.items() if isinstance(v, dict) and ENC_MARK in v}
        if not sealed:
            return payload
        cache = {} if cache is None else cache
        key: DataKey | None = None
        if subject_id is not None:
            if subject_id not in cache:
                cache[subject_id] = await self.keys.get(subject_id)
            key = cache[subject_id]
        opened = dict(payload)
        for name, box in sealed.items():
            if key is None or str(key.key_id) != box.get("kid"):
                opened[name] = REDACTED
                continue
            plaintext = AESGCM(key.key).decrypt(
                _unb64(box["iv"]), _unb64(box["ct"]), f"{aad_prefix}:{name}".encode()
            )
            opened[name] = _from_json_bytes(plaintext)
        return opened


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _from_json_bytes(data: bytes) -> Any:
    return json.loads(data)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(data: str) -> bytes:
    return base64.b64decode(data)

"""Field encryption with per-subject data keys, and crypto-shredding (no storage here).

Envelope encryption: each data subject has a 256-bit data key; it is stored wrapped
(AES-GCM) by a sub-key of the master key from configuration. Destroying the wrapped key
makes every copy of that subject's personal fields unreadable wherever it was copied (log,
Kafka, backups), while the stored bytes, and so the hash chain, stay exactly as they were.
Where the keys live is `keystore.py`'s concern; the cipher only needs to look them up.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from expensura_events.envelope import REDACTED
from expensura_events.obligations import enforces

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


class DataKeys(Protocol):
    """What the cipher needs of a key store (every `keystore.KeyStore` is one): the key it
    seals with, and the keys it may open, by key id."""

    async def get_or_create(self, subject_id: str) -> DataKey: ...

    async def readable(self, subject_id: str) -> dict[str, DataKey]: ...


# Keys already looked up, per subject: what `readable` returned (key id → key).
KeyCache = dict[str, dict[str, DataKey]]


K = TypeVar("K", bound=DataKeys)


# The master key is never used as a key itself: each use has its own sub-key (HKDF-SHA256
# with a label), so a look-up hash, a pseudonym or a token key reveals nothing about the
# key that wraps subjects' data keys, and no key is used for two algorithms.
DATA_KEY_WRAP = "data-key-wrap"
SERVICE_SECRET_WRAP = "service-secret-wrap"
# A service's own secrets: random keys kept in the key store (`keystore.ServiceSecrets`),
# wrapped by the service-secret-wrap sub-key, so they survive a master-key rotation.
LOOKUP_HMAC = "lookup-hmac"
PSEUDONYM = "pseudonym"
TOKEN_KEYS = "token-keys"
TOTP_SECRETS = "totp-secrets"
# The root of the per-token keys partners sign their requests with (the sharing gateway).
REQUEST_SIGNING = "request-signing"
SERVICE_SECRET_LABELS = frozenset(
    {LOOKUP_HMAC, PSEUDONYM, TOKEN_KEYS, TOTP_SECRETS, REQUEST_SIGNING}
)
# Every label is also a sub-key of the master (HKDF), for a caller holding only the master
# key (consent's receipt-signing keys until it takes its token-keys secret from the store).
SUBKEY_LABELS = frozenset({DATA_KEY_WRAP, SERVICE_SECRET_WRAP}) | SERVICE_SECRET_LABELS


class KeyWrap:
    """AES-GCM wrapping under one sub-key; `context` (the AAD) binds a wrap to its owner."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def wrap(self, context: str, secret: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, secret, context.encode())

    def unwrap(self, context: str, wrapped: bytes) -> bytes:
        return self._aead.decrypt(wrapped[:12], wrapped[12:], context.encode())


class MasterKey:
    """The root of every configured key. Its id is a fingerprint, so rotation can tell
    master keys apart; `wrap`/`unwrap` use the data-key-wrap sub-key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the master key must be 32 bytes (base64 in configuration)")
        self._key = key
        self.kek_id = hashlib.sha256(b"expensura-kek" + key).hexdigest()[:16]
        self._data_keys = self.key_wrap(DATA_KEY_WRAP)

    @classmethod
    def from_base64(cls, value: str) -> MasterKey:
        return cls(base64.b64decode(value))

    def subkey(self, label: str) -> bytes:
        """The 32-byte sub-key for one use (one of `SUBKEY_LABELS`)."""
        if label not in SUBKEY_LABELS:
            raise ValueError(f"unknown sub-key label {label!r}")
        hkdf = HKDF(algorithm=SHA256(), length=32, salt=None, info=b"expensura:" + label.encode())
        return hkdf.derive(self._key)

    def key_wrap(self, label: str) -> KeyWrap:
        return KeyWrap(self.subkey(label))

    def wrap(self, subject_id: str, data_key: bytes) -> bytes:
        return self._data_keys.wrap(subject_id, data_key)

    def unwrap(self, subject_id: str, wrapped: bytes) -> bytes:
        return self._data_keys.unwrap(subject_id, wrapped)


class MasterKeys:
    """The current master key and, during a rotation, the previous one: new wraps use the
    current key; a stored wrap is opened with the key its `kek_id` names."""

    def __init__(self, current: MasterKey, previous: MasterKey | None = None) -> None:
        self.current = current
        self.previous = previous
        self._by_id = {current.kek_id: current}
        if previous is not None:
            self._by_id.setdefault(previous.kek_id, previous)

    @classmethod
    def from_base64(cls, current: str, previous: str | None = None) -> MasterKeys:
        return cls(
            MasterKey.from_base64(current),
            MasterKey.from_base64(previous) if previous else None,
        )

    def by_id(self, kek_id: str) -> MasterKey:
        try:
            return self._by_id[kek_id]
        except KeyError:
            raise UnknownMasterKey(kek_id) from None


class UnknownMasterKey(Exception):
    """A key was wrapped by a master key this process was not given."""

    def __init__(self, kek_id: str) -> None:
        super().__init__(f"no configured master key has id {kek_id}")
        self.kek_id = kek_id


class FieldCipher(Generic[K]):
    """Encrypts and decrypts marked payload fields. Keys are looked up once per call.

    Generic in its key store so that callers keep the store's full type (`cipher.keys`)."""

    def __init__(self, keys: K) -> None:
        self.keys = keys

    @enforces("SEC-1")
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

    async def prefetch(self, subject_ids: set[str], cache: KeyCache) -> None:
        """Fill `cache` with the readable keys of those of `subject_ids` it lacks, in one
        look-up where the key store offers one (`readable_many`), so that a batch of
        records about many subjects costs one round trip, not one per subject."""
        wanted = subject_ids - cache.keys()
        if not wanted:
            return
        many = getattr(self.keys, "readable_many", None)
        if many is not None:
            cache.update(await many(wanted))
            return
        for subject_id in wanted:
            cache[subject_id] = await self.keys.readable(subject_id)

    async def decrypt_fields(
        self,
        subject_id: str | None,
        aad_prefix: str,
        payload: dict[str, Any],
        cache: KeyCache | None = None,
    ) -> dict[str, Any]:
        """Return the payload with encrypted fields opened, or the redaction marker where
        the box's key is destroyed or not this service's to open."""
        sealed = {k: v for k, v in payload.items() if isinstance(v, dict) and ENC_MARK in v}
        if not sealed:
            return payload
        cache = {} if cache is None else cache
        keys: dict[str, DataKey] = {}
        if subject_id is not None:
            # A cache lives for one batch of records that exist already, and so do their keys.
            if subject_id not in cache:
                cache[subject_id] = await self.keys.readable(subject_id)
            keys = cache[subject_id]
        opened = dict(payload)
        for name, box in sealed.items():
            key = keys.get(str(box.get("kid")))
            if key is None:
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

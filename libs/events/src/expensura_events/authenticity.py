"""Authentic events: every service signs what it appends; consumers verify before applying.

The broker authenticates nobody, so a record on a topic proves nothing by being there. At
append, the service signs SHA-256 of the stored record bytes with its own Ed25519 key; the
signature and the key's id are stored beside the record in the log, served by
`/internal/log` and sent as Kafka headers. A consumer checks, before anything is applied,
that the record is signed by a key of the service that owns the topic (or the log feed) it
came from, that the record says it comes from that service, that its type is one that
service publishes, that every personal-data field is sealed, and that an
`rights.ErasureConfirmed` names the service that signed it. The inbox then deduplicates on
the verified record's own event id, never on a header.

Key ids are derived from the public key (the first 16 hex digits of its SHA-256), so a
header cannot name a key that does not match, and a rotation only has to publish the next
public key (in `EXPENSURA_EVENT_PUBLIC_KEYS`) before the service starts signing with it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from expensura_events import ed25519
from expensura_events.cipher import ENC_MARK
from expensura_events.obligations import enforces
from expensura_events.registry import REGISTRY, EventRegistry, personal_fields

# What is signed: a context label, then the record's hash. The label keeps these signatures
# from being valid for anything else an Ed25519 key might sign.
SIGNING_CONTEXT = b"expensura.event-record.v1\x00"
PLATFORM = "platform"  # registry source of event types every service publishes
ERASURE_CONFIRMED = "rights.ErasureConfirmed"

# Why a record was refused (the dead letter's `error` and the runner's counters).
UNSIGNED = "unsigned"
SIGNATURE = "signature"
WRONG_SIGNER = "wrong-signer"
WRONG_TOPIC = "wrong-topic"
UNSEALED = "unsealed-personal-field"
MALFORMED = "malformed"
REASONS = (UNSIGNED, SIGNATURE, WRONG_SIGNER, WRONG_TOPIC, UNSEALED, MALFORMED)


class RejectedEvent(Exception):
    """A record that failed verification: never applied, parked as a dead letter.

    The message holds the reason code and a fixed description, never a value of the record.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def signed_message(record: bytes) -> bytes:
    return SIGNING_CONTEXT + hashlib.sha256(record).digest()


@dataclass(frozen=True)
class RecordSignature:
    signer: str
    key_id: str
    signature: bytes


class EventSigner:
    """One service's private event-signing key."""

    def __init__(self, service: str, private_key: Ed25519PrivateKey) -> None:
        self.service, self._private = service, private_key
        self.key_id = ed25519.key_id(private_key.public_key())

    @classmethod
    def from_base64(cls, service: str, seed: str) -> EventSigner:
        """`seed`: base64 of the 32-byte Ed25519 seed (EXPENSURA_EVENT_SIGNING_KEY)."""
        return cls(service, ed25519.private_key(seed))

    @enforces("SEC-3")
    def sign(self, record: bytes) -> RecordSignature:
        return RecordSignature(
            self.service, self.key_id, self._private.sign(signed_message(record))
        )


class PublicKeys:
    """Every service's published event-verification keys, by key id."""

    def __init__(self, keys: Mapping[str, Sequence[Ed25519PublicKey]]) -> None:
        self._by_id: dict[str, tuple[str, Ed25519PublicKey]] = {}
        for service, public_keys in keys.items():
            for public in public_keys:
                self._by_id[ed25519.key_id(public)] = (service, public)

    @classmethod
    def from_base64(cls, keys: Mapping[str, Sequence[str]]) -> PublicKeys:
        """`keys`: service → base64 raw public keys (EXPENSURA_EVENT_PUBLIC_KEYS)."""
        return cls(
            {service: [ed25519.public_key(k) for k in values] for service, values in keys.items()}
        )

    def lookup(self, kid: str) -> tuple[str, Ed25519PublicKey] | None:
        return self._by_id.get(kid)


def fallback_event_id(record: bytes, claimed: str | None) -> str:
    """An id to park an unverifiable record under: its claim if it is a UUID, else one
    derived from its bytes (the dead-letter table needs a UUID, and the same bytes park once)."""
    if claimed is not None:
        try:
            return str(uuid.UUID(claimed))
        except ValueError:
            pass
    return str(uuid.UUID(bytes=hashlib.sha256(record).digest()[:16]))


def claimed_event_id(record: bytes) -> str | None:
    try:
        data = json.loads(record)
    except (ValueError, RecursionError):  # unverified bytes: anything, deep nesting included
        return None
    value = data.get("event_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


class EventVerifier:
    """The checks a record passes before any projection applies it (see module doc)."""

    def __init__(self, keys: PublicKeys, registry: EventRegistry = REGISTRY) -> None:
        self.keys, self.registry = keys, registry

    @enforces("SEC-3")
    def verify(
        self, owner: str, record: bytes, signature: bytes | None, kid: str | None
    ) -> dict[str, Any]:
        """The record's envelope if `owner` (the service whose topic or log feed delivered
        it) signed it and it passes every rule; raises `RejectedEvent` otherwise."""
        if not signature or not kid:
            raise RejectedEvent(UNSIGNED, "no signature or key id")
        found = self.keys.lookup(kid)
        if found is None:
            raise RejectedEvent(SIGNATURE, "signed with a key no service published")
        signer, public = found
        if signer != owner:
            raise RejectedEvent(WRONG_SIGNER, "signed by a service that does not own the topic")
        try:
            public.verify(signature, signed_message(record))
        except InvalidSignature:
            raise RejectedEvent(SIGNATURE, "signature does not match the record") from None
        try:
            data = json.loads(record)
        except (ValueError, RecursionError):
            raise RejectedEvent(MALFORMED, "record is not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("payload"), dict):
            raise RejectedEvent(MALFORMED, "record is not an envelope")
        try:
            uuid.UUID(str(data.get("event_id")))
        except ValueError:
            raise RejectedEvent(MALFORMED, "record has no event id") from None
        if data.get("source") != owner:
            raise RejectedEvent(WRONG_SIGNER, "record names another source than its signer")
        self._check_payload(owner, data)
        return data

    @enforces("SEC-1")
    def _check_payload(self, owner: str, data: dict[str, Any]) -> None:
        event_type, payload = data.get("event_type"), data["payload"]
        if not isinstance(event_type, str) or not self.registry.known(event_type):
            return  # a type this process has no model for: no projection here applies it
        if self.registry.source_of(event_type) not in (owner, PLATFORM):
            raise RejectedEvent(WRONG_TOPIC, "event type is published by another service")
        for name in personal_fields(self.registry.model(event_type)):
            value = payload.get(name)
            if value is not None and not _sealed(value):
                raise RejectedEvent(UNSEALED, f"personal field {name} is not sealed")
        if event_type == ERASURE_CONFIRMED and payload.get("service") != owner:
            raise RejectedEvent(WRONG_SIGNER, "erasure confirmed for another service")


def _sealed(value: Any) -> bool:
    """The shape `FieldCipher.encrypt_fields` stores: algorithm, key id, nonce, ciphertext."""
    if not isinstance(value, dict) or set(value) != {ENC_MARK, "kid", "iv", "ct"}:
        return False
    try:
        return all(isinstance(value[k], str) for k in ("kid", "iv", "ct")) and bool(
            base64.b64decode(value["ct"], validate=True)
        )
    except (binascii.Error, ValueError):
        return False

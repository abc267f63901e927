"""Envelope <-> stored bytes. Encryption is a step of this mapping, not of the handlers.

The stored record is canonical JSON (sorted keys, no spaces) of the whole envelope with
personal fields encrypted. The hash chain covers exactly these bytes, so destroying a key
later changes nothing that was hashed.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from expensura_events.authenticity import EventVerifier, PublicKeys
from expensura_events.cipher import DataKey, FieldCipher, KeyCache
from expensura_events.envelope import REDACTED, DomainEvent, EventEnvelope, key_owner
from expensura_events.keystore import KeyStore
from expensura_events.obligations import enforces
from expensura_events.registry import REGISTRY, EventRegistry, personal_fields


class MissingDataSubject(ValueError):
    pass


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class EventMapper:
    def __init__(
        self,
        cipher: FieldCipher[KeyStore],
        registry: EventRegistry = REGISTRY,
        verifier: EventVerifier | None = None,
    ) -> None:
        self.cipher = cipher
        self.registry = registry
        # Without published keys every record is refused: verification fails closed.
        self.verifier = verifier or EventVerifier(PublicKeys({}), registry)

    def key_owner_needed(self, envelope: EventEnvelope) -> str | None:
        """Whose key sealing this envelope needs, or None if it carries no personal data."""
        payload = envelope.payload
        if not isinstance(payload, DomainEvent) or envelope.subject_id is None:
            return None
        if not any(getattr(payload, f) is not None for f in personal_fields(type(payload))):
            return None
        return key_owner(envelope.subject_id, envelope.retention_hold)

    @enforces("SEC-1")
    async def seal_payload(
        self, envelope: EventEnvelope, keys: dict[str, DataKey] | None = None
    ) -> dict[str, Any]:
        """The payload as it will be stored: personal fields encrypted for the subject."""
        payload = envelope.payload
        if isinstance(payload, DomainEvent):
            marked = personal_fields(type(payload))
            body = payload.model_dump(mode="json")
        else:
            marked = {}
            body = dict(payload)
        plain = {name: body[name] for name in marked if body.get(name) is not None}
        if plain:
            if envelope.subject_id is None:
                raise MissingDataSubject(
                    f"{envelope.event_type} carries personal data but names no data subject"
                )
            body.update(
                await self.cipher.encrypt_fields(
                    key_owner(envelope.subject_id, envelope.retention_hold),
                    str(envelope.event_id),
                    plain,
                    keys,
                )
            )
        return body

    @staticmethod
    def to_record(envelope: EventEnvelope, sealed_payload: dict[str, Any]) -> bytes:
        data = envelope.model_dump(mode="json", exclude={"payload", "sequence"})
        data["payload"] = sealed_payload
        return canonical_json(data)

    async def from_record(
        self,
        record: bytes,
        sequence: int | None = None,
        keys: KeyCache | None = None,
    ) -> EventEnvelope:
        return await self.from_fields(json.loads(record), sequence, keys)

    async def from_fields(
        self,
        data: dict[str, Any],
        sequence: int | None = None,
        keys: KeyCache | None = None,
    ) -> EventEnvelope:
        """`from_record` of a record already parsed (`data` is consumed)."""
        payload = await self.cipher.decrypt_fields(
            key_owner(data["subject_id"], data.get("retention_hold"))
            if data.get("subject_id")
            else None,
            data["event_id"],
            data.pop("payload"),
            keys,
        )
        data["payload"] = self._typed(data["event_type"], data["schema_version"], payload)
        if sequence is not None:
            data["sequence"] = sequence
        return EventEnvelope.model_validate(data)

    def _typed(self, event_type: str, version: int, payload: dict[str, Any]) -> Any:
        if not self.registry.known(event_type):
            return payload  # another service's event this process has no model for
        upcast = self.registry.upcast(event_type, version, payload)
        model = self.registry.model(event_type)
        try:
            return model.model_validate(upcast)
        except ValidationError:
            if REDACTED not in upcast.values():
                raise
            # The redaction marker need not fit a field's constraints (a phone's length):
            # build the typed payload without validation so readers still get attributes.
            return model.model_construct(**upcast)


def record_header(record: bytes) -> dict[str, Any]:
    """The envelope without decrypting anything (for routing and verification)."""
    data: dict[str, Any] = json.loads(record)
    return data

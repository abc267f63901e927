"""Event types that exist only for the library's own tests (not in the published catalog)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from expensura_events.envelope import Actor, DomainEvent, EventEnvelope, PersonalData, new_event_id
from expensura_events.registry import event_type, upcaster
from expensura_events.vocabulary import DataCategory, Grade, Purpose


@event_type("testing.NoteRecorded", version=2, source="identity")
class NoteRecorded(DomainEvent):
    """v2 renamed `text` to `note` and added `priority`."""

    note: Annotated[
        str, PersonalData(DataCategory.CONTACT, Grade.SENSITIVE), Field(max_length=2000)
    ]
    priority: int = 0
    counter: int = 0


@upcaster("testing.NoteRecorded", from_version=1)
def _note_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    out = dict(payload)
    out["note"] = out.pop("text")
    out.setdefault("priority", 0)
    return out


def note(
    subject: str,
    text: str,
    *,
    stream: str | None = None,
    counter: int = 0,
    source: str = "identity",
) -> EventEnvelope:
    payload = NoteRecorded(note=text, counter=counter)
    return EventEnvelope(
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        source=source,
        stream_id=stream or f"notes-{subject}",
        stream_version=0,
        subject_id=subject,
        actor=Actor.system("tests"),
        purpose=Purpose.CUSTOMER_CARE,
        correlation_id=new_event_id(),
        payload=payload,
    )


def forged_account_opened(subject: str, email: str, phone: str | None = None) -> EventEnvelope:
    """An `identity.AccountOpened` built without validation, as a bug or someone with write
    access to the log could append it (the HTTP edge refuses such values)."""
    from uuid import UUID

    from expensura_events.catalog.identity import AccountOpened
    from expensura_events.envelope import LegalBasis
    from expensura_events.vocabulary import ActorKind, CollectionChannel, LegalGround

    payload = AccountOpened.model_construct(
        account_id=UUID(subject),
        email=email,
        phone=phone,
        channel=CollectionChannel.PROVIDED_BY_USER,
    )
    return EventEnvelope(
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        source="identity",
        stream_id=f"account-{subject}",
        stream_version=0,
        subject_id=subject,
        actor=Actor(kind=ActorKind.USER, id=subject),
        purpose=Purpose.ACCOUNT_MANAGEMENT,
        legal_basis=LegalBasis(ground=LegalGround.CONTRACT_AT_USERS_REQUEST, reference="sign-up"),
        correlation_id=new_event_id(),
        payload=payload,
    )

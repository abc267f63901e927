"""The events the benchmarks append, and the in-process runtimes they append through."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from expensura_events.envelope import Actor, EventEnvelope, new_event_id
from expensura_events.kafka import KafkaSettings
from expensura_events.runtime import ServiceRuntime
from expensura_events.settings import ServiceSettings
from expensura_events.testing.events import note
from expensura_events.vocabulary import Purpose
from expensura_ops.services import service_definitions
from expensura_ops.testing.stack import LocalStack

# A customer-care note of a realistic length; the same text in both variants.
NOTE_TEXT = (
    "Customer called about the March statement: two card payments look duplicated, "
    "asked for a call back after 17:00."
)
PLAIN_TYPE = "bench.PlainNote"

# Short consumer-group timeouts, so that a group joins in about a second (infrastructure
# notes, Tansu item 8).
FAST_KAFKA = {"kafka_session_timeout_ms": 2000, "kafka_heartbeat_interval_ms": 500}


def encrypted_event(subject: str, stream: str, counter: int = 0) -> EventEnvelope:
    """testing.NoteRecorded: one personal field (`note`), encrypted with the subject's key."""
    return note(subject, NOTE_TEXT, stream=stream, counter=counter)


def plain_event(subject: str, stream: str, counter: int = 0) -> EventEnvelope:
    """The same envelope and payload fields, but no field marked personal: nothing encrypted.

    An unregistered type with a plain payload, so that the store seals nothing and needs no
    key (it still names the subject, as a real event would).
    """
    return EventEnvelope(
        event_type=PLAIN_TYPE,
        schema_version=1,
        source="identity",
        stream_id=stream,
        stream_version=0,
        subject_id=subject,
        actor=Actor.system("tests"),
        purpose=Purpose.CUSTOMER_CARE,
        correlation_id=new_event_id(),
        payload={"note": NOTE_TEXT, "priority": 0, "counter": counter},
    )


def fast_settings(settings: ServiceSettings) -> ServiceSettings:
    return settings.model_copy(update=FAST_KAFKA)


def runtime(stack: LocalStack, name: str) -> ServiceRuntime:
    """An in-process runtime of a provisioned service (no workers started)."""
    return ServiceRuntime(service_definitions()[name], fast_settings(stack.settings(name)))


def kafka_settings(rt: ServiceRuntime) -> KafkaSettings:
    return rt.settings.kafka()


@dataclass
class RoundTrips:
    """Counts what an engine sends to its database: statements and transactions begun."""

    statements: int = 0
    transactions: int = 0


class RoundTripCounter:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.counts = RoundTrips()

    def _statement(self, *_: object, **__: object) -> None:
        self.counts.statements += 1

    def _begin(self, *_: object, **__: object) -> None:
        self.counts.transactions += 1

    def __enter__(self) -> RoundTrips:
        event.listen(self.engine.sync_engine, "before_cursor_execute", self._statement)
        event.listen(self.engine.sync_engine, "begin", self._begin)
        return self.counts

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine.sync_engine, "before_cursor_execute", self._statement)
        event.remove(self.engine.sync_engine, "begin", self._begin)

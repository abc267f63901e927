"""The event registry: one typed model per (type, version), upcasters, and the published catalog.

Old versions stay readable: a stored payload of version n is upcast step by step to the
current version before it is validated against the current model.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Annotated, Any, TypeVar, get_args, get_origin

from pydantic import BaseModel

from expensura_events.envelope import DomainEvent, EventEnvelope, PersonalData

E = TypeVar("E", bound=type[DomainEvent])
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class UnknownEventType(LookupError):
    pass


class EventRegistry:
    def __init__(self) -> None:
        self._current: dict[str, type[DomainEvent]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        self._sources: dict[str, str] = {}

    def register(self, cls: type[DomainEvent], source: str) -> None:
        existing = self._current.get(cls.event_type)
        if existing is not None and existing is not cls:
            raise ValueError(f"event type {cls.event_type} registered twice")
        self._current[cls.event_type] = cls
        self._sources[cls.event_type] = source

    def add_upcaster(self, event_type: str, from_version: int, fn: Upcaster) -> None:
        self._upcasters[(event_type, from_version)] = fn

    def model(self, event_type: str) -> type[DomainEvent]:
        try:
            return self._current[event_type]
        except KeyError:
            raise UnknownEventType(event_type) from None

    def known(self, event_type: str) -> bool:
        return event_type in self._current

    def upcast(self, event_type: str, version: int, payload: dict[str, Any]) -> dict[str, Any]:
        target = self.model(event_type).schema_version
        while version < target:
            step = self._upcasters.get((event_type, version))
            if step is None:
                raise UnknownEventType(f"no upcaster for {event_type} v{version}")
            payload = step(payload)
            version += 1
        return payload

    def types(self) -> dict[str, type[DomainEvent]]:
        return dict(sorted(self._current.items()))

    def source_of(self, event_type: str) -> str:
        return self._sources[event_type]

    # --- the published catalog -------------------------------------------------------------

    def json_schemas(self) -> dict[str, dict[str, Any]]:
        """A JSON Schema per event type, with personal fields annotated by category and grade."""
        out: dict[str, dict[str, Any]] = {}
        for name, cls in self.types().items():
            schema = cls.model_json_schema()
            schema["title"] = name
            schema["x-schema-version"] = cls.schema_version
            for field, info in personal_fields(cls).items():
                schema["properties"][field]["x-personal-data"] = {
                    "category": info.category.value,
                    "grade": info.grade.value,
                    "encrypted": True,
                }
            out[name] = schema
        return out

    def asyncapi(self) -> dict[str, Any]:
        """An AsyncAPI 3.0 document: one channel (Kafka topic) per source service."""
        from expensura_events.topology import events_topic

        envelope = EventEnvelope.model_json_schema()
        channels: dict[str, Any] = {}
        operations: dict[str, Any] = {}
        messages: dict[str, Any] = {}
        schemas = self.json_schemas()
        for name, schema in schemas.items():
            msg_id = name.replace(".", "_")
            messages[msg_id] = {
                "name": name,
                "title": name,
                "contentType": "application/json",
                "headers": {
                    "type": "object",
                    "properties": {
                        "traceparent": {"type": "string"},
                        "tracestate": {"type": "string"},
                        "event_type": {"type": "string"},
                        "event_id": {"type": "string"},
                    },
                },
                "payload": {
                    "allOf": [
                        {"$ref": "#/components/schemas/EventEnvelope"},
                        {
                            "type": "object",
                            "properties": {"event_type": {"const": name}, "payload": schema},
                        },
                    ]
                },
            }
            source = self._sources[name]
            channel = channels.setdefault(
                source,
                {
                    "address": events_topic(source),
                    "description": f"Events from the {source} service, keyed by data subject.",
                    "bindings": {"kafka": {"partitions": 8}},
                    "messages": {},
                },
            )
            channel["messages"][msg_id] = {"$ref": f"#/components/messages/{msg_id}"}
        for source, channel in channels.items():
            operations[f"publish-{source}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{source}"},
                "messages": [
                    {"$ref": f"#/channels/{source}/messages/{m}"} for m in channel["messages"]
                ],
            }
        return {
            "asyncapi": "3.0.0",
            "info": {
                "title": "Expensura events",
                "version": "1.0.0",
                "description": "Every event on Expensura's Kafka topics. Fields marked "
                "x-personal-data travel encrypted per subject.",
            },
            "defaultContentType": "application/json",
            "channels": channels,
            "operations": operations,
            "components": {
                "messages": messages,
                "schemas": {"EventEnvelope": _without_defs(envelope)},
            },
        }


def _without_defs(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != "$defs"} | (
        {"$defs": schema["$defs"]} if "$defs" in schema else {}
    )


def personal_fields(cls: type[BaseModel]) -> dict[str, PersonalData]:
    """The fields of a model marked `PersonalData`, top level only (payloads are flat by rule)."""
    return dict(_personal_fields(cls))  # a copy: the caller may change it, the cache stays


@functools.cache
def _personal_fields(cls: type[BaseModel]) -> dict[str, PersonalData]:
    # Cached per model: a model's fields are fixed once its class exists, and every record
    # verified or sealed asks (about 40 µs a call, a tenth of a rebuild's time per event).
    out: dict[str, PersonalData] = {}
    for name, field in cls.model_fields.items():
        found = _marker(field.metadata) or _marker_in(field.annotation)
        if found is not None:
            out[name] = found
    return out


def personal_categories(cls: type[BaseModel], fields: Iterable[str] | None = None) -> list[str]:
    """The data categories of these fields of a model (default: all its personal fields),
    from its `PersonalData` markers: what a read of them touches, so that the access log's
    categories are never typed by hand."""
    markers = personal_fields(cls)
    wanted = list(markers if fields is None else fields)
    unknown = [f for f in wanted if f not in markers]
    if unknown:
        raise ValueError(f"{cls.__name__} has no personal field {', '.join(unknown)}")
    return sorted({markers[f].category.value for f in wanted})


def _marker(metadata: Iterable[object]) -> PersonalData | None:
    return next((m for m in metadata if isinstance(m, PersonalData)), None)


def _marker_in(annotation: object) -> PersonalData | None:
    """Find the marker however the type is wrapped: `Annotated[...] | None`, lists, …"""
    if get_origin(annotation) is Annotated:
        found = _marker(get_args(annotation)[1:])
        return found or _marker_in(get_args(annotation)[0])
    return next((m for arg in get_args(annotation) if (m := _marker_in(arg)) is not None), None)


REGISTRY = EventRegistry()


def event_type(name: str, *, version: int = 1, source: str) -> Callable[[E], E]:
    """Register a payload model as event type `name` at `version` from service `source`."""

    def wrap(cls: E) -> E:
        cls.event_type = name
        cls.schema_version = version
        REGISTRY.register(cls, source)
        return cls

    return wrap


def upcaster(name: str, *, from_version: int) -> Callable[[Upcaster], Upcaster]:
    def wrap(fn: Upcaster) -> Upcaster:
        REGISTRY.add_upcaster(name, from_version, fn)
        return fn

    return wrap

"""The names of the streams the library itself writes, in every service's log.

A stream name is part of the log's meaning (optimistic concurrency is per stream, and a
stream's first event is how "once" is enforced), so each is built in one place.
"""

from __future__ import annotations

from uuid import UUID


def access_stream(subject_id: str) -> str:
    """Reads of a subject's personal data (`platform.PersonalDataAccessed`) and failed
    identity checks before one."""
    return f"access-{subject_id}"


def erasure_stream(request_id: UUID) -> str:
    """A service's `rights.ErasureConfirmed` for one erasure request: one event, once."""
    return f"erasure-{request_id}"


def subject_key_stream(subject_id: str) -> str:
    """The destruction of a subject's data key (`platform.SubjectKeyDestroyed`), once."""
    return f"subject-key-{subject_id}"


def retention_stream(subject_id: str, hold: str) -> str:
    """The end of one of a subject's retention holds (`platform.RetentionHoldEnded`)."""
    return f"retention-{subject_id}-{hold}"


CHECKPOINT_STREAM = "chain-checkpoints"
"""The service's own `platform.ChainCheckpoint`s: one stream, so that two processes of one
service cannot both checkpoint the same head (the second's expected version is stale)."""


def witness_stream(source: str, checkpoint_event_id: UUID) -> str:
    """This service's `platform.CheckpointWitnessed` of one of `source`'s checkpoints, once
    (a redelivery or a rebuild finds the stream begun)."""
    return f"witness-{source}-{checkpoint_event_id}"

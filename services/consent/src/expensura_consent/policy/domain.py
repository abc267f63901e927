"""Policy versions (POL-1, POL-2, USE-10): what a version is, the subject's answer to one,
who is notified of one, and their streams. Pure: no framework, no database.

A version is published once (its number is its key); each subject who signed up before it
was published is notified of it exactly once; a subject accepts or refuses it, and may
change the answer (the latest counts). Refusing starts identity's account cancellation.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from expensura_events.catalog.consent import (
    PolicyChangeNotificationRequested,
    PolicyVersionAccepted,
    PolicyVersionPublished,
    PolicyVersionRefused,
)
from expensura_events.envelope import LegalBasis
from expensura_events.obligations import enforces
from expensura_events.vocabulary import LegalGround

POLICY_BASIS = LegalBasis(ground=LegalGround.OTHER_LAW, reference="POL-1 policy notice")
NOTICE_BASIS = LegalBasis(ground=LegalGround.OTHER_LAW, reference="POL-1")
# A version's number, and the least a text and a summary can be.
VERSION_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z.\-]{0,49}$"
MIN_TEXT_LENGTH = 10
MIN_SUMMARY_LENGTH = 3
NEXT_STEP_AFTER_REFUSAL = (
    "account cancellation requested; withdraw it within the cooling-off period"
)


@dataclass(frozen=True)
class PolicyVersion:
    version: str
    sha256: str
    text: str
    summary: str
    effective_at: datetime
    published_at: datetime


@dataclass(frozen=True)
class Answer:
    version: str
    subject_id: str
    accepted: bool
    responded_at: datetime

    @property
    def next_step(self) -> str | None:
        """What follows from the answer: a refusal starts the cancellation (POL-2)."""
        return None if self.accepted else NEXT_STEP_AFTER_REFUSAL


class VersionExists(Exception):
    """A version is published once; a change is a new version."""


class InvalidVersion(ValueError):
    """Not a version that can be published: its number, text or summary."""


class UnknownVersion(LookupError):
    """No such version has been published."""


def digest(text: str) -> str:
    """The sha256 of a version's text, as published and as apps show it."""
    return hashlib.sha256(text.encode()).hexdigest()


def new_version(
    version: str, text: str, summary: str, effective_at: datetime, now: datetime
) -> tuple[PolicyVersion, PolicyVersionPublished]:
    """The version and the event that publishes it. Raises InvalidVersion."""
    if not re.fullmatch(VERSION_PATTERN, version):
        raise InvalidVersion("a version is 1-50 letters, digits, dots and hyphens")
    if len(text) < MIN_TEXT_LENGTH or len(summary) < MIN_SUMMARY_LENGTH:
        raise InvalidVersion("a version has its whole text and a summary")
    published = PolicyVersion(version, digest(text), text, summary, effective_at, now)
    return published, PolicyVersionPublished(
        version=version, sha256=published.sha256, effective_at=effective_at, summary=summary
    )


@enforces("POL-2")
def answer(
    version: str, subject_id: str, accept: bool, now: datetime
) -> tuple[Answer, PolicyVersionAccepted | PolicyVersionRefused]:
    """The subject's answer and its event; a refusal is what identity's cancellation
    follows."""
    event = (
        PolicyVersionAccepted(version=version) if accept else PolicyVersionRefused(version=version)
    )
    return Answer(version, subject_id, accept, now), event


@enforces("POL-1", "USE-10")
def notice(version: str, effective_at: datetime) -> PolicyChangeNotificationRequested:
    """The notice one subject gets of one version (requested once per pair)."""
    return PolicyChangeNotificationRequested(version=version, effective_at=effective_at)


def policy_stream(version: str) -> str:
    return f"policy-{version}"


def answer_stream(version: str, subject_id: str) -> str:
    return f"policy-answer-{version}-{subject_id}"


def notice_stream(version: str, subject_id: str) -> str:
    return f"policy-notice-{version}-{subject_id}"

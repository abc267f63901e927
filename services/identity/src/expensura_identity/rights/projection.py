"""The rights feature's process managers: they follow other logs and act on them.

- `erasure-certificates` follows every service's log and, with the confirmation that
  completes the set, issues the certificate (RGT-3); a retention hold a service ends
  afterwards shows on it as erased (RUL-2).
- `policy-refusals` follows consent's log: a user who refuses a policy version is on the
  cancellation path (POL-2).
"""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.consent import PolicyVersionRefused
from expensura_events.envelope import EventEnvelope
from expensura_events.projections import Projection
from expensura_events.runtime import ServiceRuntime
from expensura_identity.rights import service
from expensura_identity.rights.domain import ERASURE_PARTICIPANTS, CancellationAlreadyOpen


class ErasureCertificates(Projection):
    name = "erasure-certificates"
    sources = ERASURE_PARTICIPANTS
    tables = ()  # the certificate is a record of what happened: a rebuild keeps it
    follows_erased_subjects = True

    rt: ServiceRuntime

    def bind(self, runtime: Any) -> None:
        self.rt = runtime

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        await service.confirm_erasure(self.rt, conn, event)
        await service.note_hold_ended(conn, event)


class PolicyRefusals(Projection):
    name = "policy-refusals"
    sources = ("consent",)
    tables = ()

    rt: ServiceRuntime

    def bind(self, runtime: Any) -> None:
        self.rt = runtime

    async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
        if not isinstance(event.payload, PolicyVersionRefused) or event.subject_id is None:
            return
        with contextlib.suppress(CancellationAlreadyOpen):  # already on the way out
            await service.open_cancellation(
                self.rt,
                conn,
                event.subject_id,
                reason=f"policy-version-refused:{event.payload.version}",
                actor=event.actor,
                causation_id=event.event_id,
            )

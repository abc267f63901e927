"""Creating staff members: used by the administrator's endpoint and by the first-admin CLI."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError

from expensura_events.catalog.identity_staff import StaffMemberCreated
from expensura_events.envelope import Actor, utcnow
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import Purpose, StaffRole
from expensura_identity.accounts.lookup import email_lookup
from expensura_identity.accounts.views import password_hasher
from expensura_identity.staff.tables import staff_members


class StaffEmailTaken(Exception):
    pass


async def create_staff(
    rt: ServiceRuntime, email: str, password: str, roles: list[StaffRole], actor: Actor
) -> str:
    staff_id = f"staff-{uuid.uuid4().hex[:12]}"
    try:
        async with rt.engine.begin() as conn:
            await conn.execute(
                staff_members.insert().values(
                    staff_id=staff_id,
                    email_lookup=email_lookup(rt.settings.master_key, email),
                    password_hash=password_hasher.hash(password),
                    roles=[r.value for r in roles],
                    totp_secret_wrapped=None,
                    totp_enrolled=False,
                    recovery_codes=[],
                    failed_attempts=0,
                    created_at=utcnow(),
                )
            )
            await rt.append(
                conn,
                [
                    rt.envelope(
                        StaffMemberCreated(
                            staff_id=staff_id, email=email.strip().lower(), roles=roles
                        ),
                        stream_id=f"staff-{staff_id}",
                        subject_id=staff_id,
                        actor=actor,
                        purpose=Purpose.SECURITY,
                    )
                ],
                expected_version=0,
            )
    except IntegrityError:
        raise StaffEmailTaken(email) from None
    return staff_id

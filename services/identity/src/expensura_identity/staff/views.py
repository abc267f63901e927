"""Staff over HTTP: sign-in with password then TOTP, enrolment, recovery, lock-out,
customer look-ups that check the customer first (USE-4), and the subject's access log."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Annotated, Any

import jwt
import pyotp
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field
from sqlalchemy import select, update

from expensura_events.auth import ISSUER, Principal
from expensura_events.catalog.identity import SignedIn
from expensura_events.catalog.identity_staff import (
    CustomerIdentityCheckFailed,
    StaffLockedOut,
    StaffRecoveryCodeUsed,
    StaffTotpEnrolled,
    StaffUnlocked,
)
from expensura_events.catalog.platform import PersonalDataAccessed
from expensura_events.cipher import MasterKey
from expensura_events.envelope import Actor, utcnow
from expensura_events.fields import EmailAddress, Identifier, Secret, SingleLine, Token
from expensura_events.streams import access_stream
from expensura_events.vocabulary import ActorKind, Purpose, StaffRole
from expensura_events.web.auth import CurrentPrincipal, CurrentUser, Runtime, staff_with
from expensura_events.web.problems import Forbidden, Problem
from expensura_identity.accounts.domain import normalise_email
from expensura_identity.accounts.internal import current_contact
from expensura_identity.accounts.lookup import email_lookup
from expensura_identity.accounts.views import password_hasher
from expensura_identity.auth import sessions
from expensura_identity.auth.keys import active_key
from expensura_identity.auth.views import Tokens, identity_settings
from expensura_identity.staff.domain import (
    MAX_FAILED_ATTEMPTS,
    RECOVERY_CODES,
    hash_code,
    pseudonym,
    role_for,
)
from expensura_identity.staff.service import StaffEmailTaken, create_staff
from expensura_identity.staff.tables import staff_members

router = APIRouter(tags=["staff"])
Administrator = Annotated[Principal, Depends(staff_with(StaffRole.ADMINISTRATOR))]
PersonalDataStaff = Annotated[
    Principal,
    Depends(
        staff_with(
            StaffRole.CUSTOMER_SERVICE,
            StaffRole.RISK_ANALYST,
            StaffRole.SECURITY_OFFICER,
            StaffRole.PRIVACY_OFFICER,
        )
    ),
]
MFA_AUDIENCE = "expensura-identity-mfa"
RECOVERY_CODE = r"^ *[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{8} *$"  # as issued: hex-hex


class NewStaff(BaseModel):
    email: EmailAddress
    password: Annotated[Secret, Field(min_length=12)]
    roles: Annotated[list[StaffRole], Field(min_length=1, max_length=5)]


class StaffCreated(BaseModel):
    staff_id: str


class StaffSignIn(BaseModel):
    email: EmailAddress
    password: Secret


class MfaNeeded(BaseModel):
    mfa_required: bool
    challenge: str | None = None
    enrolment_token: str | None = None  # without TOTP yet: enough to enrol, nothing more


class MfaAnswer(BaseModel):
    challenge: Annotated[Token, Field(min_length=20)]
    code: Annotated[str | None, Field(pattern=r"^[0-9]{6}$")] = None
    recovery_code: Annotated[str | None, Field(pattern=RECOVERY_CODE)] = None


class TotpSetup(BaseModel):
    secret: str
    provisioning_uri: str


class TotpConfirm(BaseModel):
    code: Annotated[str, Field(pattern=r"^[0-9]{6}$")]


class RecoveryCodes(BaseModel):
    recovery_codes: list[str]


class CustomerCheck(BaseModel):
    email: EmailAddress
    phone_last4: Annotated[str, Field(pattern=r"^[0-9]{4}$")]


class Lookup(BaseModel):
    account_id: Identifier
    verification: CustomerCheck
    case_reference: Annotated[SingleLine, Field(min_length=3, max_length=200)]
    purpose: Purpose


class CustomerDetails(BaseModel):
    account_id: str
    email: str | None
    phone: str | None
    case_reference: str


class AccessLogEntry(BaseModel):
    at: datetime
    who: str
    kind: str
    role: str | None
    purpose: str
    case_reference: str | None
    fields: list[str]


class BadCredentials(Problem):
    status, title = 401, "Wrong e-mail, password or code"


class Locked(Problem):
    status, title = 423, "Account locked"


class Taken(Problem):
    status, title = 409, "A staff member with this e-mail exists"


class IdentityNotConfirmed(Problem):
    status, title = 403, "Customer identity not confirmed"


class NotFound(Problem):
    status, title = 404, "Not found"


def _master(rt: Runtime) -> MasterKey:
    return MasterKey.from_base64(rt.settings.master_key)


@router.post("/v1/staff", status_code=201, responses={409: {}})
async def add_staff(body: NewStaff, admin: Administrator, rt: Runtime) -> StaffCreated:
    try:
        staff_id = await create_staff(
            rt,
            body.email,
            body.password,
            body.roles,
            Actor(kind=ActorKind.STAFF, id=admin.id, role=StaffRole.ADMINISTRATOR.value),
        )
    except StaffEmailTaken:
        raise Taken("Use another address.") from None
    return StaffCreated(staff_id=staff_id)


async def _failure(rt: Runtime, staff_id: str, attempts: int) -> None:
    """Count a failed password or code; lock the account at the limit."""
    async with rt.engine.begin() as conn:
        locked = attempts >= MAX_FAILED_ATTEMPTS
        await conn.execute(
            update(staff_members)
            .where(staff_members.c.staff_id == staff_id)
            .values(failed_attempts=attempts, locked_at=utcnow() if locked else None)
        )
        if locked:
            await rt.append(
                conn,
                [
                    rt.envelope(
                        StaffLockedOut(staff_id=staff_id, failed_attempts=attempts),
                        stream_id=f"staff-{staff_id}",
                        subject_id=staff_id,
                        actor=Actor.system("identity.staff"),
                        purpose=Purpose.SECURITY,
                    )
                ],
            )


def _password_ok(hashed: str, password: str) -> bool:
    try:
        return bool(password_hasher.verify(hashed, password))
    except (VerificationError, InvalidHashError):
        return False


@router.post("/v1/staff/sessions", responses={401: {}, 423: {}})
async def staff_sign_in(body: StaffSignIn, rt: Runtime) -> MfaNeeded:
    """Step one: the password. Enrolled staff get a five-minute challenge for their TOTP code;
    staff without TOTP get a token that can only enrol it."""
    settings = identity_settings(rt)
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(staff_members).where(
                    staff_members.c.email_lookup == email_lookup(settings.master_key, body.email)
                )
            )
        ).one_or_none()
    if row is None:
        raise BadCredentials("Check them and try again.")
    if row.locked_at is not None:
        raise Locked("Ask an administrator to unlock it.")
    if not _password_ok(row.password_hash, body.password):
        await _failure(rt, row.staff_id, row.failed_attempts + 1)
        raise BadCredentials("Check them and try again.")
    key = await active_key(rt.engine, _master(rt))
    if not row.totp_enrolled:
        async with rt.engine.begin() as conn:
            pair = await sessions.issue(
                conn,
                key,
                kind="staff",
                subject=row.staff_id,
                roles=[],
                amr=["pwd"],
                access_ttl=600,
                refresh_ttl=600,
            )
        return MfaNeeded(mfa_required=True, enrolment_token=pair.access_token)
    challenge = jwt.encode(
        {
            "iss": ISSUER,
            "aud": MFA_AUDIENCE,
            "sub": row.staff_id,
            "iat": utcnow(),
            "exp": utcnow() + timedelta(minutes=5),
        },
        key.private_key,
        algorithm="EdDSA",
        headers={"kid": key.kid},
    )
    return MfaNeeded(mfa_required=True, challenge=challenge)


@router.post("/v1/staff/sessions/mfa", responses={401: {}, 423: {}})
async def staff_second_factor(body: MfaAnswer, rt: Runtime) -> Tokens:
    """Step two: the TOTP code (or a single-use recovery code) → tokens with MFA."""
    settings = identity_settings(rt)
    key = await active_key(rt.engine, _master(rt))
    try:
        claims = jwt.decode(
            body.challenge,
            key.private_key.public_key(),
            algorithms=["EdDSA"],
            audience=MFA_AUDIENCE,
            issuer=ISSUER,
        )
    except jwt.PyJWTError:
        raise BadCredentials("The challenge expired or is invalid; sign in again.") from None
    async with rt.engine.begin() as conn:
        row = (
            await conn.execute(
                select(staff_members)
                .where(staff_members.c.staff_id == claims["sub"])
                .with_for_update()
            )
        ).one()
        if row.locked_at is not None:
            raise Locked("Ask an administrator to unlock it.")
        secret = _master(rt).unwrap(f"totp:{row.staff_id}", row.totp_secret_wrapped).decode()
        used_recovery, ok = False, False
        if body.code is not None and pyotp.TOTP(secret).verify(body.code, valid_window=1):
            ok = True
        elif body.recovery_code is not None and hash_code(body.recovery_code) in row.recovery_codes:
            ok, used_recovery = True, True
        else:
            ok = False
        if ok:
            remaining = [c for c in row.recovery_codes if c != hash_code(body.recovery_code or "")]
            await conn.execute(
                update(staff_members)
                .where(staff_members.c.staff_id == row.staff_id)
                .values(failed_attempts=0, recovery_codes=remaining)
            )
            pair = await sessions.issue(
                conn,
                key,
                kind="staff",
                subject=row.staff_id,
                roles=list(row.roles),
                amr=["pwd", "otp"],
                access_ttl=settings.access_token_ttl_seconds,
                refresh_ttl=8 * 3600,
            )
            events: list[Any] = [
                SignedIn(
                    principal_kind="staff",
                    session_id=pair.session_id,
                    methods=["pwd", "recovery" if used_recovery else "otp"],
                )
            ]
            if used_recovery:
                events.append(
                    StaffRecoveryCodeUsed(staff_id=row.staff_id, remaining=len(remaining))
                )
            await rt.append(
                conn,
                [
                    rt.envelope(
                        e,
                        stream_id=f"staff-{row.staff_id}",
                        subject_id=row.staff_id,
                        actor=Actor(kind=ActorKind.STAFF, id=row.staff_id),
                        purpose=Purpose.SECURITY,
                    )
                    for e in events
                ],
            )
    if not ok:
        await _failure(rt, row.staff_id, row.failed_attempts + 1)
        raise BadCredentials("Wrong code.")
    return Tokens(
        access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
    )


@router.post("/v1/staff/me/totp")
async def start_totp(caller: CurrentPrincipal, rt: Runtime) -> TotpSetup:
    """Enrolment: a new TOTP secret for an authenticator app (shown once)."""
    if caller.kind is not ActorKind.STAFF:
        raise Forbidden("Staff only.")
    secret = pyotp.random_base32()
    async with rt.engine.begin() as conn:
        row = (
            await conn.execute(
                select(staff_members.c.totp_enrolled).where(staff_members.c.staff_id == caller.id)
            )
        ).one_or_none()
        if row is None:
            raise NotFound("No such staff member.")
        if row.totp_enrolled:
            raise Forbidden("TOTP is enrolled already; an administrator can reset it.")
        await conn.execute(
            update(staff_members)
            .where(staff_members.c.staff_id == caller.id)
            .values(totp_secret_wrapped=_master(rt).wrap(f"totp:{caller.id}", secret.encode()))
        )
    uri = pyotp.TOTP(secret).provisioning_uri(name=caller.id, issuer_name="Expensura staff")
    return TotpSetup(secret=secret, provisioning_uri=uri)


@router.post("/v1/staff/me/totp/confirm")
async def confirm_totp(body: TotpConfirm, caller: CurrentPrincipal, rt: Runtime) -> RecoveryCodes:
    """Prove the authenticator works; get single-use recovery codes (shown once)."""
    if caller.kind is not ActorKind.STAFF:
        raise Forbidden("Staff only.")
    codes = [f"{secrets.token_hex(4)}-{secrets.token_hex(4)}" for _ in range(RECOVERY_CODES)]
    async with rt.engine.begin() as conn:
        row = (
            await conn.execute(
                select(staff_members).where(staff_members.c.staff_id == caller.id).with_for_update()
            )
        ).one_or_none()
        if row is None or row.totp_secret_wrapped is None or row.totp_enrolled:
            raise Forbidden("Start enrolment first.")
        secret = _master(rt).unwrap(f"totp:{caller.id}", row.totp_secret_wrapped).decode()
        if not pyotp.TOTP(secret).verify(body.code, valid_window=1):
            raise BadCredentials("Wrong code.")
        await conn.execute(
            update(staff_members)
            .where(staff_members.c.staff_id == caller.id)
            .values(totp_enrolled=True, recovery_codes=[hash_code(c) for c in codes])
        )
        await rt.append(
            conn,
            [
                rt.envelope(
                    StaffTotpEnrolled(staff_id=caller.id, recovery_codes_issued=len(codes)),
                    stream_id=f"staff-{caller.id}",
                    subject_id=caller.id,
                    actor=Actor(kind=ActorKind.STAFF, id=caller.id),
                    purpose=Purpose.SECURITY,
                )
            ],
        )
    return RecoveryCodes(recovery_codes=codes)


@router.post("/v1/staff/{staff_id}/unlock", responses={404: {}})
async def unlock(
    staff_id: Annotated[Identifier, Path()], admin: Administrator, rt: Runtime
) -> StaffCreated:
    async with rt.engine.begin() as conn:
        changed = await conn.execute(
            update(staff_members)
            .where(staff_members.c.staff_id == staff_id)
            .values(locked_at=None, failed_attempts=0)
        )
        if changed.rowcount != 1:
            raise NotFound(f"No staff member {staff_id}.")
        await rt.append(
            conn,
            [
                rt.envelope(
                    StaffUnlocked(staff_id=staff_id),
                    stream_id=f"staff-{staff_id}",
                    subject_id=staff_id,
                    actor=Actor(
                        kind=ActorKind.STAFF, id=admin.id, role=StaffRole.ADMINISTRATOR.value
                    ),
                    purpose=Purpose.SECURITY,
                )
            ],
        )
    return StaffCreated(staff_id=staff_id)


@router.post("/v1/staff/lookups", responses={403: {}, 404: {}})
async def customer_lookup(body: Lookup, staff: PersonalDataStaff, rt: Runtime) -> CustomerDetails:
    """A customer-service look-up: the caller names a case and a purpose their role allows,
    and first confirms the customer's identity from details the customer gives; only then
    are the details shown, and the read is an event the customer can see."""
    role = role_for(staff.roles, body.purpose)
    if role is None:
        raise Forbidden(f"None of your roles may use personal data for {body.purpose.value}.")
    async with rt.engine.begin() as conn:
        contact = await current_contact(rt, conn, body.account_id)
        if contact["email"] is None:
            raise NotFound("No such customer.")
        confirmed = normalise_email(body.verification.email) == contact["email"] and (
            contact["phone"] or ""
        ).endswith(body.verification.phone_last4)
        actor = Actor(kind=ActorKind.STAFF, id=staff.id, role=role.value)
        if not confirmed:
            await rt.append(
                conn,
                [
                    rt.envelope(
                        CustomerIdentityCheckFailed(
                            case_reference=body.case_reference, requested_purpose=body.purpose
                        ),
                        stream_id=access_stream(body.account_id),
                        subject_id=body.account_id,
                        actor=actor,
                        purpose=Purpose.SECURITY,
                    )
                ],
            )
        else:
            await rt.record_access(
                conn,
                subject_id=body.account_id,
                actor=actor,
                purpose=body.purpose,
                fields=["email", "phone"],
                categories=["pd:Contact"],
                case_reference=body.case_reference,
            )
    if not confirmed:
        raise IdentityNotConfirmed("The details do not match the account; nothing is shown.")
    return CustomerDetails(
        account_id=body.account_id,
        email=contact["email"],
        phone=contact["phone"],
        case_reference=body.case_reference,
    )


def _shown_as(secret: bytes, actor: Actor) -> str:
    if actor.kind is ActorKind.STAFF:
        return pseudonym(secret, actor.id)
    return "you" if actor.kind is ActorKind.USER else actor.id


@router.get("/v1/me/access-log")
async def my_access_log(caller: CurrentUser, rt: Runtime) -> list[AccessLogEntry]:
    """Who read your data, when and why: staff as a pseudonym with their role.

    Reading this log is not itself logged: it shows only facts about others' reads, to the
    person they concern, and logging it would add an entry on every look."""
    secret = identity_settings(rt).master_key.encode()
    async with rt.engine.connect() as conn:
        events = await rt.store.read_subject(conn, caller.id)
    out = []
    for e in events:
        if not isinstance(e.payload, PersonalDataAccessed):
            continue
        out.append(
            AccessLogEntry(
                at=e.occurred_at,
                who=_shown_as(secret, e.actor),
                kind=e.actor.kind.value,
                role=e.actor.role,
                purpose=e.purpose.value,
                case_reference=e.payload.case_reference,
                fields=e.payload.fields,
            )
        )
    return out

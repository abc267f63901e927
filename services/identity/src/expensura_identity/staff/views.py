"""Staff over HTTP: sign-in with password then TOTP, enrolment, recovery, lock-out,
customer look-ups that check the customer first (USE-4), and the subject's access log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from expensura_events.auth import Principal
from expensura_events.envelope import Actor
from expensura_events.fields import EmailAddress, Identifier, Secret, SingleLine, Token
from expensura_events.vocabulary import ActorKind, Purpose, StaffRole
from expensura_events.web.auth import CurrentPrincipal, CurrentUser, Runtime, staff_with
from expensura_events.web.problems import Forbidden, Problem
from expensura_identity.auth.domain import (
    ChallengeInvalid,
    Tokens,
    TooManyAttempts,
    WrongCredentials,
)
from expensura_identity.staff import service
from expensura_identity.staff.domain import (
    RECOVERY_CODE,
    AccountDisabled,
    AccountLocked,
    CannotChangeOwnAccount,
    CustomerNotFound,
    IdentityNotConfirmed,
    IllegalTransition,
    NoSuchStaff,
    RoleMayNotUse,
    StaffEmailTaken,
)

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


class IdentityNotConfirmedProblem(Problem):
    status, title = 403, "Customer identity not confirmed"


class NotFound(Problem):
    status, title = 404, "Not found"


class TooManyAttemptsProblem(Problem):
    status, title = 429, "Too many failed sign-ins"


def client_address(request: Request) -> str:
    """As in auth/views.py: the peer, or what a gateway in EXPENSURA_FORWARDED_ALLOW_IPS
    forwarded (features do not import each other's views)."""
    return request.client.host if request.client else "unknown"


def user_agent(request: Request) -> str:
    return request.headers.get("user-agent", "")[:300]


LOCKED = "Ask an administrator to unlock it."
DISABLED = "An administrator disabled it."


class RolesChange(BaseModel):
    roles: Annotated[list[StaffRole], Field(min_length=1, max_length=5)]


class Conflict(Problem):
    status, title = 409, "Not in a state that allows this"


@router.post("/v1/staff", status_code=201, responses={409: {}})
async def add_staff(body: NewStaff, admin: Administrator, rt: Runtime) -> StaffCreated:
    actor = Actor(kind=ActorKind.STAFF, id=admin.id, role=StaffRole.ADMINISTRATOR.value)
    try:
        staff_id = await service.create_staff(rt, body.email, body.password, body.roles, actor)
    except StaffEmailTaken:
        raise Taken("Use another address.") from None
    return StaffCreated(staff_id=staff_id)


@router.post("/v1/staff/sessions", responses={401: {}, 423: {}, 429: {}})
async def staff_sign_in(body: StaffSignIn, request: Request, rt: Runtime) -> MfaNeeded:
    """Step one: the password. Enrolled staff get a five-minute challenge for their TOTP code;
    staff without TOTP get a token that can only enrol it. An unknown e-mail, a wrong
    password and a locked account with a wrong password get the same 401; a locked account
    is answered 423 only after the correct password."""
    try:
        step = await service.sign_in(
            rt, body.email, body.password, client_address(request), user_agent(request)
        )
    except TooManyAttempts as exc:
        raise TooManyAttemptsProblem(
            "Wait before trying again.", retry_after=exc.retry_after
        ) from None
    except WrongCredentials:
        raise BadCredentials("Check them and try again.") from None
    except AccountDisabled:
        raise Locked(DISABLED) from None
    except AccountLocked:
        raise Locked(LOCKED) from None
    return MfaNeeded(
        mfa_required=True, challenge=step.challenge, enrolment_token=step.enrolment_token
    )


@router.post("/v1/staff/sessions/mfa", responses={401: {}, 423: {}})
async def staff_second_factor(body: MfaAnswer, request: Request, rt: Runtime) -> Tokens:
    """Step two: the TOTP code (or a single-use recovery code) → tokens with MFA. The
    challenge works once, from the client (address and user agent) that proved the
    password; a TOTP code works once."""
    try:
        pair = await service.second_factor(
            rt,
            body.challenge,
            body.code,
            body.recovery_code,
            client_address(request),
            user_agent(request),
        )
    except ChallengeInvalid:
        raise BadCredentials(
            "The challenge expired, was used, or came from elsewhere; sign in again."
        ) from None
    except AccountDisabled:
        raise Locked(DISABLED) from None
    except AccountLocked:
        raise Locked(LOCKED) from None
    except WrongCredentials:
        raise BadCredentials("Wrong code.") from None
    return Tokens.of(pair)


def _staff_only(caller: Principal) -> None:
    if caller.kind is not ActorKind.STAFF:
        raise Forbidden("Staff only.")


@router.post("/v1/staff/me/totp")
async def start_totp(caller: CurrentPrincipal, rt: Runtime) -> TotpSetup:
    """Enrolment: a new TOTP secret for an authenticator app (shown once)."""
    _staff_only(caller)
    try:
        setup = await service.start_totp(rt, caller.id)
    except NoSuchStaff:
        raise NotFound("No such staff member.") from None
    except IllegalTransition:
        raise Forbidden("TOTP is enrolled already; an administrator can reset it.") from None
    return TotpSetup(secret=setup.secret, provisioning_uri=setup.provisioning_uri)


@router.post("/v1/staff/me/totp/confirm")
async def confirm_totp(body: TotpConfirm, caller: CurrentPrincipal, rt: Runtime) -> RecoveryCodes:
    """Prove the authenticator works; get single-use recovery codes (shown once)."""
    _staff_only(caller)
    try:
        codes = await service.confirm_totp(rt, caller.id, body.code)
    except IllegalTransition:
        raise Forbidden("Start enrolment first.") from None
    except WrongCredentials:
        raise BadCredentials("Wrong code.") from None
    return RecoveryCodes(recovery_codes=codes)


StaffId = Annotated[Identifier, Path()]


def _acted_on(staff_id: str) -> StaffCreated:
    return StaffCreated(staff_id=staff_id)


@router.post("/v1/staff/{staff_id}/unlock", responses={404: {}, 409: {}})
async def unlock(staff_id: StaffId, admin: Administrator, rt: Runtime) -> StaffCreated:
    """Unlock an account locked by wrong passwords or codes (`identity.StaffUnlocked`)."""
    async with _administering(staff_id):
        await service.unlock(rt, staff_id, admin.id)
    return _acted_on(staff_id)


@router.post("/v1/staff/{staff_id}/disable", responses={403: {}, 404: {}, 409: {}})
async def disable(staff_id: StaffId, admin: Administrator, rt: Runtime) -> StaffCreated:
    """No sign-in and no refresh until re-enabled; every session is revoked now
    (`identity.StaffDisabled`, `identity.StaffSessionsRevoked`)."""
    async with _administering(staff_id):
        await service.disable(rt, staff_id, admin.id)
    return _acted_on(staff_id)


@router.post("/v1/staff/{staff_id}/enable", responses={403: {}, 404: {}, 409: {}})
async def enable(staff_id: StaffId, admin: Administrator, rt: Runtime) -> StaffCreated:
    """Re-enable a disabled account (`identity.StaffReenabled`)."""
    async with _administering(staff_id):
        await service.enable(rt, staff_id, admin.id)
    return _acted_on(staff_id)


@router.put("/v1/staff/{staff_id}/roles", responses={403: {}, 404: {}})
async def change_roles(
    staff_id: StaffId, body: RolesChange, admin: Administrator, rt: Runtime
) -> StaffCreated:
    """Replace the roles; each session carries the new ones from its next refresh
    (`identity.StaffRolesChanged`)."""
    async with _administering(staff_id):
        await service.change_roles(rt, staff_id, body.roles, admin.id)
    return _acted_on(staff_id)


@router.post("/v1/staff/{staff_id}/totp/reset", responses={403: {}, 404: {}})
async def reset_totp(staff_id: StaffId, admin: Administrator, rt: Runtime) -> StaffCreated:
    """A lost authenticator: the secret and recovery codes go and every session is revoked;
    the staff member enrols again (`identity.StaffTotpReset`)."""
    async with _administering(staff_id):
        await service.reset_totp(rt, staff_id, admin.id)
    return _acted_on(staff_id)


@router.delete("/v1/staff/{staff_id}/sessions", responses={404: {}})
async def revoke_sessions(staff_id: StaffId, admin: Administrator, rt: Runtime) -> StaffCreated:
    """Revoke every session of the staff member (`identity.StaffSessionsRevoked`)."""
    async with _administering(staff_id):
        await service.revoke_sessions(rt, staff_id, admin.id)
    return _acted_on(staff_id)


@asynccontextmanager
async def _administering(staff_id: str) -> AsyncIterator[None]:
    """The answers every administrator route shares."""
    try:
        yield
    except NoSuchStaff:
        raise NotFound(f"No staff member {staff_id}.") from None
    except CannotChangeOwnAccount:
        raise Forbidden("Another administrator must do this to your own account.") from None
    except IllegalTransition as exc:
        raise Conflict(str(exc)) from None


@router.post("/v1/staff/lookups", responses={403: {}, 404: {}})
async def customer_lookup(body: Lookup, staff: PersonalDataStaff, rt: Runtime) -> CustomerDetails:
    """A customer-service look-up: the caller names a case and a purpose their role allows,
    and first confirms the customer's identity from details the customer gives; only then
    are the details shown, and the read is an event the customer can see."""
    ask = service.CustomerLookup(
        account_id=body.account_id,
        email=body.verification.email,
        phone_last4=body.verification.phone_last4,
        case_reference=body.case_reference,
        purpose=body.purpose,
    )
    try:
        found = await service.customer_lookup(rt, staff.id, sorted(staff.roles), ask)
    except RoleMayNotUse:
        raise Forbidden(
            f"None of your roles may use personal data for {body.purpose.value}."
        ) from None
    except CustomerNotFound:
        raise NotFound("No such customer.") from None
    except IdentityNotConfirmed:
        raise IdentityNotConfirmedProblem(
            "The details do not match the account; nothing is shown."
        ) from None
    return CustomerDetails(
        account_id=found.account_id,
        email=found.email,
        phone=found.phone,
        case_reference=found.case_reference,
    )


@router.get("/v1/me/access-log")
async def my_access_log(caller: CurrentUser, rt: Runtime) -> list[AccessLogEntry]:
    """Who read your data, when and why: staff as a pseudonym with their role."""
    return [
        AccessLogEntry(
            at=line.at,
            who=line.who,
            kind=line.kind,
            role=line.role,
            purpose=line.purpose,
            case_reference=line.case_reference,
            fields=line.fields,
        )
        for line in await service.my_access_log(rt, caller.id)
    ]

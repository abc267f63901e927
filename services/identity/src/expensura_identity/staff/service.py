"""Staff use cases: creating staff, the two-step sign-in with lock-out, TOTP enrolment,
what administrators do to staff accounts (unlock, disable, re-enable, roles, TOTP reset,
revoking sessions), customer look-ups that confirm the customer first (USE-4), and the customer's
view of who read their data. Called by the staff routes and the first-admin CLI."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.identity import SignedIn
from expensura_events.catalog.identity_staff import (
    CustomerIdentityCheckFailed,
    StaffDisabled,
    StaffLockedOut,
    StaffMemberCreated,
    StaffRecoveryCodeUsed,
    StaffReenabled,
    StaffRolesChanged,
    StaffSecondFactorRefused,
    StaffSessionsRevoked,
    StaffTotpEnrolled,
    StaffTotpReset,
    StaffUnlocked,
)
from expensura_events.cipher import LOOKUP_HMAC, PSEUDONYM, TOTP_SECRETS
from expensura_events.contacts import contact_categories, current_contact
from expensura_events.envelope import Actor, DomainEvent, utcnow
from expensura_events.obligations import enforces
from expensura_events.runtime import ServiceRuntime
from expensura_events.streams import access_stream
from expensura_events.vocabulary import ActorKind, Purpose, StaffRole
from expensura_identity.accounts.domain import email_lookup, normalise_email
from expensura_identity.auth import service as auth
from expensura_identity.auth.domain import (
    ChallengeInvalid,
    PrincipalKind,
    TokenPair,
    WrongCredentials,
    client_binding,
)
from expensura_identity.settings import identity_settings
from expensura_identity.staff import store
from expensura_identity.staff.domain import (
    AccessLogLine,
    AccountDisabled,
    AccountLocked,
    CannotChangeOwnAccount,
    CustomerNotFound,
    EnrolmentAction,
    IdentityNotConfirmed,
    IllegalTransition,
    NoSuchStaff,
    RoleMayNotUse,
    StaffAction,
    StaffState,
    access_log,
    check_second_factor,
    customer_confirmed,
    enrol,
    hash_code,
    locks_out,
    new_recovery_codes,
    new_staff_id,
    new_totp_secret,
    provisioning_uri,
    role_for,
    second_factor_refusal,
    staff_stream,
    totp_key_context,
    totp_step_of,
    transition,
)
from expensura_identity.staff.store import StaffRecord

# Staff sessions end at the staff cap (identity's settings); the enrolment token (password
# only) lasts ten minutes, its session too, and can do nothing but enrol.
ENROLMENT_TTL = 600


async def _record(
    rt: ServiceRuntime,
    conn: AsyncConnection,
    staff_id: str,
    actor: Actor,
    *events: DomainEvent,
    causation_id: UUID | None = None,
) -> None:
    await rt.append(
        conn,
        [
            rt.envelope(
                e,
                stream_id=staff_stream(staff_id),
                subject_id=staff_id,
                actor=actor,
                purpose=Purpose.SECURITY,
                causation_id=causation_id,
            )
            for e in events
        ],
    )


def _system() -> Actor:
    return Actor.system("identity.staff")


async def create_staff(
    rt: ServiceRuntime, email: str, password: str, roles: list[StaffRole], actor: Actor
) -> str:
    """A new staff member (without TOTP: they enrol at first sign-in). Raises
    StaffEmailTaken."""
    staff_id = new_staff_id()
    password_hash = await rt.passwords.hash(password)
    async with rt.engine.begin() as conn:
        await store.insert(
            conn,
            staff_id,
            email_lookup(await rt.secrets.get(LOOKUP_HMAC), email),
            password_hash,
            [r.value for r in roles],
            utcnow(),
        )
        await rt.append(
            conn,
            [
                rt.envelope(
                    StaffMemberCreated(
                        staff_id=staff_id, email=normalise_email(email), roles=roles
                    ),
                    stream_id=staff_stream(staff_id),
                    subject_id=staff_id,
                    actor=actor,
                    purpose=Purpose.SECURITY,
                )
            ],
            expected_version=0,
        )
    return staff_id


# --- signing in -------------------------------------------------------------------------------


async def count_failure(rt: ServiceRuntime, conn: AsyncConnection, staff_id: str) -> None:
    """A wrong password or code: counted atomically; at the limit the account locks, once,
    and every session it has is revoked."""
    attempts = await store.count_failure(conn, staff_id)
    if attempts is None or not locks_out(attempts):
        return  # locked already (counting stops at the lock), or below the limit
    transition(StaffState.ACTIVE, StaffAction.LOCK_OUT)
    if await store.lock(conn, staff_id, utcnow()):
        sessions = await auth.revoke_principal(conn, staff_id)
        await _record(
            rt,
            conn,
            staff_id,
            _system(),
            StaffLockedOut(staff_id=staff_id, failed_attempts=attempts),
            StaffSessionsRevoked(staff_id=staff_id, reason="locked-out", sessions=sessions),
        )


class StaffMembers:
    """Staff as principals of the authentication service: a wrong password counts toward
    the lock-out. A locked account is answered as locked only after a correct password."""

    kind = PrincipalKind.STAFF

    async def find(
        self, rt: ServiceRuntime, conn: AsyncConnection, email: str
    ) -> StaffRecord | None:
        lookup = email_lookup(await rt.secrets.get(LOOKUP_HMAC), email)
        return await store.by_email(conn, lookup)

    async def wrong_password(
        self, rt: ServiceRuntime, conn: AsyncConnection, found: StaffRecord
    ) -> None:
        await count_failure(rt, conn, found.staff_id)


@dataclass(frozen=True)
class PasswordStep:
    """Enrolled staff get a challenge for their second factor; staff without TOTP get a
    token that can only enrol it."""

    challenge: str | None = None
    enrolment_token: str | None = None


def _refuse_if_barred(staff: StaffRecord) -> None:
    if staff.state is StaffState.DISABLED:
        raise AccountDisabled()
    if staff.state is StaffState.LOCKED:
        raise AccountLocked()


async def sign_in(
    rt: ServiceRuntime, email: str, password: str, client: str, user_agent: str = ""
) -> PasswordStep:
    """Step one, the password. The challenge is bound to the client (its address and user
    agent). Raises TooManyAttempts, WrongCredentials (unknown e-mail, wrong password, and a
    locked account with a wrong password alike), AccountLocked, AccountDisabled (only after
    a correct password)."""
    staff = await auth.authenticate(rt, StaffMembers(), email, password, client)
    _refuse_if_barred(staff)
    binding = client_binding(await rt.secrets.get(LOOKUP_HMAC), client, user_agent)
    async with rt.engine.begin() as conn:
        if staff.totp_enrolled:
            return PasswordStep(challenge=await auth.new_challenge(conn, staff.staff_id, binding))
        pair = await auth.issue(
            conn,
            await auth.signing_key(rt),
            kind=PrincipalKind.STAFF.value,
            subject=staff.staff_id,
            roles=[],
            amr=["pwd"],
            access_ttl=ENROLMENT_TTL,
            refresh_ttl=ENROLMENT_TTL,
            family_expires_at=utcnow() + timedelta(seconds=ENROLMENT_TTL),
        )
    return PasswordStep(enrolment_token=pair.access_token)


@enforces("SEC-2")
async def second_factor(
    rt: ServiceRuntime,
    challenge: str,
    code: str | None,
    recovery_code: str | None,
    client: str,
    user_agent: str = "",
) -> TokenPair:
    """Step two: the TOTP code or a single-use recovery code → tokens with MFA. The
    challenge is answered once, by the client it was issued to; a TOTP code works once (its
    step must be later than the last one used). Every refusal is recorded. Raises
    ChallengeInvalid, AccountLocked, AccountDisabled, WrongCredentials (counted toward the
    lock-out)."""
    settings = identity_settings(rt)
    key = await auth.signing_key(rt)
    master = await rt.secrets.key_wrap(TOTP_SECRETS)
    binding = client_binding(await rt.secrets.get(LOOKUP_HMAC), client, user_agent)
    refused: Exception | None = None
    async with rt.engine.begin() as conn:
        opened = await auth.open_challenge(conn, challenge, binding)
        staff_id = opened.staff_id
        staff = await store.for_update(conn, staff_id)
        if staff is None or staff.totp_secret_wrapped is None:
            raise ChallengeInvalid()
        if opened.refusal is not None:
            refused = ChallengeInvalid()
            await _record(rt, conn, staff_id, _system(), _refused(staff_id, opened.refusal))
        else:
            _refuse_if_barred(staff)
            secret = master.unwrap(totp_key_context(staff_id), staff.totp_secret_wrapped).decode()
            proven = check_second_factor(
                secret, staff.recovery_codes, code, recovery_code, last_step=staff.last_totp_step
            )
            if proven is None or not await store.passed_second_factor(
                conn, staff_id, proven.remaining_codes, proven.totp_step
            ):
                refused = WrongCredentials()
                reason = second_factor_refusal(secret, code)
                await _record(rt, conn, staff_id, _system(), _refused(staff_id, reason))
                await count_failure(rt, conn, staff_id)
            else:
                await auth.consume_challenge(conn, challenge)
                pair = await auth.issue(
                    conn,
                    key,
                    kind=PrincipalKind.STAFF.value,
                    subject=staff_id,
                    roles=staff.roles,
                    amr=["pwd", "otp"],
                    access_ttl=settings.access_token_ttl_seconds,
                    refresh_ttl=settings.refresh_token_ttl_seconds,
                    family_started_at=(started := utcnow()),
                    family_expires_at=auth.session_end(rt, PrincipalKind.STAFF, started),
                )
                events: list[DomainEvent] = [
                    SignedIn(
                        principal_kind=PrincipalKind.STAFF.value,
                        session_id=pair.session_id,
                        methods=["pwd", proven.method],
                    )
                ]
                if proven.method == "recovery":
                    events.append(
                        StaffRecoveryCodeUsed(
                            staff_id=staff_id, remaining=len(proven.remaining_codes)
                        )
                    )
                staff_actor = Actor(kind=ActorKind.STAFF, id=staff_id)
                await _record(rt, conn, staff_id, staff_actor, *events)
    if refused is not None:  # raised after the commit: the failure and its event stay
        raise refused
    return pair


def _refused(staff_id: str, reason: str) -> StaffSecondFactorRefused:
    return StaffSecondFactorRefused(staff_id=staff_id, reason=reason)


# --- TOTP enrolment ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TotpSetup:
    secret: str
    provisioning_uri: str


async def start_totp(rt: ServiceRuntime, staff_id: str) -> TotpSetup:
    """A new TOTP secret for an authenticator app (shown once). Raises NoSuchStaff,
    IllegalTransition (enrolled already)."""
    secret = new_totp_secret()
    wrapped = (await rt.secrets.key_wrap(TOTP_SECRETS)).wrap(
        totp_key_context(staff_id), secret.encode()
    )
    async with rt.engine.begin() as conn:
        state = await store.enrolment(conn, staff_id)
        if state is None:
            raise NoSuchStaff(staff_id)
        enrol(state, EnrolmentAction.START)
        if not await store.start_enrolment(conn, staff_id, wrapped):
            raise IllegalTransition("enrolled meanwhile")
    return TotpSetup(secret, provisioning_uri(secret, staff_id))


async def confirm_totp(rt: ServiceRuntime, staff_id: str, code: str) -> list[str]:
    """Prove the authenticator works; returns single-use recovery codes (shown once).
    Raises IllegalTransition (not started, or enrolled already), WrongCredentials."""
    codes = new_recovery_codes()
    async with rt.engine.begin() as conn:
        staff = await store.for_update(conn, staff_id)
        if staff is None:
            raise IllegalTransition("no enrolment started")
        enrol(staff.enrolment, EnrolmentAction.CONFIRM)
        if staff.totp_secret_wrapped is None:  # not started: enrol() refused it already
            raise IllegalTransition("no enrolment started")
        context = totp_key_context(staff_id)
        secret = (
            (await rt.secrets.key_wrap(TOTP_SECRETS))
            .unwrap(context, staff.totp_secret_wrapped)
            .decode()
        )
        step = totp_step_of(secret, code)
        if step is None:
            raise WrongCredentials()
        hashes = [hash_code(c) for c in codes]
        if not await store.confirm_enrolment(conn, staff_id, hashes, step):
            raise IllegalTransition("enrolled meanwhile")
        await _record(
            rt,
            conn,
            staff_id,
            Actor(kind=ActorKind.STAFF, id=staff_id),
            StaffTotpEnrolled(staff_id=staff_id, recovery_codes_issued=len(codes)),
        )
    return codes


def _administrator(administrator: str) -> Actor:
    return Actor(kind=ActorKind.STAFF, id=administrator, role=StaffRole.ADMINISTRATOR.value)


async def _barred(
    rt: ServiceRuntime,
    conn: AsyncConnection,
    staff_id: str,
    admin: Actor,
    reason: str,
    *,
    incident_id: UUID | None = None,
    causation_id: UUID | None = None,
) -> int:
    """Every session of the staff member ends now, and the log says why; how many did."""
    sessions = await auth.revoke_principal(conn, staff_id)
    await _record(
        rt,
        conn,
        staff_id,
        admin,
        StaffSessionsRevoked(
            staff_id=staff_id, reason=reason, sessions=sessions, incident_id=incident_id
        ),
        causation_id=causation_id,
    )
    return sessions


async def unlock(rt: ServiceRuntime, staff_id: str, administrator: str) -> None:
    """An administrator unlocks an account (and resets its count). Raises NoSuchStaff,
    IllegalTransition (a disabled account is re-enabled, not unlocked)."""
    async with rt.engine.begin() as conn:
        staff = await store.for_update(conn, staff_id)
        if staff is None:
            raise NoSuchStaff(staff_id)
        transition(staff.state, StaffAction.UNLOCK)
        await store.unlock(conn, staff_id)  # the row is locked: no one moved it meanwhile
        await _record(
            rt, conn, staff_id, _administrator(administrator), StaffUnlocked(staff_id=staff_id)
        )


async def _for_administrator(
    conn: AsyncConnection, staff_id: str, administrator: str
) -> StaffRecord:
    """The staff member an administrator acts on, row-locked; never the administrator
    themselves (another administrator must)."""
    if staff_id == administrator:
        raise CannotChangeOwnAccount()
    staff = await store.for_update(conn, staff_id)
    if staff is None:
        raise NoSuchStaff(staff_id)
    return staff


async def disable(rt: ServiceRuntime, staff_id: str, administrator: str) -> None:
    """No sign-in and no refresh until re-enabled; every session is revoked now. Raises
    NoSuchStaff, CannotChangeOwnAccount, IllegalTransition (disabled already)."""
    admin = _administrator(administrator)
    async with rt.engine.begin() as conn:
        staff = await _for_administrator(conn, staff_id, administrator)
        transition(staff.state, StaffAction.DISABLE)
        await store.disable(conn, staff_id, utcnow())
        await _record(rt, conn, staff_id, admin, StaffDisabled(staff_id=staff_id))
        await _barred(rt, conn, staff_id, admin, "disabled")


async def enable(rt: ServiceRuntime, staff_id: str, administrator: str) -> None:
    """A disabled account may sign in again (unlocked, with a fresh count). Raises
    NoSuchStaff, CannotChangeOwnAccount, IllegalTransition (not disabled)."""
    async with rt.engine.begin() as conn:
        staff = await _for_administrator(conn, staff_id, administrator)
        transition(staff.state, StaffAction.ENABLE)
        await store.enable(conn, staff_id)
        await _record(
            rt, conn, staff_id, _administrator(administrator), StaffReenabled(staff_id=staff_id)
        )


async def change_roles(
    rt: ServiceRuntime, staff_id: str, roles: list[StaffRole], administrator: str
) -> None:
    """New roles: access tokens issued from now on, including every session's next refresh,
    carry them. Raises NoSuchStaff, CannotChangeOwnAccount."""
    async with rt.engine.begin() as conn:
        staff = await _for_administrator(conn, staff_id, administrator)
        new = sorted({r.value for r in roles})
        await store.set_roles(conn, staff_id, new)
        await _record(
            rt,
            conn,
            staff_id,
            _administrator(administrator),
            StaffRolesChanged(
                staff_id=staff_id,
                previous_roles=[StaffRole(r) for r in sorted(staff.roles)],
                roles=[StaffRole(r) for r in new],
            ),
        )


async def reset_totp(rt: ServiceRuntime, staff_id: str, administrator: str) -> None:
    """A lost authenticator: the secret and recovery codes go, every session is revoked, and
    the staff member enrols again at their next sign-in. Raises NoSuchStaff,
    CannotChangeOwnAccount."""
    admin = _administrator(administrator)
    async with rt.engine.begin() as conn:
        await _for_administrator(conn, staff_id, administrator)
        await store.reset_totp(conn, staff_id)
        await _record(rt, conn, staff_id, admin, StaffTotpReset(staff_id=staff_id))
        await _barred(rt, conn, staff_id, admin, "totp-reset")


async def revoke_sessions(rt: ServiceRuntime, staff_id: str, administrator: str) -> None:
    """Every session of the staff member ends now (a suspected leak). Raises NoSuchStaff."""
    async with rt.engine.begin() as conn:
        if await store.for_update(conn, staff_id) is None:
            raise NoSuchStaff(staff_id)
        await _barred(rt, conn, staff_id, _administrator(administrator), "administrator")


CONTAINMENT = "incident-containment"


async def end_sessions_for_incident(
    rt: ServiceRuntime,
    conn: AsyncConnection,
    staff_id: str,
    *,
    incident_id: UUID,
    by: Actor,
    causation_id: UUID,
) -> int:
    """An incident's containment (SEC-4): every session of the staff member ends now, in the
    caller's transaction (the projection's, which applies each request once), the event
    naming the incident; how many were live. Recorded even if none was: the trail shows the
    measure carried out. A request carried out before (a rebuild replaying incident's log)
    ends nothing: the sessions opened since are not the incident's. Raises NoSuchStaff
    (parked for an operator, not silently done)."""
    if await store.for_update(conn, staff_id) is None:
        raise NoSuchStaff(staff_id)
    if not await store.containment_first_seen(conn, causation_id, incident_id, staff_id, utcnow()):
        return 0
    return await _barred(
        rt, conn, staff_id, by, CONTAINMENT, incident_id=incident_id, causation_id=causation_id
    )


# --- customer look-ups and the access log ---------------------------------------------------------


@dataclass(frozen=True)
class CustomerLookup:
    account_id: str
    email: str
    phone_last4: str
    case_reference: str
    purpose: Purpose


@dataclass(frozen=True)
class CustomerDetails:
    account_id: str
    email: str | None
    phone: str | None
    case_reference: str


async def customer_lookup(
    rt: ServiceRuntime, staff_id: str, roles: Sequence[str], ask: CustomerLookup
) -> CustomerDetails:
    """The caller names a case and a purpose their role allows, and first confirms the
    customer's identity from details the customer gives; only then are the details shown,
    and the read is an event the customer can see. A failed check is recorded too. Raises
    RoleMayNotUse, CustomerNotFound, IdentityNotConfirmed."""
    role = role_for(roles, ask.purpose)
    if role is None:
        raise RoleMayNotUse(ask.purpose)
    actor = Actor(kind=ActorKind.STAFF, id=staff_id, role=role.value)
    async with rt.engine.begin() as conn:
        contact = current_contact(await rt.store.read_subject(conn, ask.account_id))
        if contact.email is None:
            raise CustomerNotFound(ask.account_id)
        confirmed = customer_confirmed(contact, ask.email, ask.phone_last4)
        if confirmed:
            await rt.record_access(
                conn,
                subject_id=ask.account_id,
                actor=actor,
                purpose=ask.purpose,
                fields=["email", "phone"],
                categories=contact_categories(),
                case_reference=ask.case_reference,
            )
        else:
            await rt.append(
                conn,
                [
                    rt.envelope(
                        CustomerIdentityCheckFailed(
                            case_reference=ask.case_reference, requested_purpose=ask.purpose
                        ),
                        stream_id=access_stream(ask.account_id),
                        subject_id=ask.account_id,
                        actor=actor,
                        purpose=Purpose.SECURITY,
                    )
                ],
            )
    if not confirmed:  # raised after the commit: the failed check stays recorded
        raise IdentityNotConfirmed()
    values = contact.as_values()
    return CustomerDetails(ask.account_id, values["email"], values["phone"], ask.case_reference)


async def my_access_log(rt: ServiceRuntime, subject_id: str) -> list[AccessLogLine]:
    """Who read the subject's data. Reading this log is not itself logged: it shows only
    facts about others' reads, to the person they concern, and logging it would add an
    entry on every look."""
    secret = await rt.secrets.get(PSEUDONYM)
    async with rt.engine.connect() as conn:
        events = await rt.store.read_subject(conn, subject_id)
    return access_log(events, secret)

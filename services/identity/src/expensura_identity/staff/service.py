"""Staff use cases: creating staff, the two-step sign-in with lock-out, TOTP enrolment,
unlocking, customer look-ups that confirm the customer first (USE-4), and the customer's
view of who read their data. Called by the staff routes and the first-admin CLI."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.identity import SignedIn
from expensura_events.catalog.identity_staff import (
    CustomerIdentityCheckFailed,
    StaffLockedOut,
    StaffMemberCreated,
    StaffRecoveryCodeUsed,
    StaffTotpEnrolled,
    StaffUnlocked,
)
from expensura_events.cipher import LOOKUP_HMAC, PSEUDONYM, TOTP_SECRETS
from expensura_events.contacts import contact_categories, current_contact
from expensura_events.envelope import Actor, DomainEvent, utcnow
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
)
from expensura_identity.settings import identity_settings
from expensura_identity.staff import store
from expensura_identity.staff.domain import (
    AccessLogLine,
    AccountLocked,
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
    staff_stream,
    totp_key_context,
    totp_matches,
    transition,
)
from expensura_identity.staff.store import StaffRecord

# Staff sessions: the second factor's refresh token lasts a working day; the enrolment
# token (password only) lasts ten minutes and can do nothing but enrol.
STAFF_REFRESH_TTL = 8 * 3600
ENROLMENT_TTL = 600


async def _record(
    rt: ServiceRuntime, conn: AsyncConnection, staff_id: str, actor: Actor, *events: DomainEvent
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
    """A wrong password or code: counted atomically; at the limit the account locks, once."""
    attempts = await store.count_failure(conn, staff_id)
    if attempts is None or not locks_out(attempts):
        return  # locked already (counting stops at the lock), or below the limit
    transition(StaffState.ACTIVE, StaffAction.LOCK_OUT)
    if await store.lock(conn, staff_id, utcnow()):
        await _record(
            rt,
            conn,
            staff_id,
            _system(),
            StaffLockedOut(staff_id=staff_id, failed_attempts=attempts),
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


async def sign_in(rt: ServiceRuntime, email: str, password: str, client: str) -> PasswordStep:
    """Step one, the password. Raises TooManyAttempts, WrongCredentials (unknown e-mail,
    wrong password, and a locked account with a wrong password alike), AccountLocked (only
    after a correct password)."""
    staff = await auth.authenticate(rt, StaffMembers(), email, password, client)
    if staff.state is StaffState.LOCKED:
        raise AccountLocked()
    key = await auth.signing_key(rt)
    if staff.totp_enrolled:
        return PasswordStep(challenge=auth.mfa_challenge(key, staff.staff_id))
    async with rt.engine.begin() as conn:
        pair = await auth.issue(
            conn,
            key,
            kind=PrincipalKind.STAFF.value,
            subject=staff.staff_id,
            roles=[],
            amr=["pwd"],
            access_ttl=ENROLMENT_TTL,
            refresh_ttl=ENROLMENT_TTL,
        )
    return PasswordStep(enrolment_token=pair.access_token)


async def second_factor(
    rt: ServiceRuntime, challenge: str, code: str | None, recovery_code: str | None
) -> TokenPair:
    """Step two: the TOTP code or a single-use recovery code → tokens with MFA. Raises
    ChallengeInvalid, AccountLocked, WrongCredentials (counted toward the lock-out)."""
    settings = identity_settings(rt)
    key = await auth.signing_key(rt)
    staff_id = auth.challenged_staff(key, challenge)
    master = await rt.secrets.key_wrap(TOTP_SECRETS)
    async with rt.engine.begin() as conn:
        staff = await store.for_update(conn, staff_id)
        if staff is None or staff.totp_secret_wrapped is None:
            raise ChallengeInvalid()
        if staff.state is StaffState.LOCKED:
            raise AccountLocked()
        secret = master.unwrap(totp_key_context(staff_id), staff.totp_secret_wrapped).decode()
        proven = check_second_factor(secret, staff.recovery_codes, code, recovery_code)
        if proven is None:
            await count_failure(rt, conn, staff_id)
        else:
            await store.passed_second_factor(conn, staff_id, proven.remaining_codes)
            pair = await auth.issue(
                conn,
                key,
                kind=PrincipalKind.STAFF.value,
                subject=staff_id,
                roles=staff.roles,
                amr=["pwd", "otp"],
                access_ttl=settings.access_token_ttl_seconds,
                refresh_ttl=STAFF_REFRESH_TTL,
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
                    StaffRecoveryCodeUsed(staff_id=staff_id, remaining=len(proven.remaining_codes))
                )
            await _record(rt, conn, staff_id, Actor(kind=ActorKind.STAFF, id=staff_id), *events)
    if proven is None:  # raised after the commit: the failure stays counted
        raise WrongCredentials()
    return pair


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
        if not totp_matches(secret, code):
            raise WrongCredentials()
        if not await store.confirm_enrolment(conn, staff_id, [hash_code(c) for c in codes]):
            raise IllegalTransition("enrolled meanwhile")
        await _record(
            rt,
            conn,
            staff_id,
            Actor(kind=ActorKind.STAFF, id=staff_id),
            StaffTotpEnrolled(staff_id=staff_id, recovery_codes_issued=len(codes)),
        )
    return codes


async def unlock(rt: ServiceRuntime, staff_id: str, administrator: str) -> None:
    """An administrator unlocks an account (and resets its count). Raises NoSuchStaff."""
    async with rt.engine.begin() as conn:
        staff = await store.for_update(conn, staff_id)
        if staff is None:
            raise NoSuchStaff(staff_id)
        transition(staff.state, StaffAction.UNLOCK)
        await store.unlock(conn, staff_id)  # the row is locked: no one moved it meanwhile
        admin = Actor(kind=ActorKind.STAFF, id=administrator, role=StaffRole.ADMINISTRATOR.value)
        await _record(rt, conn, staff_id, admin, StaffUnlocked(staff_id=staff_id))


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

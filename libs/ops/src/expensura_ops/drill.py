"""`expensura incident drill`: a whole scripted breach, end to end, against a running stack
(issue 13, point 5), over the services' HTTP APIs as their users would drive them.

The script: N customers (600 by default) sign up with an e-mail and a phone, choose e-mail
then letter for notices (with a mailing address; every `spanish_every`-th reads Spanish) and
consent to sharing their contact details with a credit bureau; every `fail_every`-th has an
e-mail the SMTP sink refuses (`undeliverable-…`, a permanent failure), so their notice falls
back to the letter; every `withdraw_every`-th (none by default) withdraws the consent before
the leak, so the partner's pull of them is refused (403, DisclosureRefused) and they are
neither exposed nor notified. The bureau is registered with its agreement and credential (a privacy
officer asks, a second one approves each: four eyes). Its credential leaks: the "partner"
pulls every customer's contacts. A security officer (staff with TOTP) reports the incident,
triages and grades it, asks the gateway to revoke the credential (and waits a bounded time
for the credential to stop working and the incident to show the gateway's signed revocation:
'revoked' or 'not confirmed', never a failure), computes the blast radius over the leaked
credential for the past week, attaches its summary, sends every
notifiable subject's notice in one step from the stored blast radius, and reads the FTC
report's draft with its deadline.

The only step that is not HTTP is the first administrator (`expensura staff create-admin`,
an operator's command: no API creates the first one); the wait for incident's contacts copy
uses incident's operator route (`/internal/notification-contacts/…`) with incident's own
service credentials from the stack file, as an operator would.

Speed: requests run concurrently (`concurrency`, an asyncio semaphore over one
httpx.AsyncClient). Each sign-up and sign-in hashes a password with argon2id at the cost the
stack configures: `make run` keeps the production cost (RFC 9106's second recommendation,
64 MiB, three passes), so there the drill's 1,200 hashes take minutes of CPU; the test
stacks use a test cost (`expensura_ops.testing.stack.CHEAP_HASHING`).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pyotp

from expensura_events.service_identity import ServiceIdentity
from expensura_ops.testing.signing import PartnerAuth, decode_key

PASSWORD = "drill password, not for production"
PURPOSE = "credit-assessment"
FIELDS = ("email", "phone")
POLICY_VERSION = "1"
RETRY_STATUSES = frozenset({409, 429, 502, 503, 504})

CONTENT = {
    "situation": (
        "Between {start} and {end} a credential we had issued to one of our partners, a "
        "credit bureau, was used by someone else to request customers' contact details."
    ),
    "impacts": ["e-mail address", "phone number"],
    "measures": (
        "We revoked the credential, reviewed every request made with it, and notified the "
        "Federal Trade Commission."
    ),
    "advice": (
        "Be wary of e-mails, texts and calls that ask for your password, one-time codes or "
        "payment details; we never ask for them."
    ),
    "remedies": (
        "Call us at 1-800-555-0100. You can get a free credit report at "
        "annualcreditreport.com and place a security freeze with each credit bureau for free."
    ),
}
SPANISH = {
    "situation": (
        "Entre {start} y {end} alguien usó una credencial que habíamos emitido a un socio, "
        "una agencia de crédito, para pedir datos de contacto de clientes."
    ),
    "impacts": ["correo electrónico", "número de teléfono"],
    "measures": (
        "Revocamos la credencial, revisamos cada solicitud hecha con ella y avisamos a la "
        "Comisión Federal de Comercio."
    ),
    "advice": (
        "Desconfíe de correos, mensajes y llamadas que pidan su contraseña, códigos de un "
        "solo uso o datos de pago; nunca se los pedimos."
    ),
    "remedies": (
        "Llámenos al 1-800-555-0100. Puede obtener un informe de crédito gratuito en "
        "annualcreditreport.com y congelar su crédito en cada agencia sin costo."
    ),
}


class DrillFailed(Exception):
    """A step of the drill failed; the message names the step and what was answered."""

    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"{step}: {detail}")
        self.step = step


@dataclass(frozen=True)
class Targets:
    """Where the stack's services listen (public APIs), the messaging sandbox, and what the
    operator's wait needs: incident's internal URL and service credentials."""

    identity: str
    consent: str
    gateway: str
    incident: str
    incident_internal: str | None = None
    incident_service_key: str | None = None
    service_public_keys: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_stack(cls, env: Mapping[str, Mapping[str, str]]) -> Targets:
        """From a stack file's content (`var/stack.json`: each service's environment)."""

        def public(name: str) -> str:
            svc = env[name]
            host = svc.get("EXPENSURA_HOST", "127.0.0.1")
            return (
                f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{svc['EXPENSURA_PORT']}"
            )

        incident = env["incident"]
        internal = json.loads(env["identity"]["EXPENSURA_SERVICE_URLS"]).get("incident")
        return cls(
            identity=public("identity"),
            consent=public("consent"),
            gateway=public("sharing-gateway"),
            incident=public("incident"),
            incident_internal=internal,
            incident_service_key=incident.get("EXPENSURA_SERVICE_KEY"),
            service_public_keys=json.loads(incident.get("EXPENSURA_SERVICE_PUBLIC_KEYS", "{}")),
        )

    @classmethod
    def from_stack_file(cls, path: Path) -> Targets:
        if not path.exists():
            raise FileNotFoundError(f"no {path}: start the stack with `make run` first")
        return cls.from_stack(json.loads(path.read_text()))


@dataclass(frozen=True)
class DrillOptions:
    customers: int = 600
    fail_every: int = 10  # every n-th customer's e-mail is refused: their notice goes by letter
    spanish_every: int = 5  # every n-th customer reads notices in Spanish
    # every n-th customer withdraws the consent before the pull (0: none): the pull of them
    # is refused, and they are not in the blast radius
    withdraw_every: int = 0
    concurrency: int = 16
    revocation_wait: float = 20.0  # seconds to wait for the credential to stop working
    # seconds to wait for the log's consumers, and for the sender to make progress
    settle_timeout: float = 120.0


@dataclass(frozen=True)
class Customer:
    index: int
    subject_id: str
    email: str
    phone: str
    letter_line1: str  # the mailing address's first delivery line (unique per customer)
    language: str | None
    email_fails: bool
    withdrew: bool = False  # withdrew the consent before the pull: refused, not exposed


@dataclass
class DrillReport:
    started_at: str
    run_id: str
    partner_id: str = ""
    client_id: str = ""
    incident_id: str = ""
    severity: str | None = None
    score: float | None = None
    revocation: str = "not asked"
    blast_radius_id: str = ""
    subjects_exposed: int = 0
    consents_withdrawn: int = 0
    pulls_refused: int = 0
    notifiable_subjects: int = 0
    notices_planned: int = 0
    notices_unreachable: int = 0
    notice_states: dict[str, int] = field(default_factory=dict)
    notice_channels: dict[str, dict[str, int]] = field(default_factory=dict)
    fallbacks: dict[str, int] = field(default_factory=dict)
    discovered_at: str | None = None
    ftc_due_by: str | None = None
    ftc_consumers: int | None = None
    ftc_note: str | None = None
    regimes: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    retries: dict[str, int] = field(default_factory=dict)  # by answer: what made it retry
    # per route: requests, and their total and slowest seconds (where the time goes)
    latency: dict[str, dict[str, float]] = field(default_factory=dict)
    customers: list[Customer] = field(default_factory=list)
    failed_step: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.failed_step is None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


AdminFactory = Callable[[str, str], Awaitable[None]]


async def create_admin_with_cli(email: str, password: str) -> None:
    """The first administrator, as an operator makes one (`expensura staff create-admin`,
    with this process's environment: the stack file or the service's variables)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "expensura_ops.cli", "staff", "create-admin",
        "--email", email, "--password", password,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise DrillFailed("create the administrator", out.decode(errors="replace")[-500:])


class _Unauthorised(Exception):
    """A token refused (expired): the caller gets a new one and asks again."""


def _route(url: str) -> str:
    """The path with ids left out (for counting retries by route)."""
    path = httpx.URL(url).path
    return "/".join(
        "{id}" if any(c.isdigit() for c in p) and len(p) > 8 else p for p in path.split("/")
    )


def _detail(resp: httpx.Response) -> str:
    return f"{resp.request.method} {resp.request.url.path} → {resp.status_code} {resp.text[:300]}"


class Drill:
    def __init__(
        self,
        targets: Targets,
        options: DrillOptions,
        *,
        create_admin: AdminFactory = create_admin_with_cli,
        say: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.t, self.o = targets, options
        self.create_admin = create_admin
        self.say = say
        self.run_id = uuid.uuid4().hex[:8]
        self.report = DrillReport(started_at=datetime.now(UTC).isoformat(), run_id=self.run_id)
        self.sem = asyncio.Semaphore(options.concurrency)
        self.client = httpx.AsyncClient(timeout=60)

    # --- plumbing -----------------------------------------------------------------------

    async def _call(
        self,
        step: str,
        method: str,
        url: str,
        *,
        expect: Sequence[int] = (200, 201, 202),
        attempts: int = 8,
        renew_on_401: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request; overload and not-yet-consistent answers (409, 429, 5xx) are retried
        with back-off (a stack under the drill's load answers them honestly)."""
        delay = 0.2
        for attempt in range(attempts):
            sent = time.monotonic()
            try:
                resp = await self.client.request(method, url, **kwargs)
                self._took(f"{method} {_route(url)}", time.monotonic() - sent)
            except httpx.TransportError as exc:
                if attempt == attempts - 1:
                    raise DrillFailed(step, f"{method} {url}: {exc!r}") from None
            else:
                if resp.status_code in expect:
                    return resp
                if resp.status_code == 401 and renew_on_401:
                    raise _Unauthorised
                if resp.status_code not in RETRY_STATUSES or attempt == attempts - 1:
                    raise DrillFailed(step, _detail(resp))
                why = f"{method} {_route(url)} {resp.status_code}"
                self.report.retries[why] = self.report.retries.get(why, 0) + 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    def _took(self, route: str, seconds: float) -> None:
        seen = self.report.latency.setdefault(route, {"n": 0, "total": 0.0, "max": 0.0})
        seen["n"] += 1
        seen["total"] = round(seen["total"] + seconds, 3)
        seen["max"] = round(max(seen["max"], seconds), 3)

    async def _each(self, items: Sequence[Any], work: Callable[[Any], Awaitable[Any]]) -> list[Any]:
        async def bounded(item: Any) -> Any:
            async with self.sem:
                return await work(item)

        return list(await asyncio.gather(*(bounded(i) for i in items)))

    async def _timed(self, name: str, work: Awaitable[Any]) -> Any:
        started = time.monotonic()
        self.say(f"{name} …")
        result = await work
        self.report.timings[name] = round(time.monotonic() - started, 2)
        return result

    # --- staff ----------------------------------------------------------------------------

    async def _signed_in_staff(self, email: str) -> dict[str, str]:
        """Password, TOTP enrolment at the first sign-in, then password + TOTP: a session
        with MFA, as a staff member gets one."""
        idp = self.t.identity
        step = "staff sign-in"
        first = await self._call(
            step, "POST", f"{idp}/v1/staff/sessions", json={"email": email, "password": PASSWORD}
        )
        enrol = {"authorization": f"Bearer {first.json()['enrolment_token']}"}
        setup = await self._call(step, "POST", f"{idp}/v1/staff/me/totp", headers=enrol)
        totp = pyotp.TOTP(setup.json()["secret"])
        # enrol with the previous step's code (still accepted), so the current one is fresh
        # for the sign-in that follows (a code works once)
        await self._call(
            step,
            "POST",
            f"{idp}/v1/staff/me/totp/confirm",
            headers=enrol,
            json={"code": totp.at(time.time() - 30)},
        )
        challenge = await self._call(
            step, "POST", f"{idp}/v1/staff/sessions", json={"email": email, "password": PASSWORD}
        )
        signed = await self._call(
            step,
            "POST",
            f"{idp}/v1/staff/sessions/mfa",
            json={"challenge": challenge.json()["challenge"], "code": totp.now()},
        )
        return {"authorization": f"Bearer {signed.json()['access_token']}"}

    def _staff_email(self, who: str) -> str:
        return f"drill-{who}-{self.run_id}@expensura.example"

    async def staff(self) -> dict[str, dict[str, str]]:
        """An administrator (the operator's command), then two privacy officers (four eyes)
        and a security officer; the privacy officers signed in with TOTP (the security
        officer signs in when the incident is found: `respond`)."""
        admin_email = self._staff_email("admin")
        await self.create_admin(admin_email, PASSWORD)
        admin = await self._signed_in_staff(admin_email)
        out = {"admin": admin}
        for who, role in (
            ("privacy", "privacy-officer"),
            ("second-privacy", "privacy-officer"),
            ("security", "security-officer"),
        ):
            email = self._staff_email(who)
            await self._call(
                "add staff",
                "POST",
                f"{self.t.identity}/v1/staff",
                headers=admin,
                json={"email": email, "password": PASSWORD, "roles": [role]},
            )
            if who != "security":
                out[who] = await self._signed_in_staff(email)
        return out

    # --- the partner ----------------------------------------------------------------------

    async def partner(self, staff: Mapping[str, dict[str, str]]) -> tuple[str, str, str]:
        """A credit bureau with a year's agreement and a credential, each approved by a
        second privacy officer; returns (partner id, client id, client secret)."""
        gw, officer, second = self.t.gateway, staff["privacy"], staff["second-privacy"]
        step = "register the partner"
        partner_id = f"drill-bureau-{self.run_id}"
        approve = {"decision": "approve", "reason": "drill: checked by a second officer"}
        await self._call(
            step, "POST", f"{gw}/v1/partners", headers=officer,
            json={"partner_id": partner_id, "name": "Drill Credit Bureau", "kind": "credit-bureau"},
        )  # fmt: skip
        await self._call(
            step, "POST", f"{gw}/v1/partners/{partner_id}/approval", headers=second, json=approve
        )
        now = datetime.now(UTC)
        agreement = await self._call(
            step,
            "POST",
            f"{gw}/v1/partners/{partner_id}/agreements",
            headers=officer,
            json={
                "reference": f"DSA-{partner_id}",
                "purposes": [PURPOSE],
                "fields": list(FIELDS),
                "inbound": False,
                "starts_at": (now - timedelta(days=8)).isoformat(),
                "ends_at": (now + timedelta(days=365)).isoformat(),
            },
        )
        agreement_id = agreement.json()["agreement_id"]
        await self._call(
            step,
            "POST",
            f"{gw}/v1/partners/{partner_id}/agreements/{agreement_id}/approval",
            headers=second,
            json=approve,
        )
        credential = await self._call(
            step,
            "POST",
            f"{gw}/v1/partners/{partner_id}/credentials",
            headers=officer,
            json={"scopes": [PURPOSE]},
        )
        client_id, client_secret = (
            credential.json()["client_id"],
            credential.json()["client_secret"],
        )
        await self._call(
            step,
            "POST",
            f"{gw}/v1/partners/{partner_id}/credentials/{client_id}/approval",
            headers=second,
            json=approve,
        )
        await self._until(
            "consent to learn the partner",
            lambda: self._consent_knows(partner_id),
            timeout=self.o.settle_timeout,
        )
        return partner_id, client_id, client_secret

    async def _consent_knows(self, partner_id: str) -> bool:
        resp = await self.client.get(f"{self.t.consent}/v1/recipients")
        return resp.status_code == 200 and any(r["recipient"] == partner_id for r in resp.json())

    async def _until(
        self, what: str, check: Callable[[], Awaitable[bool]], *, timeout: float
    ) -> None:
        deadline = time.monotonic() + timeout
        while not await check():
            if time.monotonic() > deadline:
                raise DrillFailed(what, f"not within {timeout:.0f} s")
            await asyncio.sleep(0.25)

    # --- customers ------------------------------------------------------------------------

    def _customer_plan(self, index: int) -> tuple[str, str, str | None, bool]:
        fails = self.o.fail_every > 0 and index % self.o.fail_every == self.o.fail_every - 1
        local = "undeliverable-drill" if fails else "drill"
        email = f"{local}-{self.run_id}-{index:04d}@example.com"
        line1 = f"{100 + index} Drill Street {self.run_id}"
        spanish = self.o.spanish_every > 0 and index % self.o.spanish_every == 0
        return email, line1, ("es-US" if spanish else None), fails

    async def customer(self, index: int, partner_id: str) -> Customer:
        """Sign up (e-mail and phone), sign in, choose e-mail then letter (with the address),
        and consent to sharing the contact details with the partner."""
        idp = self.t.identity
        email, line1, language, fails = self._customer_plan(index)
        phone = f"+1415{5550000 + index + 100:07d}"[:12]
        step = f"customer {index}"
        await self._call(
            step, "POST", f"{idp}/v1/accounts",
            json={"email": email, "phone": phone, "password": PASSWORD},
        )  # fmt: skip
        signed = await self._call(
            step, "POST", f"{idp}/v1/sessions", json={"email": email, "password": PASSWORD}
        )
        access = signed.json()["access_token"]
        subject = str(jwt.decode(access, options={"verify_signature": False})["sub"])
        auth = {"authorization": f"Bearer {access}"}
        preferences: dict[str, Any] = {
            "channels": ["email", "letter"],
            "mailing_address": f"Drill Customer {index}\n{line1}\nSpringfield, IL 62701",
        }
        if language:
            preferences["language"] = language
        await self._call(
            step, "PUT", f"{idp}/v1/me/notification-preferences", headers=auth, json=preferences
        )
        given = await self._call(
            step,
            "POST",
            f"{self.t.consent}/v1/me/consents",
            headers=auth,
            json={
                "purpose": PURPOSE,
                "categories": ["pd:Contact"],
                "recipients": [partner_id],
                "policy_version": POLICY_VERSION,
            },
        )
        every = self.o.withdraw_every
        withdraws = every > 0 and index % every == every - 1
        if withdraws:
            consent_id = given.json()["consent_id"]
            await self._call(
                f"{step} withdraws",
                "DELETE",
                f"{self.t.consent}/v1/me/consents/{consent_id}",
                headers=auth,
            )
        return Customer(index, subject, email, phone, line1, language, fails, withdraws)

    # --- the breach -----------------------------------------------------------------------

    async def _token(self, client_id: str, client_secret: str) -> httpx.Response:
        return await self.client.post(
            f"{self.t.gateway}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": client_secret,
            },
        )

    async def pull(self, customers: Sequence[Customer], client_id: str, secret: str) -> None:
        """The leaked credential used: every customer's contact details disclosed. A token
        lives five minutes; when one is refused, the holder of the credential gets another
        (as whoever took it would)."""
        auth: PartnerAuth | None = None
        renewing = asyncio.Lock()

        async def renewed(stale: PartnerAuth | None) -> PartnerAuth:
            nonlocal auth
            async with renewing:
                if auth is stale:  # one renewal for all the requests refused at once
                    issued = await self._token(client_id, secret)
                    if issued.status_code != 200:
                        raise DrillFailed("the leaked credential's token", _detail(issued))
                    body = issued.json()
                    auth = PartnerAuth(body["access_token"], decode_key(body["request_key"]))
                assert auth is not None
                return auth

        await renewed(None)

        async def one(c: Customer) -> None:
            for _ in range(3):
                current = auth
                assert current is not None
                try:
                    await self._call(
                        f"pull customer {c.index}",
                        "POST",
                        f"{self.t.gateway}/v1/disclosures",
                        auth=current,
                        json={
                            "subject_id": c.subject_id,
                            "purpose": PURPOSE,
                            "fields": list(FIELDS),
                        },
                        # a customer who withdrew is refused, at once (RGT-4)
                        expect=(403,) if c.withdrew else (200, 201, 202),
                        attempts=12,
                        renew_on_401=True,
                    )
                    if c.withdrew:
                        self.report.pulls_refused += 1
                    return
                except _Unauthorised:
                    await renewed(current)
            raise DrillFailed(f"pull customer {c.index}", "the token was refused three times")

        await self._each(customers, one)

    async def wait_revoked(
        self, client_id: str, secret: str, incident_id: str, officer: dict[str, str]
    ) -> str:
        """'revoked' once the credential no longer gets a token AND the incident shows the
        gateway's signed revocation as its request's outcome; 'not confirmed' if either is
        still missing after `revocation_wait` seconds (the gateway carries the request out,
        and its event comes back to incident)."""
        deadline = time.monotonic() + self.o.revocation_wait
        while True:
            resp = await self._token(client_id, secret)
            if resp.status_code in (400, 401, 403):
                view = await self.client.get(
                    f"{self.t.incident}/v1/incidents/{incident_id}", headers=officer
                )
                asked = view.json().get("containment", []) if view.status_code == 200 else []
                if asked and all(c.get("carried_out_at") for c in asked):
                    return "revoked"
            if time.monotonic() > deadline:
                return "not confirmed"
            await asyncio.sleep(1.0)

    async def _contacts_ready(self, customers: Sequence[Customer]) -> bool:
        """Incident's contacts copy holds every customer's choice (e-mail, then letter)."""
        if not (self.t.incident_internal and self.t.incident_service_key):
            return True  # no operator credentials: the run's `unreachable` count tells
        identity = ServiceIdentity.from_config(
            "incident", self.t.incident_service_key, dict(self.t.service_public_keys)
        )

        async def ready(c: Customer) -> bool:
            resp = await self.client.get(
                f"{self.t.incident_internal}/internal/notification-contacts/{c.subject_id}",
                headers=identity.headers_for("incident"),
            )
            return resp.status_code == 200 and resp.json().get("notice_channels") == [
                "email",
                "letter",
            ]

        return all(await self._each(customers, ready))

    async def respond(
        self,
        customers: Sequence[Customer],
        partner_id: str,
        client_id: str,
        secret: str,
        pulled_from: datetime,
    ) -> None:
        inc, r = self.t.incident, self.report
        officer = await self._signed_in_staff(self._staff_email("security"))
        reported = await self._call(
            "report the incident",
            "POST",
            f"{inc}/v1/incidents",
            headers=officer,
            json={
                "summary": f"Partner credential of {partner_id} leaked and used to pull "
                "customers' contact details (drill)",
                "source": "staff",
                "note": f"drill {self.run_id}",
            },
        )
        incident_id = reported.json()["incident_id"]
        r.incident_id = incident_id
        triaged = await self._call(
            "triage",
            "POST",
            f"{inc}/v1/incidents/{incident_id}/triage",
            headers=officer,
            json={
                "category": "hacking",
                "assessment": {
                    "data": [{"category": "simple"}],
                    "identification": "maximum",
                    "confidentiality": "unknown-recipients",
                    "malicious": True,
                },
            },
        )
        r.severity, r.score = triaged.json()["severity"], triaged.json()["score"]
        await self._call(
            "containment",
            "POST",
            f"{inc}/v1/incidents/{incident_id}/containment",
            headers=officer,
            json={"measure": "revoke-partner-credential", "target": client_id},
        )
        r.revocation = await self._timed(
            "revocation", self.wait_revoked(client_id, secret, incident_id, officer)
        )

        window = {
            "start": (datetime.now(UTC) - timedelta(days=7)).isoformat(),
            "end": (datetime.now(UTC) + timedelta(seconds=1)).isoformat(),
        }
        body = {
            "incident_id": incident_id,
            # The leaked credential's own disclosures (each names its client id), not
            # everything the partner's other credentials pulled.
            "scope": {"kind": "credential", "value": client_id},
            "window": window,
        }
        radius: dict[str, Any] = {}

        async def indexed() -> bool:
            nonlocal radius
            radius = (
                await self._call(
                    "blast radius", "POST", f"{inc}/v1/blast-radius", headers=officer, json=body
                )
            ).json()
            return int(radius["subjects"]) >= len(customers)

        async def computed() -> None:
            # the index follows the gateway's log: computed again until every pull is in it
            deadline = time.monotonic() + self.o.settle_timeout
            while not await indexed() and time.monotonic() < deadline:
                await asyncio.sleep(1.0)
                body["window"]["end"] = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()

        await self._timed("blast radius", computed())
        r.blast_radius_id = radius["computation_id"]
        r.subjects_exposed, r.notifiable_subjects = (
            radius["subjects"],
            radius["notifiable_subjects"],
        )
        await self._call(
            "attach the exposure",
            "POST",
            f"{inc}/v1/incidents/{incident_id}/exposure",
            headers=officer,
            json={
                # incident keeps no residence: every subject under ZZ (unknown), which
                # counts towards every regime (an unknown residence never hides a duty)
                "groups": [
                    {"residence": "ZZ", "protection": p, "subjects": n}
                    for p, n in sorted(radius["by_protection"].items())
                    if n
                ],
                "information_types": sorted(radius["fields"]),
                "first_at": radius["first_at"],
                "last_at": radius["last_at"],
            },
        )

        await self._timed(
            "contacts copy",
            self._until(
                "incident's contacts copy to hold every customer's choice",
                lambda: self._contacts_ready(customers),
                timeout=self.o.settle_timeout,
            ),
        )
        when = {
            "start": pulled_from.date().isoformat(),
            "end": datetime.now(UTC).date().isoformat(),
        }
        content = {k: v.format(**when) if isinstance(v, str) else v for k, v in CONTENT.items()}
        spanish = {k: v.format(**when) if isinstance(v, str) else v for k, v in SPANISH.items()}
        sent = await self._call(
            "send the notices",
            "POST",
            f"{inc}/v1/incidents/{incident_id}/breach-notices",
            headers=officer,
            json={
                "content": content,
                "translations": {"es": spanish},
                "blast_radius_id": r.blast_radius_id,
            },
        )
        r.notices_planned, r.notices_unreachable = (
            sent.json()["planned"],
            sent.json()["unreachable"],
        )
        await self._timed("deliveries", self._delivered(incident_id, officer, r.notices_planned))

        ftc = await self._call(
            "the FTC draft",
            "GET",
            f"{inc}/v1/incidents/{incident_id}/ftc-report",
            headers=officer,
            expect=(200, 409),
        )
        if ftc.status_code == 200:
            r.ftc_due_by, r.discovered_at = ftc.json()["due_by"], ftc.json()["discovered_at"]
            r.ftc_consumers = ftc.json()["consumers"]
        else:  # below the rule's 500 consumers (a smaller drill): no report is due
            r.ftc_note = str(ftc.json().get("detail", "no FTC report due"))
        incident = await self._call(
            "the incident", "GET", f"{inc}/v1/incidents/{incident_id}", headers=officer
        )
        r.regimes = [
            {"code": g["code"], "due_by": g["due_by"], "report_due": g["report_due"]}
            for g in incident.json()["regimes"]
        ]

    async def _delivered(self, incident_id: str, officer: dict[str, str], planned: int) -> None:
        """Until every notice reachable is delivered; fails only when delivery stalls (no
        notice completed for `settle_timeout` seconds): the sender's pace is the stack's."""
        url = f"{self.t.incident}/v1/incidents/{incident_id}/breach-notices"
        deadline = time.monotonic() + self.o.settle_timeout
        completed = -1
        while True:
            counts = (await self._call("notice states", "GET", url, headers=officer)).json()
            r = self.report
            r.notice_states, r.notice_channels = counts["states"], counts["channels"]
            r.fallbacks = counts["fallbacks"]
            done = counts["states"].get("completed", 0)
            if done >= planned - r.notices_unreachable:
                return
            if done > completed:
                completed, deadline = done, time.monotonic() + self.o.settle_timeout
            if time.monotonic() > deadline:
                raise DrillFailed("deliveries", f"not settled in time: {counts['states']}")
            await asyncio.sleep(1.0)

    def _check_outcome(self, n: int) -> None:
        """The drill passes only if the response reached exactly the `n` customers it
        exposed, and every pull of a customer who withdrew was refused."""
        r = self.report
        if r.pulls_refused != r.consents_withdrawn:
            raise DrillFailed(
                "outcome", f"{r.pulls_refused} pulls refused, not {r.consents_withdrawn}"
            )
        if r.subjects_exposed != n or r.notifiable_subjects != n:
            raise DrillFailed("outcome", f"{r.subjects_exposed} subjects exposed, not {n}")
        if r.notices_planned != n or r.notice_states.get("completed", 0) != n:
            raise DrillFailed("outcome", f"notices {r.notice_states}, not {n} completed")

    # --- the whole drill ------------------------------------------------------------------

    async def run(self) -> DrillReport:
        r = self.report
        try:
            staff = await self._timed("staff", self.staff())
            partner_id, client_id, secret = await self._timed("partner", self.partner(staff))
            r.partner_id, r.client_id = partner_id, client_id
            pulled_from = datetime.now(UTC)
            customers = await self._timed(
                "sign-ups",
                self._each(list(range(self.o.customers)), lambda i: self.customer(i, partner_id)),
            )
            r.customers = customers
            r.consents_withdrawn = sum(c.withdrew for c in customers)
            await self._timed("pulls", self.pull(customers, client_id, secret))
            # who withdrew was refused: not exposed, not in the blast radius, not notified
            exposed = [c for c in customers if not c.withdrew]
            await self.respond(exposed, partner_id, client_id, secret, pulled_from)
            self._check_outcome(len(exposed))
        except DrillFailed as exc:
            r.failed_step, r.error = exc.step, str(exc)
        except Exception as exc:  # reported, not raised: the summary still prints
            r.failed_step, r.error = "unexpected", f"{type(exc).__name__}: {exc}"
        finally:
            await self.client.aclose()
        return r


def default_stack_file() -> Path:
    from expensura_ops.devstack.paths import var_dir

    return Path(os.environ.get("EXPENSURA_STACK_FILE") or var_dir() / "stack.json")

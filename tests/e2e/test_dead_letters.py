"""A poisoned event in identity's log, end to end: real service processes, the CLI, the logs.

The poison is an `identity.AccountOpened` whose e-mail holds a NUL character, appended to
identity's log through the event store (as a bug or someone with write access to the log
could; the HTTP edge refuses such input). The incident service's `notification-contacts`
projection refuses to keep it (no notice could reach it).
"""

from __future__ import annotations

import json
import subprocess
import uuid

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from expensura_events.runtime import ServiceRuntime
from expensura_events.testing.events import forged_account_opened
from expensura_identity.app import service_definition as identity
from expensura_incident.app import service_definition as incident
from expensura_incident.contacts.domain import email_hmac
from expensura_incident.contacts.service import contact_hmac_key
from expensura_ops.testing import tokens
from expensura_ops.testing.stack import LocalStack, eventually

CONTACTS = "notification-contacts"


def sign_up(url: str, email: str) -> str:
    return tokens.sign_up(url, email)


def dead_letters(stack: LocalStack, *args: str) -> list[dict[str, object]]:
    out = stack.cli(
        "projections",
        "dead-letters",
        *args,
        "--service",
        "incident",
        "--json",
        service_name="incident",
    )
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


async def has_contact(url: str, subject: str, operator: httpx.Auth) -> bool:
    async with httpx.AsyncClient(auth=operator) as client:
        return (await client.get(f"{url}/internal/notification-contacts/{subject}")).is_success


async def test_a_poisoned_sign_up_is_parked_later_contacts_arrive_and_nothing_prints_it(
    fresh_stack: LocalStack,
) -> None:
    fresh_stack.start("identity")
    fresh_stack.start("incident")
    idp, inc = fresh_stack.processes["identity"].url, fresh_stack.processes["incident"].internal_url
    emails = [f"user-{uuid.uuid4().hex[:10]}@example.com" for _ in range(6)]
    before = [sign_up(idp, e) for e in emails[:3]]

    secret = f"poison-{uuid.uuid4().hex[:12]}"
    rt = ServiceRuntime(identity, fresh_stack.settings("identity"))
    try:
        async with rt.engine.begin() as conn:
            [poison] = await rt.append(
                conn, [forged_account_opened(str(uuid.uuid4()), f"{secret}\x00@example.com")]
            )
    finally:
        await rt.close()
    poison_id = str(poison.event_id)

    after = [sign_up(idp, e) for e in emails[3:]]

    async def all_contacts() -> bool:
        return all([await has_contact(inc, s, fresh_stack.operator) for s in before + after])

    await eventually(all_contacts, timeout=60, what="every later sign-up's contact projected")
    assert not await has_contact(inc, str(poison.subject_id), fresh_stack.operator)

    async def counted() -> dict[str, int] | None:
        status = httpx.get(f"{inc}/internal/workers", auth=fresh_stack.operator).json()[
            "projections"
        ][CONTACTS]
        return status if status["dead_letters"] == 1 else None

    status = await eventually(counted, what="the dead letter counted in /internal/workers")
    assert status["dead_lettered"] == 1

    outputs: list[subprocess.CompletedProcess[str]] = []
    [listed] = dead_letters(fresh_stack)
    assert (listed["event_id"], listed["projection"], listed["status"]) == (
        poison_id,
        CONTACTS,
        "parked",
    )
    assert listed["event_type"] == "identity.AccountOpened"
    assert listed["error_class"] == "UnusableContact"
    outputs.append(
        fresh_stack.cli(
            "projections",
            "dead-letters",
            "show",
            poison_id,
            "--service",
            "incident",
            service_name="incident",
        )
    )
    assert "UnusableContact" in outputs[-1].stdout

    # retrying without a fix fails again: it stays open, and says why in one line
    outputs.append(
        fresh_stack.cli(
            "projections",
            "dead-letters",
            "retry",
            poison_id,
            "--service",
            "incident",
            service_name="incident",
            check=False,
        )
    )
    assert outputs[-1].returncode == 1 and "failed again" in outputs[-1].stdout
    assert [r["status"] for r in dead_letters(fresh_stack)] == ["retried"]

    # the documented repair: a rebuild completes, keeps every good contact, parks the poison
    outputs.append(
        fresh_stack.cli("projections", "rebuild", CONTACTS, service_name="incident", check=False)
    )
    assert outputs[-1].returncode == 0, outputs[-1].stdout + outputs[-1].stderr
    assert f"{6 * tokens.SIGN_UP_EVENTS} events applied" in outputs[-1].stdout
    assert "1 events could not be applied" in outputs[-1].stdout
    assert await all_contacts()

    # an operator gives up on it, with a reason that is recorded
    outputs.append(
        fresh_stack.cli(
            "projections",
            "dead-letters",
            "skip",
            poison_id,
            "--reason",
            "NUL in the address",
            "--by",
            "oncall",
            "--service",
            "incident",
            service_name="incident",
        )
    )
    [skipped] = dead_letters(fresh_stack, "--status", "all")
    assert (skipped["status"], skipped["reason"], skipped["resolved_by"]) == (
        "skipped",
        "NUL in the address",
        "oncall",
    )
    assert dead_letters(fresh_stack) == []  # nothing open

    printed = "".join(o.stdout + o.stderr for o in outputs)
    logs = "".join(sp.log() for sp in fresh_stack.processes.values())
    for plaintext in (secret, *emails):
        assert plaintext not in printed
        assert plaintext not in logs
    assert "Traceback" not in printed


async def test_a_parked_sign_up_applies_when_retried_after_the_fix(
    fresh_stack: LocalStack,
) -> None:
    fresh_stack.start("identity")
    fresh_stack.start("incident")
    idp, inc = fresh_stack.processes["identity"].url, fresh_stack.processes["incident"].internal_url
    owner = create_async_engine(fresh_stack.database_url("incident", admin=True))
    address = f"blocked-{uuid.uuid4().hex[:8]}@example.com"
    incident_rt = ServiceRuntime(incident, fresh_stack.settings("incident"))
    try:
        digest = email_hmac(await contact_hmac_key(incident_rt), address)  # its own secret
    finally:
        await incident_rt.close()
    async with owner.begin() as conn:  # a defect in the read model that refuses one address
        await conn.execute(
            text(f"""CREATE FUNCTION refuse_blocked() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN
                      IF NEW.email_hmac = '{digest}' THEN RAISE EXCEPTION 'refused'; END IF;
                      RETURN NEW;
                    END $$""")
        )
        await conn.execute(
            text("""CREATE TRIGGER refuse_blocked BEFORE INSERT ON notification_contacts
                    FOR EACH ROW EXECUTE FUNCTION refuse_blocked()""")
        )
    blocked = sign_up(idp, address)
    fine = sign_up(idp, f"fine-{uuid.uuid4().hex[:8]}@example.com")
    await eventually(
        lambda: has_contact(inc, fine, fresh_stack.operator), what="the later sign-up projected"
    )

    async def parked() -> list[dict[str, object]] | None:
        return dead_letters(fresh_stack) or None

    [letter] = await eventually(parked, what="the refused sign-up parked")
    assert letter["error_class"] == "RaiseError" and letter["status"] == "parked"

    async with owner.begin() as conn:  # the fix
        await conn.execute(text("DROP TRIGGER refuse_blocked ON notification_contacts"))
    await owner.dispose()
    retried = fresh_stack.cli(
        "projections",
        "dead-letters",
        "retry",
        "--all",
        "--by",
        "oncall",
        "--service",
        "incident",
        service_name="incident",
    )
    assert "applied, resolved" in retried.stdout
    assert await has_contact(inc, blocked, fresh_stack.operator)
    [resolved] = dead_letters(fresh_stack, "--status", "all")
    assert (resolved["status"], resolved["resolved_by"]) == ("resolved", "oncall")

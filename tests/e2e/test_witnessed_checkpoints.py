"""Checkpoints others witness, end to end: real service processes, PostgreSQL and broker.

Whoever owns a service's database can rewrite a record and recompute every later hash; the
chain then verifies on its own. Here the rewriter goes further still: it holds the service's
event-signing key, re-signs what it changed and rewrites the service's own checkpoints to
match. What it cannot touch are the witness records in the other services' logs, and
`expensura log verify` finds the rewrite through them.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from expensura_events.authenticity import EventSigner
from expensura_events.chain import GENESIS, link_hash
from expensura_events.mapper import canonical_json
from expensura_ops.testing.stack import LocalStack, eventually

pytestmark = pytest.mark.obligation("SEC-3")

WITNESSES = ("consent", "loans")
FAST_CHECKPOINTS = {"EXPENSURA_CHECKPOINT_INTERVAL_SECONDS": "0.5"}


def sign_up(url: str) -> None:
    resp = httpx.post(
        f"{url}/v1/accounts",
        json={
            "email": f"user-{uuid.uuid4().hex[:10]}@example.com",
            "phone": "+14155550100",
            "password": "correct horse battery staple",
        },
    )
    assert resp.status_code == 202, resp.text


async def rows(stack: LocalStack, service: str, sql: str) -> list[Any]:
    engine = create_async_engine(stack.database_url(service, admin=True))
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql))).all())
    finally:
        await engine.dispose()


async def head(stack: LocalStack, service: str) -> int:
    [(seq,)] = await rows(stack, service, "SELECT coalesce(max(seq), 0) FROM event_log")
    return int(seq)


async def business_head(stack: LocalStack, service: str) -> int:
    """The sequence of the service's last record that is not chain evidence (checkpoints
    and witness records): what a later checkpoint must cover."""
    [(seq,)] = await rows(
        stack,
        service,
        "SELECT coalesce(max(seq), 0) FROM event_log WHERE event_type NOT IN "
        "('platform.ChainCheckpoint', 'platform.CheckpointWitnessed')",
    )
    return int(seq)


async def witnessed(stack: LocalStack, witness: str, source: str) -> list[int]:
    """The sequences of `source`'s chain that `witness` recorded checkpoints of."""
    found = await rows(
        stack,
        witness,
        "SELECT record FROM event_log WHERE event_type = 'platform.CheckpointWitnessed'",
    )
    payloads = [json.loads(r.record)["payload"] for r in found]
    return sorted(p["sequence"] for p in payloads if p["source"] == source)


async def witnessing_state(stack: LocalStack, signed_up: int) -> str:
    """What each side did, for a failure's report: identity's head, checkpoints and relay;
    each witness's records and its chain-witness projection's counters."""
    checkpoints = await rows(
        stack,
        "identity",
        "SELECT seq, record FROM event_log WHERE event_type = 'platform.ChainCheckpoint'",
    )
    covered = [(r.seq, json.loads(r.record)["payload"]["sequence"]) for r in checkpoints]
    lines = [
        f"identity: signed up through {signed_up}, head {await head(stack, 'identity')}, "
        f"checkpoints (at, covering) {covered[-5:]}"
    ]
    for name in ("identity", *WITNESSES):
        url = stack.processes[name].internal_url
        try:
            status = httpx.get(f"{url}/internal/workers", auth=stack.operator, timeout=10).json()
        except httpx.HTTPError as exc:
            lines.append(f"{name}: /internal/workers unreachable ({exc!r})")
            continue
        witness = status.get("projections", {}).get("chain-witness")
        lines.append(f"{name}: relay {status.get('relay')}, chain-witness {witness}")
        if name != "identity":
            lines.append(f"{name} witnessed identity at {await witnessed(stack, name, 'identity')}")
    return "\n".join(lines)


async def rewrite_history_as_owner(stack: LocalStack, service: str, signer: EventSigner) -> int:
    """Drop the phone number from the first sign-up's record, recompute every later hash,
    re-sign what changed and make the service's own checkpoints agree. Returns the sequence
    rewritten."""
    engine = create_async_engine(stack.database_url(service, admin=True))
    try:
        async with engine.begin() as conn:
            await conn.execute(text("ALTER TABLE event_log DISABLE TRIGGER event_log_append_only"))
            log = (
                await conn.execute(text("SELECT seq, record, hash FROM event_log ORDER BY seq"))
            ).all()
            target = next(
                r.seq
                for r in log
                if json.loads(r.record)["event_type"] == "identity.AccountOpened"
                and json.loads(r.record)["payload"]["phone"] is not None
            )
            new_hashes: dict[int, bytes] = {}
            prev = GENESIS
            for r in log:
                record = r.record
                data = json.loads(record)
                if r.seq == target:
                    data["payload"]["phone"] = None
                    record = canonical_json(data)
                elif data["event_type"] == "platform.ChainCheckpoint":
                    covered = data["payload"]["sequence"]
                    if covered in new_hashes:
                        data["payload"]["head_hash"] = new_hashes[covered].hex()
                        record = canonical_json(data)
                prev = new_hashes[r.seq] = link_hash(prev, r.seq, record)
                if record != r.record or prev != r.hash:
                    signed = signer.sign(record)
                    await conn.execute(
                        text(
                            "UPDATE event_log SET record = :record, hash = :hash,"
                            " signature = :signature WHERE seq = :seq"
                        ),
                        {
                            "record": record,
                            "hash": prev,
                            "signature": signed.signature,
                            "seq": r.seq,
                        },
                    )
            await conn.execute(text("ALTER TABLE event_log ENABLE TRIGGER event_log_append_only"))
    finally:
        await engine.dispose()
    return target


async def test_a_rewritten_history_with_every_hash_recomputed_is_caught_through_the_witnesses(
    fresh_stack: LocalStack,
) -> None:
    for name in ("identity", *WITNESSES):
        fresh_stack.start(name, **FAST_CHECKPOINTS)
    idp = fresh_stack.processes["identity"].url
    for _ in range(3):
        sign_up(idp)
    # The last sign-up record, not the head: a checkpoint appended since is no record that
    # a later checkpoint will cover (CI once waited for one that never comes).
    signed_up = await business_head(fresh_stack, "identity")

    async def every_witness_saw_the_sign_ups() -> bool:
        seen = [await witnessed(fresh_stack, w, "identity") for w in WITNESSES]
        return all(any(s >= signed_up for s in sequences) for sequences in seen)

    try:
        await eventually(
            every_witness_saw_the_sign_ups, timeout=90, what="consent and loans to witness"
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{await witnessing_state(fresh_stack, signed_up)}") from None

    # Witnessing does not feed back: once the sign-ups are witnessed, the logs stand still.
    async def heads_stand_still() -> bool:
        before = [await head(fresh_stack, n) for n in ("identity", *WITNESSES)]
        await asyncio.sleep(2.0)  # four checkpoint intervals
        return before == [await head(fresh_stack, n) for n in ("identity", *WITNESSES)]

    await eventually(heads_stand_still, what="the logs to stop moving")

    untouched = fresh_stack.cli("log", "verify", "identity", check=False)
    assert untouched.returncode == 0, untouched.stdout + untouched.stderr
    assert "intact" in untouched.stdout and "rewritten" not in untouched.stdout
    assert "witnesses: consent, loans" in untouched.stdout
    # identity's configuration cannot vouch for another chain: its peers witnessed that one
    other = fresh_stack.cli("log", "verify", "consent", check=False)
    assert other.returncode == 2 and "configures identity" in other.stdout + other.stderr

    signer = EventSigner.from_base64(
        "identity", fresh_stack.env["identity"]["EXPENSURA_EVENT_SIGNING_KEY"]
    )
    rewritten = await rewrite_history_as_owner(fresh_stack, "identity", signer)

    result = fresh_stack.cli("log", "verify", "identity", check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "BROKEN" not in output  # the chain agrees with itself: only the witnesses know
    # its own checkpoints were rewritten to match: they contradict the witnesses, not the chain
    assert not re.search(r"rewritten history: sequence \d+ witnessed by identity itself", output)
    assert re.search(r"conflicting checkpoints: sequence \d+ witnessed by", output), output
    for witness in WITNESSES:
        found = re.findall(
            rf"rewritten history: sequence (\d+) witnessed by {witness} as ([0-9a-f]{{16}}), "
            rf"now ([0-9a-f]{{16}})",
            output,
        )
        assert found, output
        for sequence, then, now in found:
            assert int(sequence) >= rewritten and then != now

"""argon2id off the event loop: correct answers, equal work for unknown accounts, a bound."""

from __future__ import annotations

import asyncio
import time

import pytest

from expensura_events.passwords import (
    RFC9106_LOW_MEMORY,
    HashingCost,
    HashingOverloaded,
    PasswordHashing,
)
from expensura_events.settings import ServiceSettings

CHEAP = HashingCost(time_cost=1, memory_kib=1024, parallelism=1)


async def test_a_hash_verifies_its_secret_and_nothing_else() -> None:
    hashing = PasswordHashing(CHEAP)
    stored = await hashing.hash("correct horse battery staple")
    assert stored.startswith("$argon2id$")
    assert await hashing.verify(stored, "correct horse battery staple")
    assert not await hashing.verify(stored, "correct horse battery stapler")
    assert not await hashing.verify("not a hash", "anything")
    hashing.close()


async def test_an_unknown_account_costs_a_verification_and_never_matches() -> None:
    hashing = PasswordHashing(HashingCost(time_cost=2, memory_kib=16_384, parallelism=1))
    stored = await hashing.hash("s3cret-s3cret")
    began = time.perf_counter()
    assert not await hashing.verify(stored, "wrong")
    known = time.perf_counter() - began
    began = time.perf_counter()
    assert not await hashing.verify(None, "s3cret-s3cret")
    unknown = time.perf_counter() - began
    # the same argon2 work either way (generous bound: this is about skipping the hash)
    assert unknown > known / 4
    hashing.close()


async def test_the_event_loop_keeps_running_while_hashes_are_computed() -> None:
    hashing = PasswordHashing(HashingCost(time_cost=3, memory_kib=32_768, parallelism=1))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    await asyncio.gather(*(hashing.hash(f"pw-{i}") for i in range(4)))
    task.cancel()
    assert ticks > 5  # a hash on the loop would have frozen the ticker until all were done
    hashing.close()


async def test_more_waiting_work_than_the_bound_is_refused_not_queued() -> None:
    hashing = PasswordHashing(CHEAP, workers=1, max_waiting=2)
    results = await asyncio.gather(
        *(hashing.hash(f"pw-{i}") for i in range(10)), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, HashingOverloaded)]
    assert 0 < len(refused) <= 7 and len(results) - len(refused) >= 3
    hashing.close()


def test_production_defaults_are_rfc_9106s_low_memory_option() -> None:
    fields = ServiceSettings.model_fields
    assert fields["password_hash_time_cost"].default == RFC9106_LOW_MEMORY["time_cost"] == 3
    assert fields["password_hash_memory_kib"].default == RFC9106_LOW_MEMORY["memory_kib"] == 65536
    assert fields["password_hash_parallelism"].default == RFC9106_LOW_MEMORY["parallelism"] == 4


@pytest.mark.parametrize("field", ["password_hash_time_cost", "password_hash_memory_kib"])
def test_a_cost_below_the_minimum_is_refused(field: str) -> None:
    with pytest.raises(ValueError):
        ServiceSettings(
            database_url="x",
            keystore_url="x",
            master_key="x",
            kafka_bootstrap_servers="x",
            **{field: 0},
        )

"""A worker's doorbell (runtime.Doorbell): a ring made while the worker runs or sleeps
wakes it, and is never lost; a stop wakes it; without either it sleeps its timeout."""

import asyncio

from expensura_events.runtime import Doorbell

LONG = 60.0  # a wait that must not run its course: the test would hang, not pass


async def test_a_ring_before_the_wait_ends_it_at_once() -> None:
    bell, stop = Doorbell(), asyncio.Event()
    bell.ring()  # rung while the worker ran its round
    async with asyncio.timeout(LONG / 2):
        await bell.wait(stop, LONG)


async def test_a_ring_during_the_wait_wakes_the_worker() -> None:
    bell, stop = Doorbell(), asyncio.Event()
    waiting = asyncio.create_task(bell.wait(stop, LONG))
    await asyncio.sleep(0)
    assert not waiting.done()
    bell.ring()
    async with asyncio.timeout(LONG / 2):
        await waiting


async def test_a_ring_is_used_once_and_a_stop_ends_the_wait() -> None:
    bell, stop = Doorbell(), asyncio.Event()
    bell.ring()
    bell.ring()  # two rings before one round: one round sees both works
    await bell.wait(stop, LONG)
    waiting = asyncio.create_task(bell.wait(stop, LONG))
    await asyncio.sleep(0)
    assert not waiting.done()  # the ring was used by the first wait
    stop.set()
    async with asyncio.timeout(LONG / 2):
        await waiting


async def test_without_a_ring_it_sleeps_its_timeout() -> None:
    bell, stop = Doorbell(), asyncio.Event()
    await bell.wait(stop, 0.01)
    assert not stop.is_set()

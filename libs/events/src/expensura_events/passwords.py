"""Password and client-secret hashing with argon2id, off the event loop.

One argon2id hash costs tens of milliseconds of CPU and, at RFC 9106's second recommended
parameters, 64 MiB of memory. Run inside an `async def` handler it stalls every other request
of the process (and identity's stall reaches every service through its JWKS), so hashing runs
in a small thread pool of its own, and a process refuses more waiting work than that pool can
clear quickly instead of queueing without bound.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# RFC 9106 §4, the second recommended option: argon2id, t=3, m=64 MiB, p=4 (argon2-cffi's
# default). Tests may lower them through settings; production must not.
RFC9106_LOW_MEMORY = {"time_cost": 3, "memory_kib": 65_536, "parallelism": 4}


class HashingOverloaded(Exception):
    """More hashes are waiting than the pool clears quickly: answer 503, try again later."""


@dataclass(frozen=True)
class HashingCost:
    time_cost: int = RFC9106_LOW_MEMORY["time_cost"]
    memory_kib: int = RFC9106_LOW_MEMORY["memory_kib"]
    parallelism: int = RFC9106_LOW_MEMORY["parallelism"]


class PasswordHashing:
    """argon2id hashing and verification in a bounded thread pool."""

    def __init__(self, cost: HashingCost, workers: int = 2, max_waiting: int = 64) -> None:
        self._hasher = PasswordHasher(
            time_cost=cost.time_cost,
            memory_cost=cost.memory_kib,
            parallelism=cost.parallelism,
        )
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2")
        self._slots = asyncio.Semaphore(workers + max_waiting)
        # Verified against when the account is unknown, so that "no such account" costs
        # what "wrong password" costs (no timing oracle for account existence).
        self._dummy = self._hasher.hash("not a real password, only for equal timing")

    async def _run(self, fn: object, *args: str) -> object:
        if self._slots.locked():
            raise HashingOverloaded("password hashing is saturated")
        async with self._slots:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, fn, *args)  # type: ignore[arg-type]

    async def hash(self, secret: str) -> str:
        return str(await self._run(self._hasher.hash, secret))

    async def verify(self, stored: str | None, secret: str) -> bool:
        """True if `secret` matches `stored`. With no stored hash (an unknown account) it
        verifies against a dummy hash and returns False, taking the same time."""
        try:
            return bool(await self._run(self._hasher.verify, stored or self._dummy, secret)) and (
                stored is not None
            )
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        """The stored hash was made with weaker parameters than today's."""
        return self._hasher.check_needs_rehash(stored)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

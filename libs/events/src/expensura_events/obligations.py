"""`@enforces("RUL-3")`: the code that enforces an obligation says so, where it does it.

Tests say which obligation they prove (`@pytest.mark.obligation`); the rule itself says which
obligation it enforces with this decorator, so `expensura compliance` can print, for every
promise of the policy, obligation → enforcing code → proving tests → result. The decorator
only records; it never wraps or changes the function.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

_ID = re.compile(r"^[A-Z]{3}-\d+$")

T = TypeVar("T", bound=Callable[..., Any] | type)


@dataclass(frozen=True)
class Enforcement:
    obligation: str
    where: str  # module:qualname
    file: str
    line: int


ENFORCEMENTS: list[Enforcement] = []


def enforces(*obligations: str) -> Callable[[T], T]:
    """Mark a function or class as (part of) where the given obligations are enforced."""
    for ob in obligations:
        if not _ID.match(ob):
            raise ValueError(f"{ob!r} is not an obligation id such as 'SHR-1'")

    def mark(target: T) -> T:
        try:
            file = inspect.getsourcefile(target) or "?"
            line = inspect.getsourcelines(target)[1]
        except (OSError, TypeError):
            file, line = "?", 0
        where = f"{target.__module__}:{target.__qualname__}"
        ENFORCEMENTS.extend(Enforcement(ob, where, file, line) for ob in obligations)
        return target

    return mark


def enforced_by() -> dict[str, list[Enforcement]]:
    """Obligation id → the code marked as enforcing it (of the modules imported so far)."""
    out: dict[str, list[Enforcement]] = {}
    for e in ENFORCEMENTS:
        out.setdefault(e.obligation, []).append(e)
    return out

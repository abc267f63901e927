"""Account cancellation as a state machine (RUL-2, RGT-3, POL-2). No framework here.

requested ─▶ cooling-off ─▶ processing-stopped ─▶ erasing ─▶ certified
                 │                                   │
                 └─▶ withdrawn (the user took it back) └─▶ escalated (stores did not confirm)
"""

from __future__ import annotations

from enum import StrEnum

from expensura_events.topology import SERVICES


class CancellationState(StrEnum):
    COOLING_OFF = "cooling-off"
    WITHDRAWN = "withdrawn"
    PROCESSING_STOPPED = "processing-stopped"
    ERASING = "erasing"
    CERTIFIED = "certified"
    ESCALATED = "escalated"


OPEN_STATES = frozenset(
    {
        CancellationState.COOLING_OFF,
        CancellationState.PROCESSING_STOPPED,
        CancellationState.ERASING,
        CancellationState.ESCALATED,
    }
)

# Every store that must confirm before a certificate is issued.
ERASURE_PARTICIPANTS: tuple[str, ...] = tuple(s.name.value for s in SERVICES)


class CancellationConflict(Exception):
    pass


def can_withdraw(state: CancellationState) -> bool:
    """Only during cooling-off: once processing stopped, erasure follows."""
    return state is CancellationState.COOLING_OFF


def missing_confirmations(confirmed: set[str]) -> list[str]:
    return [s for s in ERASURE_PARTICIPANTS if s not in confirmed]

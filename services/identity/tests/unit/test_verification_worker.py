"""The verification worker's pace: it sleeps until the earliest pending request is due,
within its bounds, so an idle identity does not poll its database five times a second."""

from datetime import UTC, datetime, timedelta

from expensura_identity.verification.worker import (
    MAX_WAIT_SECONDS,
    MIN_WAIT_SECONDS,
    wait_before_next_round,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_with_nothing_pending_it_waits_the_longest() -> None:
    assert wait_before_next_round(None, NOW) == MAX_WAIT_SECONDS


def test_a_request_due_soon_is_retried_at_its_time() -> None:
    assert wait_before_next_round(NOW + timedelta(seconds=0.5), NOW) == 0.5


def test_a_request_already_due_waits_the_shortest_and_a_far_one_the_longest() -> None:
    assert wait_before_next_round(NOW - timedelta(seconds=3), NOW) == MIN_WAIT_SECONDS
    assert wait_before_next_round(NOW + timedelta(hours=1), NOW) == MAX_WAIT_SECONDS

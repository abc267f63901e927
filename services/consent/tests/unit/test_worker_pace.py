"""The consent worker's pace: it sleeps until the next consent expires, within its bounds,
so an idle consent does not poll its database; rings wake it sooner (runtime.Doorbell)."""

from datetime import UTC, datetime, timedelta

from expensura_consent.policy.worker import MIN_WAIT_SECONDS, wait_before_next_round

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
INTERVAL = 5.0


def test_with_nothing_to_expire_it_waits_its_interval() -> None:
    assert wait_before_next_round(None, NOW, INTERVAL) == INTERVAL


def test_a_consent_expiring_soon_is_expired_at_its_time() -> None:
    assert wait_before_next_round(NOW + timedelta(seconds=2), NOW, INTERVAL) == 2.0


def test_a_consent_already_due_waits_the_shortest_and_a_far_one_the_interval() -> None:
    assert wait_before_next_round(NOW - timedelta(seconds=3), NOW, INTERVAL) == MIN_WAIT_SECONDS
    assert wait_before_next_round(NOW + timedelta(days=30), NOW, INTERVAL) == INTERVAL

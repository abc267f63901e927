"""The rights worker's pace: it sleeps until the next cooling-off period ends, within its
bounds, so an idle identity does not poll its database; rings wake it sooner."""

from datetime import UTC, datetime, timedelta

from expensura_identity.rights.worker import MIN_WAIT_SECONDS, wait_before_next_round

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
INTERVAL = 5.0


def test_with_no_cooling_off_running_it_waits_its_interval() -> None:
    assert wait_before_next_round(None, NOW, INTERVAL) == INTERVAL


def test_a_cooling_off_ending_soon_is_acted_on_at_its_end() -> None:
    assert wait_before_next_round(NOW + timedelta(seconds=1.5), NOW, INTERVAL) == 1.5


def test_an_end_already_past_waits_the_shortest_and_a_far_one_the_interval() -> None:
    assert wait_before_next_round(NOW - timedelta(seconds=3), NOW, INTERVAL) == MIN_WAIT_SECONDS
    assert wait_before_next_round(NOW + timedelta(days=7), NOW, INTERVAL) == INTERVAL

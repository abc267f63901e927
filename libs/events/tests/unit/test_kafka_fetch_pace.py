"""A consumer's fetch wait follows the traffic (kafka.FetchPace): short while events flow,
long after a quiet spell, short again at the first record."""

from __future__ import annotations

import inspect

from aiokafka.consumer.fetcher import Fetcher

from expensura_events.kafka import FetchPace


def pace() -> FetchPace:
    return FetchPace(busy_ms=10, idle_ms=1000, idle_after_s=2.0, now=100.0)


def test_a_consumer_starts_busy_and_stays_so_while_quiet_for_less_than_the_idle_spell() -> None:
    p = pace()
    assert p.wait_ms == 10
    assert p.observe(False, 101.9) is None
    assert p.wait_ms == 10


def test_after_the_idle_spell_it_waits_long_and_changes_the_wait_once() -> None:
    p = pace()
    assert p.observe(False, 102.0) == 1000
    assert p.observe(False, 150.0) is None  # already idle: nothing to change
    assert p.wait_ms == 1000


def test_the_first_records_after_a_quiet_spell_make_it_busy_again() -> None:
    p = pace()
    p.observe(False, 103.0)
    assert p.observe(True, 104.0) == 10
    # The spell counts from the last records, not from the start.
    assert p.observe(False, 105.9) is None
    assert p.observe(False, 106.0) == 1000


def test_records_keep_a_busy_consumer_busy_without_changes() -> None:
    p = pace()
    assert [p.observe(True, 100.0 + i) for i in range(5)] == [None] * 5


def test_an_idle_wait_below_the_busy_one_is_raised_to_it() -> None:
    assert FetchPace(busy_ms=50, idle_ms=5, idle_after_s=1.0, now=0.0).idle_ms == 50


def test_aiokafka_still_reads_the_wait_from_the_attribute_apply_sets() -> None:
    # apply() sets a private attribute of aiokafka's fetcher: if an upgrade renames it,
    # the wait would silently stop following the traffic. This fails first.
    assert "self._fetch_max_wait_ms = fetch_max_wait_ms" in inspect.getsource(Fetcher.__init__)
    assert "self._fetch_max_wait_ms," in inspect.getsource(Fetcher)

"""The fuzz harness's check that no answer names another service's internal address."""

from __future__ import annotations

from expensura_ops.testing.fuzz import internal_addresses


def test_another_service_s_local_address_in_an_answer_is_found() -> None:
    body = b'{"detail": "identity at http://127.0.0.1:41234/internal/x did not answer"}'
    assert internal_addresses(body, "http://127.0.0.1:8000") == ["127.0.0.1:41234"]
    assert internal_addresses(b"see localhost:5432", "http://127.0.0.1:8000") == ["localhost:5432"]


def test_the_service_s_own_address_and_plain_numbers_are_not_leaks() -> None:
    assert internal_addresses(b'{"url": "http://127.0.0.1:8000/v1"}', "http://127.0.0.1:8000") == []
    assert internal_addresses(b'{"at": "10:30:00", "n": 127001}', "http://127.0.0.1:8000") == []

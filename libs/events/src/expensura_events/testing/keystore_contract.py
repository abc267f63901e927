"""The one contract every `KeyStore` passes, whatever keeps the keys (a table, a KMS, a dict).

Subclass it as `Test<Something>` and provide the `store` fixture, a fresh key store (fresh
subjects are enough: every test names subjects of its own):

    class TestInMemoryKeyStore(KeyStoreContract):
        @pytest.fixture
        def store(self) -> KeyStore:
            return InMemoryKeyStore()

Crypto-shredding rests on these properties: a destroyed key never comes back, and nothing
new is sealed for an erased subject (SEC-1, RGT-3).
"""

from __future__ import annotations

import uuid

import pytest

from expensura_events.cipher import SubjectErased
from expensura_events.envelope import key_owner
from expensura_events.keystore import KeyStore


def new_subject() -> str:
    return f"subject-{uuid.uuid4()}"


class KeyStoreContract:
    @pytest.fixture
    def store(self) -> KeyStore:
        raise NotImplementedError("a KeyStoreContract subclass provides the `store` fixture")

    async def test_a_key_is_created_once_and_read_back_unchanged(self, store: KeyStore) -> None:
        s = new_subject()
        assert await store.get(s) is None
        assert await store.readable(s) == {} and await store.live(s) is False
        created = await store.get_or_create(s)
        assert len(created.key) == 32
        assert await store.get_or_create(s) == created
        assert await store.get(s) == created
        # a sealed box names its key: the key opens by that id
        assert await store.readable(s) == {str(created.key_id): created}
        assert await store.live(s) is True

    async def test_subjects_get_distinct_keys(self, store: KeyStore) -> None:
        a, b = await store.get_or_create(new_subject()), await store.get_or_create(new_subject())
        assert a.key_id != b.key_id and a.key != b.key

    async def test_many_creates_the_missing_and_returns_the_existing(self, store: KeyStore) -> None:
        old, new1, new2 = new_subject(), new_subject(), new_subject()
        existing = await store.get_or_create(old)
        assert await store.get_or_create_many(set()) == {}
        keys = await store.get_or_create_many({old, new1, new2})
        assert set(keys) == {old, new1, new2}
        assert keys[old] == existing
        assert keys[new1] != keys[new2]
        assert await store.get(new1) == keys[new1]
        assert await store.get_or_create_many({old, new1, new2}) == keys  # ids are stable

    async def test_destroy_is_permanent_and_idempotent(self, store: KeyStore) -> None:
        s = new_subject()
        await store.get_or_create(s)
        assert await store.destroy(s) is True
        assert await store.destroy(s) is False  # already gone: nothing more to do
        assert await store.get(s) is None
        assert await store.readable(s) == {} and await store.live(s) is False
        with pytest.raises(SubjectErased):
            await store.get_or_create(s)  # never re-created
        with pytest.raises(SubjectErased):
            await store.get_or_create_many({s, new_subject()})

    async def test_destroying_an_unknown_subject_still_bars_a_key_for_them(
        self, store: KeyStore
    ) -> None:
        s = new_subject()
        assert await store.destroy(s) is False  # there was no key to destroy …
        with pytest.raises(SubjectErased):
            await store.get_or_create(s)  # … but none is ever created after the erasure

    async def test_destroying_one_subject_leaves_the_others(self, store: KeyStore) -> None:
        gone, kept = new_subject(), new_subject()
        kept_key = await store.get_or_create(kept)
        await store.get_or_create(gone)
        await store.destroy(gone)
        assert await store.get(kept) == kept_key
        assert await store.get_or_create(kept) == kept_key

    async def test_a_hold_key_outlives_erasure_but_none_is_issued_after_it(
        self, store: KeyStore
    ) -> None:
        s = new_subject()
        hold, other_hold = key_owner(s, "loan-records"), key_owner(s, "tax-records")
        await store.get_or_create(s)
        held = await store.get_or_create(hold)
        assert held != await store.get(s)  # the hold has a key of its own
        assert await store.destroy(s) is True  # the subject is erased …
        assert await store.get(hold) == held  # … their held records stay readable …
        assert await store.readable(hold) == {str(held.key_id): held}
        assert await store.live(hold) is True and await store.live(s) is False
        with pytest.raises(SubjectErased):
            await store.get_or_create(hold)  # … but nothing new is sealed under the hold
        with pytest.raises(SubjectErased):
            await store.get_or_create(other_hold)
        with pytest.raises(SubjectErased):
            await store.get_or_create_many({hold})
        assert await store.destroy(hold) is True  # the hold ends
        assert await store.get(hold) is None

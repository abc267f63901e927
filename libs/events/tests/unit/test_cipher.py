"""Field encryption: what is sealed opens only for its subject, event and field (SEC-1)."""

from __future__ import annotations

import base64
import os
import uuid
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from expensura_events.cipher import (
    ALGORITHM,
    DATA_KEY_WRAP,
    ENC_MARK,
    SUBKEY_LABELS,
    TOKEN_KEYS,
    TOTP_SECRETS,
    FieldCipher,
    MasterKey,
    MasterKeys,
    UnknownMasterKey,
)
from expensura_events.envelope import REDACTED
from expensura_events.keystore import InMemoryKeyStore

pytestmark = pytest.mark.obligation("SEC-1")


def subject() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def cipher() -> FieldCipher[InMemoryKeyStore]:
    return FieldCipher(InMemoryKeyStore())


async def test_sealed_fields_open_to_the_same_values_and_hide_them(
    cipher: FieldCipher[InMemoryKeyStore],
) -> None:
    s, event = subject(), str(uuid.uuid4())
    values: dict[str, Any] = {"email": "ana@example.com", "limits": {"daily": 5}, "n": 7}
    sealed = await cipher.encrypt_fields(s, event, values)
    key = await cipher.keys.get(s)
    assert key is not None
    assert set(sealed) == set(values)
    for box in sealed.values():
        assert box[ENC_MARK] == ALGORITHM and box["kid"] == str(key.key_id)
        assert "ana@example.com" not in str(box)
    assert await cipher.decrypt_fields(s, event, {**sealed, "plain": 1}) == {**values, "plain": 1}


async def test_each_seal_uses_a_fresh_nonce(cipher: FieldCipher[InMemoryKeyStore]) -> None:
    s, event = subject(), str(uuid.uuid4())
    first = await cipher.encrypt_fields(s, event, {"email": "same"})
    second = await cipher.encrypt_fields(s, event, {"email": "same"})
    assert first["email"]["iv"] != second["email"]["iv"]
    assert first["email"]["ct"] != second["email"]["ct"]


async def test_a_ciphertext_moved_to_another_field_does_not_open(
    cipher: FieldCipher[InMemoryKeyStore],
) -> None:
    s, event = subject(), str(uuid.uuid4())
    sealed = await cipher.encrypt_fields(s, event, {"email": "ana@example.com"})
    with pytest.raises(InvalidTag):
        await cipher.decrypt_fields(s, event, {"phone": sealed["email"]})


async def test_a_ciphertext_moved_to_another_event_does_not_open(
    cipher: FieldCipher[InMemoryKeyStore],
) -> None:
    s = subject()
    sealed = await cipher.encrypt_fields(s, str(uuid.uuid4()), {"email": "ana@example.com"})
    with pytest.raises(InvalidTag):
        await cipher.decrypt_fields(s, str(uuid.uuid4()), sealed)


async def test_another_subjects_ciphertext_reads_redacted(
    cipher: FieldCipher[InMemoryKeyStore],
) -> None:
    owner, other, event = subject(), subject(), str(uuid.uuid4())
    sealed = await cipher.encrypt_fields(owner, event, {"email": "ana@example.com"})
    await cipher.keys.get_or_create(other)
    assert await cipher.decrypt_fields(other, event, sealed) == {"email": REDACTED}


async def test_fields_read_redacted_once_the_key_is_destroyed_or_unknown(
    cipher: FieldCipher[InMemoryKeyStore],
) -> None:
    s, event = subject(), str(uuid.uuid4())
    sealed = await cipher.encrypt_fields(s, event, {"email": "ana@example.com", "phone": "+1"})
    payload = {**sealed, "account_id": "a-1"}
    assert (await cipher.decrypt_fields(None, event, payload))["email"] == REDACTED
    assert (await cipher.decrypt_fields(subject(), event, payload))["phone"] == REDACTED
    assert await cipher.keys.destroy(s)
    opened = await cipher.decrypt_fields(s, event, payload)
    assert opened == {"email": REDACTED, "phone": REDACTED, "account_id": "a-1"}


def test_the_master_key_wraps_a_data_key_for_one_subject_only() -> None:
    master = MasterKey(os.urandom(32))
    data_key = os.urandom(32)
    wrapped = master.wrap("subject-a", data_key)
    assert data_key not in wrapped
    assert master.unwrap("subject-a", wrapped) == data_key
    with pytest.raises(InvalidTag):
        master.unwrap("subject-b", wrapped)  # a wrapped key moved to another row
    with pytest.raises(InvalidTag):
        MasterKey(os.urandom(32)).unwrap("subject-a", wrapped)  # another master key


def test_the_master_key_comes_from_32_bytes_of_base64() -> None:
    raw = os.urandom(32)
    assert MasterKey.from_base64(base64.b64encode(raw).decode()).kek_id == MasterKey(raw).kek_id
    assert MasterKey(raw).kek_id != MasterKey(os.urandom(32)).kek_id
    with pytest.raises(ValueError, match="32 bytes"):
        MasterKey(os.urandom(16))


def test_each_use_of_the_master_key_has_its_own_sub_key_never_the_master_itself() -> None:
    raw = os.urandom(32)
    master = MasterKey(raw)
    subkeys = {label: master.subkey(label) for label in SUBKEY_LABELS}
    assert len(set(subkeys.values())) == len(SUBKEY_LABELS)  # pairwise distinct
    assert raw not in subkeys.values()
    assert all(len(k) == 32 for k in subkeys.values())
    assert MasterKey(raw).subkey(DATA_KEY_WRAP) == subkeys[DATA_KEY_WRAP]  # deterministic
    assert MasterKey(os.urandom(32)).subkey(DATA_KEY_WRAP) != subkeys[DATA_KEY_WRAP]
    with pytest.raises(ValueError, match="unknown sub-key"):
        master.subkey("anything-else")


def test_a_wrap_opens_only_under_the_sub_key_that_made_it() -> None:
    raw = os.urandom(32)
    master = MasterKey(raw)
    secret = os.urandom(32)
    as_token_key = master.key_wrap(TOKEN_KEYS).wrap("ctx", secret)
    assert master.key_wrap(TOKEN_KEYS).unwrap("ctx", as_token_key) == secret
    with pytest.raises(InvalidTag):
        master.key_wrap(TOTP_SECRETS).unwrap("ctx", as_token_key)
    with pytest.raises(InvalidTag):
        master.unwrap("ctx", as_token_key)  # the data-key wrap is another sub-key
    with pytest.raises(InvalidTag):
        AESGCM(raw).decrypt(as_token_key[:12], as_token_key[12:], b"ctx")  # nor the master


def test_master_keys_open_a_wrap_by_the_master_key_it_names() -> None:
    old, new = MasterKey(os.urandom(32)), MasterKey(os.urandom(32))
    keys = MasterKeys(new, previous=old)
    assert keys.current is new
    assert keys.by_id(old.kek_id) is old and keys.by_id(new.kek_id) is new
    with pytest.raises(UnknownMasterKey):
        MasterKeys(new).by_id(old.kek_id)  # once the rotation is over, the old key is gone
    encoded = MasterKeys.from_base64(
        base64.b64encode(b"n" * 32).decode(), base64.b64encode(b"o" * 32).decode()
    )
    assert encoded.current.kek_id == MasterKey(b"n" * 32).kek_id
    assert encoded.previous is not None and encoded.previous.kek_id == MasterKey(b"o" * 32).kek_id
    assert MasterKeys.from_base64(base64.b64encode(b"n" * 32).decode()).previous is None

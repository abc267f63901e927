"""The key store as an attacker holding one service's database role, or the owner's, would
try it: keys are created and destroyed, never changed, never written back (real PostgreSQL,
provisioned as `make run` does). And the master key rotates while services keep working."""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from expensura_events.cipher import (
    LOOKUP_HMAC,
    PSEUDONYM,
    FieldCipher,
    MasterKey,
    MasterKeys,
    SubjectErased,
    UnknownMasterKey,
)
from expensura_events.db import engine_for, new_engine, with_database
from expensura_events.db_errors import sqlstate
from expensura_events.envelope import REDACTED
from expensura_events.keystore import PostgresKeyStore, ServiceSecrets, rotate_master
from expensura_events.tables import service_secrets, subject_keys
from expensura_events.topology import KEYSTORE_DATABASE, SERVICES
from expensura_ops.testing.stack import LocalStack

pytestmark = pytest.mark.obligation("RGT-3")
REFUSED = "42501"  # insufficient_privilege: a missing grant, or the guard trigger


@pytest.fixture(scope="module")
async def stack(
    pg_admin_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalStack]:
    s = LocalStack(pg_admin_url, kafka_bootstrap, Path(tmp_path_factory.mktemp("keys")))
    await s.provision()
    try:
        yield s
    finally:
        await s.drop()


@pytest.fixture
async def engines(stack: LocalStack) -> AsyncIterator[dict[str, AsyncEngine]]:
    """The key store as identity's role (the erasure path), loans' role, and its owner."""
    out = {
        name: engine_for(stack.settings(name).keystore_url, pool_size=2)
        for name in ("identity", "loans")
    } | {"owner": new_engine(with_database(stack.admin_url, stack.namespace + KEYSTORE_DATABASE))}
    try:
        yield out
    finally:
        for engine in out.values():
            await engine.dispose()


def master(stack: LocalStack) -> MasterKey:
    return MasterKey.from_base64(stack.master_key)


def subject() -> str:
    return f"subject-{uuid.uuid4()}"


async def refused(engine: AsyncEngine, sql: str, **params: Any) -> str | None:
    """Run `sql` in its own transaction; the SQLSTATE it failed with (None: it succeeded)."""
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql), params)
    except DBAPIError as exc:
        return sqlstate(exc)
    return None


def role_of(stack: LocalStack, service: str) -> str:
    return str(make_url(stack.settings(service).keystore_url).username)


async def row(engine: AsyncEngine, s: str, owner: str) -> Any:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                select(subject_keys).where(
                    subject_keys.c.subject_id == s, subject_keys.c.owner == owner
                )
            )
        ).one_or_none()


async def test_no_service_role_can_change_or_delete_a_key(
    stack: LocalStack, engines: dict[str, AsyncEngine]
) -> None:
    s = subject()
    key = await PostgresKeyStore(engines["loans"], master(stack)).get_or_create(s)
    forged = master(stack).wrap(s, os.urandom(32))
    for role in ("identity", "loans"):
        assert (
            await refused(
                engines[role],
                "UPDATE subject_keys SET wrapped_key = :w WHERE subject_id = :s",
                w=forged,
                s=s,
            )
            == REFUSED
        )
        assert (
            await refused(engines[role], "DELETE FROM subject_keys WHERE subject_id = :s", s=s)
            == REFUSED
        )
        assert await refused(engines[role], "TRUNCATE subject_keys") == REFUSED
    assert await PostgresKeyStore(engines["loans"], master(stack)).get(s) == key  # unchanged


async def test_grants_every_service_select_and_insert_and_only_identity_destroy(
    engines: dict[str, AsyncEngine],
) -> None:
    """The grants themselves (the trigger refuses the same writes even if one slipped)."""
    async with engines["owner"].connect() as conn:
        for spec in SERVICES:
            role = spec.db_role
            for table in ("subject_keys", "service_secrets"):
                privileges = {
                    p: await conn.scalar(
                        text("SELECT has_table_privilege(:r, :t, :p)"),
                        {"r": role, "t": table, "p": p},
                    )
                    for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
                }
                assert privileges == {
                    "SELECT": True,
                    "INSERT": True,
                    "UPDATE": False,
                    "DELETE": False,
                    "TRUNCATE": False,
                }, (role, table)
            for fn, expected in (
                ("destroy_subject_key(text)", spec.name.value == "identity"),
                ("destroy_held_key(text)", True),  # its own holds' keys (keystore_0005)
                ("rewrap_subject_key(text, text, bytea, text, bytea)", False),
                ("rewrap_service_secret(text, text, text, bytea, text, bytea)", False),
            ):
                assert (
                    await conn.scalar(
                        text("SELECT has_function_privilege(:r, :f, 'EXECUTE')"),
                        {"r": role, "f": fn},
                    )
                    is expected
                ), (role, fn)


async def test_only_the_erasure_path_can_destroy_a_key(
    stack: LocalStack, engines: dict[str, AsyncEngine]
) -> None:
    s = subject()
    loans = PostgresKeyStore(engines["loans"], master(stack))
    key = await loans.get_or_create(s)
    with pytest.raises(DBAPIError) as denied:
        await loans.destroy(s)  # loans is not the erasure path: no EXECUTE on the function
    assert sqlstate(denied.value) == REFUSED
    # nor can it erase someone by planting a tombstone for a subject with no key yet
    assert (
        await refused(
            engines["loans"],
            "INSERT INTO subject_keys (subject_id, key_id, kek_id, wrapped_key, created_at,"
            " destroyed_at) VALUES (:s, :k, 'x', NULL, now(), now())",
            s=subject(),
            k=uuid.uuid4(),
        )
        == REFUSED
    )
    assert await loans.get(s) == key
    assert await PostgresKeyStore(engines["identity"], master(stack)).destroy(s) is True
    assert await loans.get(s) is None


@pytest.mark.obligation("RUL-2")
async def test_a_service_ends_its_own_retention_holds_only(
    stack: LocalStack, engines: dict[str, AsyncEngine]
) -> None:
    """A hold's end destroys that hold's key of the service that holds it: never a subject's
    own key, nor another service's key of the same hold, and no key of it is made again."""
    s = subject()
    hold = f"{s}#hold:reg-b-applications"
    loans = PostgresKeyStore(engines["loans"], master(stack))
    identity = PostgresKeyStore(engines["identity"], master(stack))
    own = await loans.get_or_create(s)
    await identity.get_or_create(hold)  # identity's key of a hold of the same name
    await loans.get_or_create(hold)
    for not_a_hold in (s, f"{s}#hold:", f"#hold:{s}"):  # the function ends holds only
        with pytest.raises(DBAPIError) as denied:
            async with engines["loans"].begin() as conn:
                await conn.execute(text("SELECT destroy_held_key(:k)"), {"k": not_a_hold})
        assert sqlstate(denied.value) == REFUSED
    assert await loans.destroy(hold) is True
    assert await loans.get(hold) is None
    assert await identity.get(hold) is not None  # identity's copy of that hold is its own
    assert await loans.get(s) == own  # the subject's key is untouched
    with pytest.raises(SubjectErased):
        await loans.get_or_create(hold)  # the hold is over: nothing more is held under it
    assert await loans.destroy(hold) is False


async def test_a_copied_key_cannot_be_written_back_after_erasure(
    stack: LocalStack, engines: dict[str, AsyncEngine]
) -> None:
    s = subject()
    identity = PostgresKeyStore(engines["identity"], master(stack))
    await identity.get_or_create(s)
    copy = await row(engines["owner"], s, role_of(stack, "identity"))  # a backup, a dump
    assert await identity.destroy(s) is True

    # a service role re-inserting the copied row: the tombstone holds the subject's place
    assert (
        await refused(
            engines["loans"],
            "INSERT INTO subject_keys (subject_id, key_id, kek_id, wrapped_key, created_at)"
            " VALUES (:s, :k, :kek, :w, now())",
            s=s,
            k=copy.key_id,
            kek=copy.kek_id,
            w=copy.wrapped_key,
        )
        is not None
    )
    # the owner itself writing it back, or deleting the tombstone to re-insert: refused
    assert (
        await refused(
            engines["owner"],
            "UPDATE subject_keys SET wrapped_key = :w, destroyed_at = NULL WHERE subject_id = :s",
            w=copy.wrapped_key,
            s=s,
        )
        == REFUSED
    )
    assert (
        await refused(engines["owner"], "DELETE FROM subject_keys WHERE subject_id = :s", s=s)
        == REFUSED
    )
    assert (
        await refused(
            engines["owner"],
            "SELECT rewrap_subject_key(:s, 'destroyed', NULL, :kek, :w)",
            s=s,
            kek=copy.kek_id,
            w=copy.wrapped_key,
        )
        is None
    )  # runs, but moves nothing: there is no live key to move
    # and destroying again never brings anything back
    assert await identity.destroy(s) is False
    for owner in (role_of(stack, "identity"), "*"):  # the key, and the subject's tombstone
        tomb = await row(engines["owner"], s, owner)
        assert tomb.wrapped_key is None and tomb.destroyed_at is not None
    with pytest.raises(SubjectErased):
        await identity.get_or_create(s)


async def test_a_service_reads_and_creates_only_its_own_secrets(
    stack: LocalStack, engines: dict[str, AsyncEngine]
) -> None:
    identity_secret = await ServiceSecrets(engines["identity"], master(stack)).get(LOOKUP_HMAC)
    loans_secret = await ServiceSecrets(engines["loans"], master(stack)).get(LOOKUP_HMAC)
    assert loans_secret != identity_secret and len(identity_secret) == 32
    # stable: another process of the same service gets the same secret
    assert await ServiceSecrets(engines["identity"], master(stack)).get(LOOKUP_HMAC) == (
        identity_secret
    )
    identity_role = make_url(stack.settings("identity").keystore_url).username
    async with engines["loans"].connect() as conn:
        owners = set((await conn.execute(select(service_secrets.c.owner))).scalars())
    assert owners and identity_role not in owners  # row-level security: its own rows only
    planted = master(stack).wrap("x", os.urandom(32))
    assert (
        await refused(  # nor can it plant a secret for another service
            engines["loans"],
            "INSERT INTO service_secrets (owner, label, kek_id, wrapped, created_at)"
            " VALUES (:o, 'pseudonym', 'k', :w, now())",
            o=identity_role,
            w=planted,
        )
        == REFUSED
    )
    for sql in (
        "UPDATE service_secrets SET wrapped = :w",
        "DELETE FROM service_secrets WHERE owner <> :w",
    ):
        value = planted if "UPDATE" in sql else "nobody"
        assert await refused(engines["identity"], sql, w=value) == REFUSED
        assert await refused(engines["owner"], sql, w=value) == REFUSED  # the trigger
    assert (
        await refused(
            engines["identity"],
            "SELECT rewrap_service_secret(:o, 'lookup-hmac', 'a', :w, 'b', :w)",
            o=identity_role,
            w=planted,
        )
        == REFUSED
    )
    assert await ServiceSecrets(engines["identity"], master(stack)).get(LOOKUP_HMAC) == (
        identity_secret
    )


async def test_a_live_key_is_never_rewritten_in_place(
    stack: LocalStack, engines: dict[str, AsyncEngine]
) -> None:
    s = subject()
    key = await PostgresKeyStore(engines["identity"], master(stack)).get_or_create(s)
    forged = master(stack).wrap(s, os.urandom(32))
    assert (
        await refused(  # same master key: that is replacing the key, not re-wrapping it
            engines["owner"],
            "UPDATE subject_keys SET wrapped_key = :w WHERE subject_id = :s",
            w=forged,
            s=s,
        )
        == REFUSED
    )
    for role in ("identity", "loans"):  # re-wrapping is the owner's alone
        assert (
            await refused(
                engines[role], "SELECT rewrap_subject_key(:s, 'a', :w, 'b', :w)", s=s, w=forged
            )
            == REFUSED
        )
    assert await PostgresKeyStore(engines["identity"], master(stack)).get(s) == key


@pytest.fixture
async def roles(stack: LocalStack) -> AsyncIterator[dict[str, AsyncEngine]]:
    """The key store as every service's role."""
    out = {s.name.value: engine_for(stack.settings(s.name.value).keystore_url) for s in SERVICES}
    try:
        yield out
    finally:
        for engine in out.values():
            await engine.dispose()


def store_of(stack: LocalStack, roles: dict[str, AsyncEngine], service: str) -> PostgresKeyStore:
    return PostgresKeyStore(roles[service], master(stack))


@pytest.mark.obligation("SEC-1")
async def test_a_service_opens_only_its_own_keys_and_those_it_is_declared_to_read(
    stack: LocalStack, roles: dict[str, AsyncEngine]
) -> None:
    """The attack: a service's role and the master key (all a compromised service holds)
    used to decrypt another service's sealed fields. Only incident, whose contacts
    projection opens identity's personal fields, may open identity's keys."""
    s = subject()
    identity = store_of(stack, roles, "identity")
    sealed = await FieldCipher(identity).encrypt_fields(s, "event-1", {"email": "a@example.com"})
    own = await identity.get(s)
    assert own is not None and await identity.readable(s) == {str(own.key_id): own}
    opened = {
        name: await FieldCipher(store_of(stack, roles, name)).decrypt_fields(s, "event-1", sealed)
        for name in ("incident", "consent", "loans", "sharing-gateway")
    }
    assert opened["incident"] == {"email": "a@example.com"}
    for name in ("consent", "loans", "sharing-gateway"):
        assert opened[name] == {"email": REDACTED}, name
        assert await store_of(stack, roles, name).readable(s) == {}
        # nor by SQL: row-level security shows no other service's row of the subject
        async with roles[name].connect() as conn:
            seen = (
                await conn.execute(select(subject_keys).where(subject_keys.c.subject_id == s))
            ).all()
        assert seen == [], name
    # a key of its own for the same subject opens nothing of identity's
    gateway = store_of(stack, roles, "sharing-gateway")
    mine = await gateway.get_or_create(s)
    assert mine != own and await gateway.readable(s) == {str(mine.key_id): mine}
    assert await FieldCipher(gateway).decrypt_fields(s, "event-1", sealed) == {"email": REDACTED}
    # identity does not read the gateway's key either: nobody declared it
    assert str(mine.key_id) not in await identity.readable(s)


async def test_no_service_can_plant_a_key_or_a_grant_for_another(
    stack: LocalStack, roles: dict[str, AsyncEngine]
) -> None:
    s = subject()
    identity_role, gateway_role = role_of(stack, "identity"), role_of(stack, "sharing-gateway")
    planted = master(stack).wrap(f"{s}|owner:{identity_role}", os.urandom(32))
    insert_key = (
        "INSERT INTO subject_keys (subject_id, owner, key_id, kek_id, wrapped_key, created_at)"
        " VALUES (:s, :o, :k, :kek, :w, now())"
    )
    params = {"s": s, "k": uuid.uuid4(), "kek": master(stack).kek_id, "w": planted}
    # a key under identity's name (identity would seal with it) or the shared marker
    for owner in (identity_role, "*"):
        assert await refused(roles["sharing-gateway"], insert_key, o=owner, **params) == REFUSED
    assert await store_of(stack, roles, "identity").get(s) is None
    # nor can it make itself a reader of identity's keys
    assert (
        await refused(
            roles["sharing-gateway"],
            "INSERT INTO subject_key_readers (owner, reader) VALUES (:o, :r)",
            o=identity_role,
            r=gateway_role,
        )
        == REFUSED
    )
    assert await refused(roles["incident"], "DELETE FROM subject_key_readers") == REFUSED


@pytest.mark.obligation("RGT-3")
async def test_an_erasure_destroys_every_services_key_and_none_is_made_after_it(
    stack: LocalStack, roles: dict[str, AsyncEngine]
) -> None:
    s = subject()
    kept = subject()
    for name in ("identity", "loans", "incident"):
        await store_of(stack, roles, name).get_or_create(s)
        await store_of(stack, roles, name).get_or_create(kept)
    identity = store_of(stack, roles, "identity")
    assert await store_of(stack, roles, "loans").live(s) is True
    assert await identity.destroy(s) is True
    for name in ("identity", "loans", "incident", "consent"):
        store = store_of(stack, roles, name)
        assert await store.live(s) is False and await store.readable(s) == {}
        with pytest.raises(SubjectErased):  # consent never had a key: none now either
            await store.get_or_create(s)
        with pytest.raises(SubjectErased):
            await store.get_or_create_many({s, subject()})
        assert await store.live(kept) is True  # anyone's key of the subject counts
    assert await identity.destroy(s) is False  # nothing left to destroy


@pytest.mark.obligation("RGT-3")
async def test_a_key_made_while_its_subject_is_erased_is_destroyed_with_the_others(
    stack: LocalStack, roles: dict[str, AsyncEngine]
) -> None:
    """Another service creating its key at the moment of the erasure: the erasure waits
    for that transaction (both take the subject's lock) and then destroys its key too."""
    s = subject()
    await store_of(stack, roles, "identity").get_or_create(s)
    loans_role = role_of(stack, "loans")
    async with roles["loans"].connect() as creating:
        await creating.execute(  # inserted, not yet committed
            text(
                "INSERT INTO subject_keys (subject_id, key_id, kek_id, wrapped_key, created_at)"
                " VALUES (:s, :k, :kek, :w, now())"
            ),
            {
                "s": s,
                "k": uuid.uuid4(),
                "kek": master(stack).kek_id,
                "w": master(stack).wrap(f"{s}|owner:{loans_role}", os.urandom(32)),
            },
        )
        erasing = asyncio.create_task(store_of(stack, roles, "identity").destroy(s))
        await asyncio.sleep(0.5)
        assert not erasing.done()  # it waits for the subject's lock
        await creating.commit()
    assert await erasing is True
    loans = store_of(stack, roles, "loans")
    assert await loans.live(s) is False and await loans.get(s) is None
    with pytest.raises(SubjectErased):  # and a key asked for after it is refused
        await loans.get_or_create(s)


@pytest.fixture
async def rotating(
    pg_admin_url: str, kafka_bootstrap: str, tmp_path: Path
) -> AsyncIterator[LocalStack]:
    """A stack of its own: rotating moves every key, the other tests' included."""
    s = LocalStack(pg_admin_url, kafka_bootstrap, tmp_path / "stack")
    await s.provision()
    try:
        yield s
    finally:
        await s.drop()


async def test_the_master_key_rotates_while_keys_are_created_read_and_destroyed(
    rotating: LocalStack, tmp_path: Path
) -> None:
    stack = rotating
    engines = {
        name: engine_for(stack.settings(name).keystore_url, pool_size=2)
        for name in ("identity", "loans")
    } | {"owner": new_engine(with_database(stack.admin_url, stack.namespace + KEYSTORE_DATABASE))}
    try:
        await _rotate_under_traffic(stack, engines, tmp_path)
    finally:
        for engine in engines.values():
            await engine.dispose()


async def _rotate_under_traffic(
    stack: LocalStack, engines: dict[str, AsyncEngine], tmp_path: Path
) -> None:
    old = master(stack)
    new_raw = os.urandom(32)
    new = MasterKey(new_raw)
    before = PostgresKeyStore(engines["identity"], old)
    secrets = {
        name: await ServiceSecrets(engines[name], old).get(PSEUDONYM)
        for name in ("identity", "loans")
    }
    subjects = [subject() for _ in range(60)]
    keys = await before.get_or_create_many(set(subjects))
    # loans keeps keys of its own for the same subjects: the rotation moves every owner's
    loans_keys = await PostgresKeyStore(engines["loans"], old).get_or_create_many(set(subjects))
    sealed = {
        s: await FieldCipher(before).encrypt_fields(s, "event-1", {"email": f"{s}@example.com"})
        for s in subjects[:10]
    }
    # services now run with both keys: new keys under the new one, old ones still open
    during = PostgresKeyStore(engines["identity"], MasterKeys(new, previous=old))
    loans_during = PostgresKeyStore(engines["loans"], MasterKeys(new, previous=old))
    gone = subjects[-5:]
    created: list[str] = []
    stop = asyncio.Event()

    async def service_traffic() -> int:
        reads = 0
        while not stop.is_set():
            fresh = subject()
            await loans_during.get_or_create(fresh)
            created.append(fresh)
            for s in subjects[:20]:
                assert await loans_during.get(s) == loans_keys[s]
                assert await during.get(s) == keys[s]
                reads += 1
            await asyncio.sleep(0)
        return reads

    async def erasures() -> None:
        for s in gone:
            assert await during.destroy(s) is True
            await asyncio.sleep(0.01)

    traffic = asyncio.create_task(service_traffic())
    erasing = asyncio.create_task(erasures())
    done = await rotate_master(engines["owner"], MasterKeys(new, previous=old), batch_size=7)
    await erasing
    stop.set()
    assert await traffic > 0
    assert done.rewrapped >= 2 * (len(subjects) - len(gone))

    # the CLI finishes (and checks) what is left: nothing needs the old key any more
    key_file = tmp_path / "new.key"
    key_file.write_text(base64.b64encode(new_raw).decode())
    owner_url = with_database(stack.admin_url, stack.namespace + KEYSTORE_DATABASE)
    ran = stack.cli(
        "keys", "rotate-master", "--new-key-file", str(key_file), "--keystore-url", owner_url
    )
    assert "re-wrapped 0 keys" in ran.stdout and "no key needs the old master key" in ran.stdout

    after = PostgresKeyStore(engines["identity"], new)  # the old master key is forgotten
    for name, secret in secrets.items():  # services' secrets moved, and are the same
        assert await ServiceSecrets(engines[name], new).get(PSEUDONYM) == secret
    loans_after = PostgresKeyStore(engines["loans"], new)
    for s in subjects[:-5]:
        assert await after.get(s) == keys[s]
        assert await loans_after.get(s) == loans_keys[s]
    for s in created:
        assert await loans_after.get(s) is not None
    for s in gone:  # an erasure destroys every owner's key of the subject
        assert await after.get(s) is None and await loans_after.get(s) is None
    for s, box in sealed.items():
        opened = await FieldCipher(after).decrypt_fields(s, "event-1", box)
        assert opened == {"email": f"{s}@example.com"}
    opened_gone = await FieldCipher(after).decrypt_fields(gone[0], "event-1", {"x": {"$enc": 1}})
    assert opened_gone == {"x": REDACTED}
    with pytest.raises(UnknownMasterKey):  # the old master key opens nothing now
        await PostgresKeyStore(engines["identity"], old).get(subjects[0])

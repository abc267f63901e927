"""`expensura keys`: the master key and the key store it protects.

Nothing printed here is secret: key fingerprints (`kek_id`) and counts only.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy import func, select

from expensura_events.cipher import MasterKey, MasterKeys
from expensura_events.db import new_engine
from expensura_events.keystore import Rotation, rotate_master
from expensura_events.tables import service_secrets, subject_keys

app = typer.Typer(help="The master key and subjects' data keys.", no_args_is_help=True)
console = Console(soft_wrap=True)


def _read_key(path: Path) -> MasterKey:
    try:
        return MasterKey.from_base64(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"{path}: not a base64 32-byte key ({exc})") from None


def _old_key(new: MasterKey, old_key_file: Path | None) -> MasterKey:
    """The master key being replaced: given, or whichever configured key is not the new one
    (services run with both during a rotation, in either order)."""
    if old_key_file is not None:
        return _read_key(old_key_file)
    for var in ("EXPENSURA_PREVIOUS_MASTER_KEY", "EXPENSURA_MASTER_KEY"):
        value = os.environ.get(var)
        if value and (key := MasterKey.from_base64(value)).kek_id != new.kek_id:
            return key
    raise typer.BadParameter(
        "no old master key: give --old-key-file, or EXPENSURA_MASTER_KEY / "
        "EXPENSURA_PREVIOUS_MASTER_KEY holding the key being replaced"
    )


@app.command("rotate-master")
def rotate_master_command(
    new_key_file: Annotated[
        Path, typer.Option("--new-key-file", help="file holding the new master key (base64)")
    ],
    keystore_url: Annotated[
        str,
        typer.Option(
            "--keystore-url",
            envvar="EXPENSURA_KEYSTORE_OWNER_URL",
            help="the key store's database as its owner (re-wrapping is the owner's alone)",
        ),
    ],
    old_key_file: Annotated[
        Path | None, typer.Option("--old-key-file", help="file holding the old master key")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 500,
) -> None:
    """Re-wrap every subject's data key, and every service's secrets, under the new master
    key, while services run.

    Run it once every service accepts both keys (docs/operations.md, "Keys"). Safe to stop
    and run again; it exits 0 only when no key is left under another master key."""
    new = _read_key(new_key_file)
    keys = MasterKeys(new, previous=_old_key(new, old_key_file))
    done, left = asyncio.run(_rotate(keystore_url, keys, batch_size))
    console.print(
        f"re-wrapped {done.rewrapped} keys and service secrets under master key {new.kek_id}; "
        f"{done.skipped} destroyed or moved meanwhile, left as they were"
    )
    if left:
        console.print(f"{left} keys are still under another master key: run again")
        raise typer.Exit(1)
    console.print("no key needs the old master key any more")


async def _rotate(url: str, keys: MasterKeys, batch_size: int) -> tuple[Rotation, int]:
    engine = new_engine(url)
    try:
        done = await rotate_master(engine, keys, batch_size=batch_size)
        new = keys.current.kek_id
        async with engine.connect() as conn:
            keys_left = await conn.scalar(
                select(func.count()).where(
                    subject_keys.c.wrapped_key.is_not(None), subject_keys.c.kek_id != new
                )
            )
            secrets_left = await conn.scalar(
                select(func.count()).where(service_secrets.c.kek_id != new)
            )
        return done, int(keys_left or 0) + int(secrets_left or 0)
    finally:
        await engine.dispose()

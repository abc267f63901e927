"""`expensura projections dead-letters`: events a projection parked, and what to do with them.

Everything printed is metadata (ids, types, class names, SQLSTATE codes): nothing is
decrypted, so nothing personal can be shown.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import httpx
import typer
from rich.console import Console
from rich.table import Table

from expensura_events import deadletters
from expensura_events.deadletters import DeadLetter
from expensura_events.projections import DeadLetterNotFound, Projection, retry_dead_letter
from expensura_events.runtime import ServiceRuntime
from expensura_events.topology import SERVICES
from expensura_ops.devstack.paths import var_dir
from expensura_ops.services import service_definitions
from expensura_ops.stackfile import service_settings

T = TypeVar("T")

app = typer.Typer(
    help="Events a projection could not apply: list, show, retry, skip.",
    no_args_is_help=False,
    invoke_without_command=True,
)
console = Console(soft_wrap=True)  # one line per result, whatever the width

ServiceOpt = Annotated[
    str | None, typer.Option("--service", "-s", help="the service keeping the projection")
]
ProjectionOpt = Annotated[str | None, typer.Option("--projection", "-p")]
JsonOpt = Annotated[bool, typer.Option("--json", help="one JSON object per line")]
ByOpt = Annotated[str | None, typer.Option("--by", help="who decides (default: your login)")]


def runtime_for(service: str) -> ServiceRuntime:
    definitions = service_definitions()
    if service not in definitions:
        raise typer.BadParameter(f"unknown service {service!r}; one of {sorted(definitions)}")
    definition = definitions[service]
    return ServiceRuntime(
        definition, service_settings(service, var_dir(), definition.settings_class)
    )


def _services(service: str | None) -> list[str]:
    if service is not None:
        return [service]
    if os.environ.get("EXPENSURA_DATABASE_URL"):
        # The environment configures one service's database; which one it is, it does not say.
        raise typer.BadParameter("name the service with --service (configured by environment)")
    return [s.name.value for s in SERVICES]


async def _each_service(
    service: str | None, work: Callable[[str, ServiceRuntime], Awaitable[T]]
) -> list[T]:
    out = []
    for name in _services(service):
        rt = runtime_for(name)
        try:
            out.append(await work(name, rt))
        finally:
            await rt.close()
    return out


async def _find(
    service: str | None,
    projection: str | None,
    event_id: str | None,
    statuses: tuple[str, ...] | None,
) -> list[tuple[str, DeadLetter]]:
    async def look(name: str, rt: ServiceRuntime) -> list[tuple[str, DeadLetter]]:
        async with rt.engine.connect() as conn:
            found = await deadletters.find(
                conn, projection=projection, event_id=event_id, statuses=statuses
            )
        return [(name, letter) for letter in found]

    return [row for rows in await _each_service(service, look) for row in rows]


def _print(rows: list[tuple[str, DeadLetter]], as_json: bool) -> None:
    if as_json:
        for service, letter in rows:
            typer.echo(json.dumps({"service": service, **letter.as_dict()}, default=str))
        return
    table = Table("service", "projection", "event id", "event type", "seq", "status", "tries")
    table.add_column("error")
    for service, d in rows:
        table.add_row(
            service,
            d.projection,
            d.event_id,
            d.event_type or "?",
            str(d.seq or "?"),
            d.status,
            str(d.attempts),
            d.error,
        )
    console.print(table)
    console.print(f"{len(rows)} dead letters")


@app.callback()
def list_dead_letters(
    ctx: typer.Context,
    service: ServiceOpt = None,
    projection: ProjectionOpt = None,
    status: Annotated[
        str, typer.Option(help="open (parked or retried), all, or one status")
    ] = "open",
    as_json: JsonOpt = False,
) -> None:
    """List dead letters (open ones unless --status says otherwise)."""
    if ctx.invoked_subcommand is not None:
        return
    statuses = {"open": deadletters.OPEN, "all": None}.get(status, (status,))
    if statuses is not None and not set(statuses) <= set(deadletters.STATUSES):
        raise typer.BadParameter(f"--status: open, all or one of {deadletters.STATUSES}")
    _print(asyncio.run(_find(service, projection, None, statuses)), as_json)


@app.command("show")
def show(event_id: str, service: ServiceOpt = None, as_json: JsonOpt = False) -> None:
    """What is known about EVENT_ID's failures (metadata only, nothing decrypted)."""
    rows = asyncio.run(_find(service, None, event_id, None))
    if not rows:
        console.print(f"no dead letter for event {event_id}")
        raise typer.Exit(1)
    if as_json:
        _print(rows, as_json=True)
        return
    for service_name, letter in rows:
        table = Table(show_header=False, title=f"{service_name} / {letter.projection}")
        for key, value in letter.as_dict().items():
            table.add_row(key, "-" if value is None else str(value))
        console.print(table)


@app.command("retry")
def retry(
    event_id: Annotated[str | None, typer.Argument()] = None,
    all_open: Annotated[bool, typer.Option("--all", help="every open dead letter")] = False,
    service: ServiceOpt = None,
    projection: ProjectionOpt = None,
    by: ByOpt = None,
) -> None:
    """Read EVENT_ID again from its source's log and apply it. Resolved if it applies; exit 1
    if any fails again (it stays open, marked `retried`)."""
    if (event_id is None) == (not all_open):
        raise typer.BadParameter("give an EVENT_ID or --all")
    who = by or getpass.getuser()

    async def go(name: str, rt: ServiceRuntime) -> list[bool]:
        async with rt.engine.connect() as conn:
            letters = await deadletters.find(
                conn,
                projection=projection,
                event_id=event_id,
                statuses=deadletters.OPEN if all_open else None,
            )
        results = []
        async with httpx.AsyncClient(timeout=30) as client:
            for letter in letters:
                target = _projection(rt, letter.projection)
                [feed] = [f for f in rt.feeds(target, client) if f.source == letter.source]
                try:
                    result = await retry_dead_letter(
                        rt.engine, rt.mapper, target, feed, letter.event_id, who
                    )
                except DeadLetterNotFound:
                    # A record that never was in its source's log (a forgery on the
                    # broker): there is nothing to apply; `skip` it once understood.
                    console.print(
                        f"[red]{name} {letter.projection} {letter.event_id}: not in "
                        f"{letter.source}'s log, nothing to retry (skip it); still open"
                    )
                    results.append(False)
                    continue
                if result.applied:
                    console.print(
                        f"{name} {letter.projection} {letter.event_id}: applied, resolved"
                    )
                else:
                    console.print(
                        f"[red]{name} {letter.projection} {letter.event_id}: failed again "
                        f"({result.error}); still open"
                    )
                results.append(result.applied)
        return results

    outcomes = [ok for rows in asyncio.run(_each_service(service, go)) for ok in rows]
    if not outcomes:
        console.print("no dead letter to retry")
        raise typer.Exit(1)
    raise typer.Exit(0 if all(outcomes) else 1)


@app.command("skip")
def skip(
    event_id: str,
    reason: Annotated[str, typer.Option(help="why it will never be applied (recorded)")],
    service: ServiceOpt = None,
    projection: ProjectionOpt = None,
    by: ByOpt = None,
) -> None:
    """Give up on EVENT_ID for good: marked skipped with the reason and who decided; the
    projection passes over it from now on (redeliveries and rebuilds included)."""
    who = by or getpass.getuser()

    async def go(name: str, rt: ServiceRuntime) -> list[DeadLetter]:
        async with rt.engine.begin() as conn:
            letters = await deadletters.find(
                conn, projection=projection, event_id=event_id, statuses=deadletters.OPEN
            )
            skipped = [
                await deadletters.skip(conn, letter.projection, event_id, reason, who)
                for letter in letters
            ]
        for letter in skipped:
            assert letter is not None
            console.print(f"{name} {letter.projection} {event_id}: skipped by {who}")
        return [letter for letter in skipped if letter is not None]

    if not [s for rows in asyncio.run(_each_service(service, go)) for s in rows]:
        console.print(f"no open dead letter for event {event_id}")
        raise typer.Exit(1)


def _projection(rt: ServiceRuntime, name: str) -> Projection:
    for runner in rt.runners:
        if runner.projection.name == name:
            return runner.projection
    raise typer.BadParameter(f"{rt.name} keeps no projection {name!r}")

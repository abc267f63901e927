"""`expensura`: run the stack and operate the log."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from pydantic import TypeAdapter, ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from expensura_events.authenticity import EventSigner, PublicKeys
from expensura_events.checkpoints import CHECKPOINT_WITNESSED, WitnessReport
from expensura_events.db_errors import error_summary, is_unavailable
from expensura_events.envelope import Actor
from expensura_events.fields import Identifier, SingleLine
from expensura_events.projections import (
    HttpLogFeed,
    LogFeed,
    Projection,
    RebuildOutcome,
    rebuild,
)
from expensura_events.registry import REGISTRY
from expensura_events.retention import purge_expired
from expensura_events.runtime import ServiceRuntime
from expensura_events.service_identity import ServiceKeyMissing
from expensura_events.settings import ServiceSettings
from expensura_events.store import EventStore, verify_log
from expensura_events.topology import SERVICES
from expensura_events.witnessing import check_witnesses
from expensura_ops.deadletters_cli import app as dead_letters_app
from expensura_ops.deadletters_cli import runtime_for
from expensura_ops.keys_cli import app as keys_app
from expensura_ops.services import (
    all_projections,
    command_groups,
    find_projection,
    service_definitions,
)

app = typer.Typer(
    help="Operate Expensura: run the stack locally, verify and replay the log.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
log_app = typer.Typer(help="The append-only, hash-chained event log.", no_args_is_help=True)
projections_app = typer.Typer(help="Read models projected from the log.", no_args_is_help=True)
subject_app = typer.Typer(help="Data subjects' keys.", no_args_is_help=True)
relay_app = typer.Typer(help="The outbox relay.", no_args_is_help=True)
retention_app = typer.Typer(
    help="Expired working rows (nonces, throttle windows).", no_args_is_help=True
)
app.add_typer(log_app, name="log")
app.add_typer(projections_app, name="projections")
app.add_typer(subject_app, name="subject")
app.add_typer(relay_app, name="relay")
app.add_typer(retention_app, name="retention")
app.add_typer(keys_app, name="keys")
projections_app.add_typer(dead_letters_app, name="dead-letters")
console = Console()
ServiceOpt = Annotated[str, typer.Option("--service", "-s", help="identity, consent, …")]


def _checked(kind: Any) -> Callable[[str], str]:
    """A typer callback holding an operator's input to the same types as the HTTP edge: an
    id with `#hold:` in it would name a retention hold's key, a NUL fails deep inside."""
    adapter: TypeAdapter[str] = TypeAdapter(kind)

    def check(value: str) -> str:
        try:
            return adapter.validate_python(value)
        except ValidationError as exc:
            raise typer.BadParameter(exc.errors()[0]["msg"]) from None

    return check


SubjectArg = Annotated[str, typer.Argument(callback=_checked(Identifier))]
ReasonOpt = Annotated[str, typer.Option(callback=_checked(SingleLine))]


def _runtime(service: str) -> ServiceRuntime:
    return runtime_for(service)


# Command groups the services contribute (identity's `staff create-admin`, the gateway's
# `disclosures prove-withdrawal`).
for _name, _group in command_groups().items():
    app.add_typer(_group(_runtime, _checked), name=_name)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


@app.command()
def run() -> None:
    """Start the whole system locally (PostgreSQL, broker, five services). Ctrl-C stops it."""
    from expensura_ops.stack import run_local_stack

    raise typer.Exit(run_local_stack())


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help="identity, consent, loans, …")],
    host: Annotated[str | None, typer.Option(help="default: EXPENSURA_HOST")] = None,
    port: Annotated[
        int | None, typer.Option(help="the public listener; default: EXPENSURA_PORT")
    ] = None,
    internal_port: Annotated[
        int | None,
        typer.Option(help="the internal listener; default: EXPENSURA_INTERNAL_PORT"),
    ] = None,
    access_log: Annotated[bool, typer.Option(help="log every request")] = True,
) -> None:
    """Run one service: its public API on one port, `/internal/*` on another, one process."""
    from uvicorn.importer import import_from_string

    from expensura_events.settings import ListenerSettings
    from expensura_events.topology import service as service_spec
    from expensura_events.web.proxies import uvicorn_proxy_options
    from expensura_ops.serve import Listening, serve_app

    spec = service_spec(service)  # KeyError names the known services
    configured = ListenerSettings()
    where = Listening(
        host=host or configured.host,
        port=port or configured.port,
        internal_port=internal_port or configured.internal_port,
        proxy_options=uvicorn_proxy_options(configured),
        access_log=access_log,
    )
    if where.port == where.internal_port:
        raise typer.BadParameter("the public and internal listeners need two ports")
    raise typer.Exit(asyncio.run(serve_app(import_from_string(spec.asgi_app), where)))


@log_app.command("verify")
def log_verify(
    service: Annotated[
        list[str] | None, typer.Argument(help="services to verify (default: all five)")
    ] = None,
) -> None:
    """Recompute each service's hash chain and check it against the checkpoints its peers
    witnessed; name the first broken link and every rewritten history, and raise an incident
    for each in the incident service (SEC-4). Exit 1 if any, raised or not."""
    names = _services_to_verify(service)
    broken = asyncio.run(_verify(names))
    raise typer.Exit(1 if broken else 0)


def _services_to_verify(named: list[str] | None) -> list[str]:
    """Every service of the local stack, or the one the environment configures.

    The environment (`EXPENSURA_DATABASE_URL`, …) is one service's configuration: verifying
    another name with it would compare this chain with what the peers witnessed of that
    other one. Which service it is follows from its event-signing key."""
    if not os.environ.get("EXPENSURA_DATABASE_URL"):
        return named or [s.name.value for s in SERVICES]
    configured = _configured_service()
    if configured is None:
        if not named:
            raise typer.BadParameter("name the service (configured by environment)")
        return named
    if named and set(named) != {configured}:
        raise typer.BadParameter(
            f"the environment configures {configured}; run with each service's own "
            "configuration to verify it"
        )
    return [configured]


def _configured_service() -> str | None:
    """The service whose published event key matches the environment's signing key."""
    try:
        settings = ServiceSettings()  # from the environment
        if not settings.event_signing_key:
            return None
        kid = EventSigner.from_base64("?", settings.event_signing_key).key_id
        found = PublicKeys.from_base64(settings.event_public_keys).lookup(kid)
    except (ValidationError, ValueError):
        return None
    return found[0] if found else None


async def _verify(names: list[str]) -> bool:
    broken = False
    table = Table("service", "events", "head", "chain", "witnesses")
    findings: list[str] = []
    details: list[str] = []
    incidents: list[str] = []
    for name in names:
        rt = _runtime(name)
        try:
            async with rt.engine.connect() as conn:
                head, _ = await EventStore.head(conn)
                with _progress() as progress:
                    task = progress.add_task(f"verifying {name}", total=head)
                    result = await verify_log(conn, progress=partial(progress.advance, task))
            async with httpx.AsyncClient(timeout=30) as client:
                report, gathered = await check_witnesses(
                    rt.engine, rt.mapper.verifier, name, _witness_feeds(rt, name, client)
                )
            if not (result.ok and report.ok):
                incidents.append(
                    await _raise_incident(
                        rt, name, None if result.ok else result.first_broken, not report.ok
                    )
                )
        finally:
            await rt.close()
        if result.ok:
            chain = "[green]intact"
        else:
            broken = True
            chain = f"[red]BROKEN at sequence {result.first_broken}: {result.reason}"
        if not report.ok:
            broken = True
            findings += [f"{name}: {f.message}" for f in report.findings]
        table.add_row(
            name,
            str(result.checked),
            result.head_hash[:16],
            chain,
            _witnessed(report),
        )
        details.append(_witness_details(name, report, gathered.unreachable, gathered.refused))
    console.print(table)
    for line in details:
        console.print(escape(line), soft_wrap=True)
    for line in findings:
        console.print(f"[red]{escape(line)}", soft_wrap=True)
    for line in incidents:
        console.print(escape(line), soft_wrap=True)
    return broken


async def _raise_incident(
    rt: ServiceRuntime, name: str, first_broken: int | None, rewritten: bool
) -> str:
    """Raise the incident for a broken or rewritten log through incident's internal route,
    as the service whose log it is (its own token: a service reports only its own log).
    The line to print: the incident's id, or why it could not be raised (the finding stands
    and the exit code says so either way)."""
    failed = f"{name}: the incident could not be raised"
    url = rt.settings.service_urls.get("incident")
    if not url:
        return f"{failed}: no address for the incident service"
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            resp = await client.post(
                f"{url.rstrip('/')}/internal/broken-logs",
                json={"service": name, "first_broken": first_broken, "rewritten": rewritten},
                headers=rt.service_identity.headers_for("incident"),
            )
    except (httpx.HTTPError, ServiceKeyMissing) as exc:
        return f"{failed}: incident unreachable ({type(exc).__name__}); report it by hand"
    if resp.status_code not in (200, 201):
        return f"{failed}: incident answered {resp.status_code}; report it by hand"
    answer = resp.json()
    iid, outcome = answer["incident_id"], answer["outcome"]
    if outcome == "attached":
        return f"{name}: finding attached to the open incident {iid} (log-verify-failed)"
    if outcome == "already-seen":
        return f"{name}: finding already reported: incident {iid} (log-verify-failed)"
    return f"{name}: incident {iid} raised (log-verify-failed)"


def _witness_feeds(rt: ServiceRuntime, name: str, client: httpx.AsyncClient) -> list[LogFeed]:
    """Each peer's witness records through its own `/internal/log` (with this service's
    token): the peers' databases are theirs, and the operator of one service need not hold
    credentials for the others'."""
    return [
        HttpLogFeed(
            client,
            rt.settings.service_urls[peer],
            peer,
            functools.partial(rt.service_identity.headers_for, peer),
            (CHECKPOINT_WITNESSED,),
        )
        for peer in (s.name.value for s in SERVICES)
        if peer != name and peer in rt.settings.service_urls
    ]


def _witnessed(report: WitnessReport) -> str:
    if not report.ok:
        return "[red]REWRITTEN"
    return "[green]agree" if report.confirmed else "[yellow]none"


def _witness_details(
    name: str, report: WitnessReport, unreachable: dict[str, str], refused: dict[str, int]
) -> str:
    """One line per service under the table (never wrapped: it is what an operator greps)."""
    peers = [w for w in report.witnesses if not w.endswith(" itself")]
    if peers:
        text = (
            f"{name}: {report.compared} witnessed checkpoints compared, {report.confirmed} "
            f"agree (up to sequence {report.latest}); witnesses: {', '.join(peers)}"
        )
    else:
        text = f"{name}: no peer witnessed a checkpoint of this chain"
    if unreachable:
        text += f"; not read: {', '.join(f'{p} ({why})' for p, why in sorted(unreachable.items()))}"
    if refused:
        text += f"; records that failed verification, ignored: {sum(refused.values())}"
    return text


@projections_app.command("list")
def projections_list() -> None:
    """The read models each service keeps."""
    table = Table("service", "projection")
    for service, name in all_projections():
        table.add_row(service, name)
    console.print(table)


@projections_app.command("rebuild")
def projections_rebuild(name: str) -> None:
    """Empty the read model NAME and replay its sources' logs from the first event, in one
    transaction (a failure leaves it as it was). Events that cannot apply are parked."""
    try:
        definition, projection = find_projection(name)
    except KeyError:
        console.print(f"[red]no projection {name!r}; see `expensura projections list`")
        raise typer.Exit(2) from None
    outcome = asyncio.run(_rebuild(definition.spec.name.value, projection))
    console.print(f"rebuilt {name}: {outcome.applied} events applied", soft_wrap=True)
    if outcome.parked:
        console.print(
            f"[yellow]{len(outcome.parked)} events could not be applied and are parked: "
            f"`expensura projections dead-letters --service {definition.spec.name.value} "
            f"--projection {name}`",
            soft_wrap=True,
        )


async def _rebuild(service: str, projection: Projection) -> RebuildOutcome:
    rt = _runtime(service)
    projection.bind(rt)  # as the runtime binds its own (incident's contacts seal with its keys)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            feeds = rt.feeds(projection, client)
            with _progress() as progress:
                task = progress.add_task(f"replaying into {projection.name}", total=None)

                def advance(positions: int) -> None:
                    # The sources' heads as their feeds last saw them: the bar's total.
                    heads = [getattr(feed, "head", None) for feed in feeds]
                    if all(isinstance(h, int) for h in heads):
                        progress.update(task, total=sum(h for h in heads if h is not None))
                    progress.advance(task, positions)

                return await rebuild(rt.engine, rt.mapper, projection, feeds, progress=advance)
    finally:
        await rt.close()


@subject_app.command("shred")
def subject_shred(
    subject_id: SubjectArg,
    reason: ReasonOpt = "erasure",
    service: ServiceOpt = "identity",
) -> None:
    """Destroy SUBJECT_ID's data key (crypto-shredding) and record it in SERVICE's log."""
    destroyed = asyncio.run(_shred(subject_id, reason, service))
    console.print(f"subject {subject_id}: key {'destroyed' if destroyed else 'already gone'}")


async def _shred(subject_id: str, reason: str, service: str) -> bool:
    from expensura_events.privacy.shredding import shred_subject

    rt = _runtime(service)
    try:
        return await shred_subject(rt, subject_id, reason, Actor.system("expensura-cli"))
    finally:
        await rt.close()


@subject_app.command("release-hold")
def subject_release_hold(
    subject_id: SubjectArg,
    hold: Annotated[str, typer.Argument(callback=_checked(Identifier))],
    reason: ReasonOpt = "retention period over",
    service: ServiceOpt = "identity",
) -> None:
    """End a legal retention hold: destroy the hold's key; its records read as redacted."""
    from expensura_events.privacy.shredding import release_hold

    async def go() -> bool:
        rt = _runtime(service)
        try:
            return await release_hold(rt, subject_id, hold, reason)
        finally:
            await rt.close()

    done = asyncio.run(go())
    console.print(f"hold {hold} of {subject_id}: key {'destroyed' if done else 'already gone'}")


@relay_app.command("run")
def relay_run(
    service: ServiceOpt,
    crash_after_publish: Annotated[
        bool, typer.Option(hidden=True, help="fault drill: exit after a publish, before saving")
    ] = False,
) -> None:
    """Run SERVICE's outbox relay alone (when the service runs with EXPENSURA_WORKERS=false)."""
    asyncio.run(_relay(service, crash_after_publish))


async def _relay(service: str, crash_after_publish: bool) -> None:
    rt = _runtime(service)
    rt.relay.crash_after_publish = crash_after_publish
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await rt.relay.run(stop)
    finally:
        await rt.close()


@retention_app.command("purge")
def retention_purge(
    service: Annotated[
        list[str] | None, typer.Option("--service", "-s", help="default: every service")
    ] = None,
) -> None:
    """Delete the rows each service declares expired, as its retention worker does every
    `RETENTION_INTERVAL_SECONDS` (docs/operations.md, "Retention of working rows")."""
    declared = service_definitions()
    unknown = set(service or ()) - set(declared)
    if unknown:
        raise typer.BadParameter(f"no service {', '.join(sorted(unknown))}")
    table = Table("service", "table", "deleted")
    for name in service or sorted(declared):
        for table_name, deleted in asyncio.run(_purge(name)).items():
            table.add_row(name, table_name, str(deleted))
    console.print(table)


async def _purge(service: str) -> dict[str, int]:
    rt = _runtime(service)
    try:
        return await purge_expired(rt.engine, rt.definition.retention_rules(rt.settings))
    finally:
        await rt.close()


@app.command()
def routes(
    internal: Annotated[bool, typer.Option(help="only the /internal routes")] = False,
    markdown: Annotated[bool, typer.Option(help="as the table in docs/security.md")] = False,
) -> None:
    """Every route of every service and who may call it, as the code declares it."""
    from expensura_ops.routes import markdown_table, route_access

    if markdown:
        print(markdown_table([r for r in route_access() if r.internal or not internal]), end="")
        return
    table = Table("service", "method", "path", "who may call it")
    for row in route_access():
        if row.internal or not internal:
            table.add_row(row.service, row.method, escape(row.path), row.who)
    console.print(table)


@app.command()
def catalog(out: Annotated[Path | None, typer.Option(help="write files here")] = None) -> None:
    """The event catalog: every event type, its version and personal fields; AsyncAPI 3."""
    import expensura_events.catalog  # noqa: F401

    schemas = REGISTRY.json_schemas()
    table = Table("event type", "v", "source", "personal fields (category, grade)")
    for name, schema in schemas.items():
        personal = [
            f"{f} ({p['x-personal-data']['category']}, {p['x-personal-data']['grade']})"
            for f, p in schema.get("properties", {}).items()
            if "x-personal-data" in p
        ]
        table.add_row(
            name,
            str(schema["x-schema-version"]),
            REGISTRY.source_of(name),
            ", ".join(personal) or "-",
        )
    console.print(table)
    if out is not None:
        (out / "schemas").mkdir(parents=True, exist_ok=True)
        (out / "asyncapi.json").write_text(json.dumps(REGISTRY.asyncapi(), indent=2) + "\n")
        for name, schema in schemas.items():
            (out / "schemas" / f"{name}.json").write_text(json.dumps(schema, indent=2) + "\n")
        console.print(f"wrote {out / 'asyncapi.json'} and {len(schemas)} JSON Schemas")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def compliance(
    ctx: typer.Context,
    collect_only: Annotated[
        bool, typer.Option(help="list tagged tests without running them")
    ] = False,
) -> None:
    """Run the tests and print obligation → enforcing code → tests → result, for the whole
    catalog."""
    from expensura_ops.compliance import compliance as run_compliance

    raise typer.Exit(run_compliance(list(ctx.args), collect_only=collect_only))


# --- `expensura incident drill` (issue 13): the scripted breach, end to end ---------------

incident_app = typer.Typer(help="Incident response.", no_args_is_help=True)
app.add_typer(incident_app, name="incident")


@incident_app.command("drill")
def incident_drill(
    customers: Annotated[int, typer.Option(min=1, max=10_000, help="customers exposed")] = 600,
    fail_every: Annotated[
        int, typer.Option(min=0, help="every n-th customer's e-mail fails (letter instead)")
    ] = 10,
    spanish_every: Annotated[int, typer.Option(min=0, help="every n-th reads Spanish")] = 5,
    withdraw_every: Annotated[
        int, typer.Option(min=0, help="every n-th withdraws the consent before the leak")
    ] = 0,
    concurrency: Annotated[int, typer.Option(min=1, max=128)] = 16,
    revocation_wait: Annotated[
        float, typer.Option(min=0, help="seconds to wait for the credential's revocation")
    ] = 20.0,
    stack_file: Annotated[
        Path | None, typer.Option(help="default: var/stack.json (`make run` writes it)")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="write the drill's report (JSON) here")
    ] = None,
) -> None:
    """Run a scripted breach on the local stack over HTTP: customers sign up and consent to a
    partner, the partner's leaked credential pulls their contacts, a security officer
    reports, grades and contains the incident, computes the blast radius, sends every notice
    in one step and gets the FTC draft. Prints a summary; exit 1 if a step fails."""
    from expensura_ops.drill import Drill, DrillOptions, Targets, default_stack_file

    targets = Targets.from_stack_file(stack_file or default_stack_file())
    options = DrillOptions(
        customers=customers,
        fail_every=fail_every,
        spanish_every=spanish_every,
        withdraw_every=withdraw_every,
        concurrency=concurrency,
        revocation_wait=revocation_wait,
    )
    started = time.monotonic()
    done = asyncio.run(Drill(targets, options, say=lambda s: console.print(escape(s))).run())
    elapsed = time.monotonic() - started
    if report is not None:
        report.write_text(done.to_json())
    console.print(_drill_summary(done, elapsed))
    console.print(_drill_latency(done))
    if not done.ok:
        console.print(
            f"[red]drill failed at {escape(done.failed_step or '')}: {escape(done.error or '')}"
        )
    raise typer.Exit(0 if done.ok else 1)


def _drill_latency(done: Any) -> Table:
    table = Table("request", "n", "mean s", "max s", title="where the time went")
    for route, seen in sorted(done.latency.items(), key=lambda kv: -kv[1]["total"]):
        mean = seen["total"] / seen["n"] if seen["n"] else 0.0
        table.add_row(escape(route), str(int(seen["n"])), f"{mean:.3f}", f"{seen['max']:.3f}")
    return table


def _drill_summary(done: Any, elapsed: float) -> Table:
    table = Table("", "", title="incident drill", show_header=False)
    states = ", ".join(f"{k} {v}" for k, v in sorted(done.notice_states.items()))
    by_channel = "; ".join(
        f"{ch}: " + ", ".join(f"{k} {v}" for k, v in sorted(st.items()))
        for ch, st in sorted(done.notice_channels.items())
    )
    fell_back = ", ".join(f"to {k} {v}" for k, v in sorted(done.fallbacks.items())) or "none"
    regimes = ", ".join(
        f"{g['code']}" + (f" (due {g['due_by']})" if g.get("due_by") else "") for g in done.regimes
    )
    for name, value in (
        ("incident", done.incident_id),
        ("severity", f"{done.severity} ({done.score})" if done.severity else "-"),
        ("credential", f"{done.client_id}: {done.revocation}"),
        ("subjects exposed", f"{done.subjects_exposed} ({done.notifiable_subjects} notifiable)"),
        (
            "withdrawn before",
            f"{done.consents_withdrawn} consents; {done.pulls_refused} pulls of them refused",
        ),
        ("notices", f"{done.notices_planned} planned; {states}"),
        ("by channel", by_channel or "-"),
        ("fall-backs", fell_back),
        (
            "FTC deadline",
            done.ftc_note or f"{done.ftc_due_by} (discovered {done.discovered_at})",
        ),
        ("regimes", regimes or "-"),
        ("retried", ", ".join(f"{k}: {v}" for k, v in sorted(done.retries.items())) or "none"),
        (
            "took",
            f"{elapsed:.1f} s (" + ", ".join(f"{k} {v}" for k, v in done.timings.items()) + ")",
        ),
    ):
        table.add_row(name, escape(str(value)))
    return table


def main() -> None:  # pragma: no cover - console entry
    try:
        sys.exit(app())
    except Exception as exc:
        # One line, no traceback: tracebacks print locals and exception text, and a
        # database's text can quote the row it refused (personal data).
        errors = Console(stderr=True, soft_wrap=True, highlight=False)
        errors.print("[red]error:[/]", escape(describe_failure(exc)))
        sys.exit(1)


def describe_failure(exc: BaseException) -> str:
    """What went wrong, in words safe to print: operator-facing messages of our own and of
    the network; class names and SQLSTATE codes for everything else."""
    if isinstance(exc, FileNotFoundError | KeyError | PermissionError) and not hasattr(exc, "orig"):
        return f"{type(exc).__name__}: {exc}"  # configuration: names files and services
    if type(exc) is OSError and exc.errno is not None:
        return f"OSError: {exc.strerror}"  # a system call's words (a port taken, with it)
    if isinstance(exc, httpx.HTTPError):
        return f"{type(exc).__name__}: {exc}"  # names a service's URL, never a body
    hint = " (a dependency is unavailable; retry later)" if is_unavailable(exc) else ""
    return error_summary(exc) + hint


if __name__ == "__main__":  # `python -m expensura_ops.cli`, as the stacks start services
    main()

"""`python -m bench [--quick] [--write-doc] [--json FILE]`: run every benchmark once, print,
maybe document, maybe write the headline figures as JSON (bench/figures.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import structlog
from rich.console import Console

from bench.decisions import measure_decisions
from bench.diagnostics import measure_diagnostics
from bench.figures import document
from bench.idle import measure_idle
from bench.infra import Infrastructure, infrastructure, machine
from bench.latency import measure_latency
from bench.peer import measure_peer
from bench.profile import DEFAULT, QUICK, Profile
from bench.replay import measure_replay
from bench.report import markdown, print_results
from bench.results import Results
from bench.signins import measure_sign_ins
from bench.throughput import ENCRYPTED, measure_throughput
from bench.workloads import runtime
from expensura_ops.devstack.paths import project_root
from expensura_ops.testing.stack import LocalStack

DOC = Path("docs") / "performance.md"


def _quiet_logs() -> None:
    """The library's warnings still show; its info and debug lines would drown the output."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


async def run(infra: Infrastructure, profile: Profile, say: Callable[[str], None]) -> Results:
    started = time.perf_counter()
    facts = await machine(infra.admin_url)
    stack = LocalStack(
        infra.admin_url, infra.bootstrap_servers, infra.workdir / "stack", templates=None
    )
    say(f"provisioning a namespace ({stack.namespace}) of databases and topics")
    t = time.perf_counter()
    await stack.provision()
    provision_s = time.perf_counter() - t
    try:
        identity, consent = runtime(stack, "identity"), runtime(stack, "consent")
        try:
            # First, on a server with nothing else to do yet: what the later figures leave
            # behind (autovacuum of their tables, checkpoints) is not the idle stack's cost.
            say("[bold]an idle stack[/bold]")
            idle = await measure_idle(
                infra.admin_url,
                infra.bootstrap_servers,
                infra.workdir / "idle",
                broker_pid=infra.broker_pid,
                postgres_pid=infra.postgres_pid,
                settle_s=profile.idle_settle_s,
                window_s=profile.idle_s,
                say=say,
            )
            say("[bold]commit-to-projection latency[/bold]")
            latency = await measure_latency(
                stack,
                identity,
                consent,
                rates=profile.rates,
                warmup_s=profile.latency_warmup_s,
                duration_s=profile.latency_s,
                progress=say,
            )
            say("[bold]rebuild and verify[/bold]")
            replay = await measure_replay(identity, consent, profile.corpus, say)
            say("[bold]append throughput[/bold]")
            throughput = await measure_throughput(
                stack,
                identity,
                batch=profile.batch,
                writer_counts=profile.writer_counts,
                warmup_s=profile.warmup_s,
                window_s=profile.window_s,
                progress=say,
            )
            say("[bold]the peer library[/bold]")
            peer = await measure_peer(
                stack.database_url("identity", admin=True),
                state_bytes=round(throughput.record_bytes[ENCRYPTED]),
                writers=16,
                warmup_s=profile.warmup_s,
                window_s=profile.window_s,
                progress=say,
            )
            diagnostics = await measure_diagnostics(identity, profile.batch)
            say("[bold]consent decision latency[/bold]")
            decisions = await measure_decisions(stack, seconds=profile.window_s * 2, say=say)
            say("[bold]health checks while users sign in[/bold]")
            sign_ins = await measure_sign_ins(stack, seconds=profile.window_s * 2, say=say)
        finally:
            await identity.close()
            await consent.close()
    finally:
        await stack.drop()
    return Results(
        profile=profile,
        machine=facts,
        postgres=infra.postgres,
        broker=infra.broker,
        provision_s=provision_s,
        latency=latency,
        replay=replay,
        throughput=throughput,
        diagnostics=diagnostics,
        decisions=decisions,
        sign_ins=sign_ins,
        total_s=time.perf_counter() - started,
        load_after=os.getloadavg(),
        peer=peer,
        idle=idle,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run, for smoke tests")
    parser.add_argument(
        "--write-doc", action="store_true", help=f"(re)write {DOC} with the figures"
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="FILE",
        help="write the headline figures, their targets and details as JSON",
    )
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else DEFAULT
    console = Console()
    if not console.is_terminal:
        console = Console(width=170)  # a log file or a pipe: no need to wrap the tables
    _quiet_logs()

    def say(message: str) -> None:
        console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}")

    with infrastructure() as infra:
        say(f"PostgreSQL: {infra.postgres}; broker: {infra.broker}")
        results = asyncio.run(run(infra, profile, say))
    print_results(console, results)
    if args.write_doc:
        path = project_root() / DOC
        path.write_text(markdown(results))
        say(f"wrote {path}")
    if args.json is not None:
        args.json.write_text(json.dumps(document(results), indent=2) + "\n")
        say(f"wrote {args.json}")
    return 0

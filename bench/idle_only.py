"""`python -m bench.idle_only [--settle S] [--window S] [--hold S]`: only the idle-stack
measure of `python -m bench` (bench/idle.py), on the same infrastructure, in under a minute.

`--hold S` keeps the stack up S seconds after the measure, printing the pids, so a profiler
(py-spy, strace -c) can be attached to an idle service."""

from __future__ import annotations

import argparse
import asyncio
import time

from bench.cli import _quiet_logs
from bench.idle import _metered
from bench.infra import infrastructure
from expensura_ops.testing.stack import LocalStack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.idle_only", description=__doc__)
    parser.add_argument("--settle", type=float, default=20.0)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--hold", type=float, default=0.0)
    parser.add_argument(
        "--env", action="append", default=[], help="NAME=VALUE provisioned for every service"
    )
    parser.add_argument(
        "--hold-env", action="append", default=[], help="NAME=VALUE for the held stack"
    )
    args = parser.parse_args(argv)
    _quiet_logs()

    def say(message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)

    async def run() -> None:
        with infrastructure() as infra:
            stack = LocalStack(
                infra.admin_url, infra.bootstrap_servers, infra.workdir / "idle", templates=None
            )
            await stack.provision(dict(kv.split("=", 1) for kv in args.env))
            try:
                result = await _metered(
                    stack, infra.broker_pid, infra.postgres_pid, args.settle, args.window, say
                )
                for name, cores in sorted(result.per_service.items()):
                    say(f"{name:16} {cores:.3f}")
                say(f"{'services':16} {result.services_cores:.3f}")
                say(f"{'(broker)':16} {result.broker_cores or 0:.3f}")
                say(f"{'(postgres)':16} {result.postgres_cores or 0:.3f}")
                say(f"{'stack':16} {result.stack_cores:.3f}")
                if args.hold:
                    env = dict(kv.split("=", 1) for kv in args.hold_env)
                    started = await asyncio.to_thread(lambda: stack.start_all(**env))
                    pids = {n: p.proc.pid for n, p in started.items()}
                    say(
                        f"holding {args.hold:.0f} s: {pids} broker={infra.broker_pid} "
                        f"postgres={infra.postgres_pid}"
                    )
                    await asyncio.sleep(args.hold)
                    await asyncio.to_thread(stack.stop_all)
            finally:
                await stack.drop()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`expensura serve SERVICE`: one service, its public and internal listeners in one process.

Two uvicorn servers in one event loop serve the same app instance, each through the filter
of its listener (expensura_events.web.listeners). The app's lifespan (database engines, the
relay, the projections) runs once, around both servers: started before either accepts a
connection, stopped after both have finished their requests. The sockets are bound first,
so a port in use fails the command before anything starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import structlog
import uvicorn
from starlette.types import ASGIApp
from uvicorn.lifespan.on import LifespanOn

from expensura_events.web.listeners import Listener, only_on
from expensura_events.web.proxies import behind_gateways

log = structlog.get_logger("expensura.serve")


@dataclass(frozen=True)
class Listening:
    host: str
    port: int
    internal_port: int
    # uvicorn's proxy options for the public listener (web/proxies.py): believe
    # X-Forwarded-For from the configured gateways only, from no one by default
    proxy_options: dict[str, Any] = field(
        default_factory=lambda: {"proxy_headers": False, "forwarded_allow_ips": ""}
    )
    access_log: bool = True


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to `serve_app`, which stops both servers, and
    sleeps while idle."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.told_to_exit = asyncio.Event()  # set by `exit`: ends the tick's wait at once

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def exit(self, *, force: bool = False) -> None:
        if force:
            self.force_exit = True
        self.should_exit = True
        self.told_to_exit.set()

    async def main_loop(self) -> None:
        # uvicorn wakes every 0.1 s to see whether it should exit and, every tenth time, to
        # refresh its Date header: ten wake-ups a second per listener of an idle service.
        # Here it ticks once a second (the Date header's own resolution) and is woken at
        # once when told to exit.
        ticks = 0
        while not await self.on_tick(ticks):
            ticks = (ticks + 10) % 864_000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.told_to_exit.wait(), 1.0)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, as uvicorn binds one; OSError if the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family=family)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.set_inheritable(True)
    return sock


async def serve_app(
    app: ASGIApp, where: Listening, *, stopping: asyncio.Event | None = None
) -> int:
    """Serve `app` on both listeners until SIGINT/SIGTERM (or `stopping` is set); 0, 1 if a
    listener failed, or 3 if the app's startup failed (uvicorn's code for it)."""
    public = bind(where.host, where.port)
    try:
        internal = bind(where.host, where.internal_port)
    except OSError:
        public.close()
        raise
    sockets = {Listener.PUBLIC: public, Listener.INTERNAL: internal}
    configs = {
        # Only the public listener believes X-Forwarded-For: the gateways set it there;
        # peers call the internal one directly.
        Listener.PUBLIC: uvicorn.Config(
            behind_gateways(only_on(Listener.PUBLIC, app), where.proxy_options),
            lifespan="off",
            proxy_headers=False,  # behind_gateways applies them, marking gateway requests
            access_log=where.access_log,
        ),
        Listener.INTERNAL: uvicorn.Config(
            only_on(Listener.INTERNAL, app),
            lifespan="off",
            proxy_headers=False,
            access_log=where.access_log,
            log_config=None,  # configured once, by the first Config
        ),
    }
    lifespan_config = uvicorn.Config(app, lifespan="on", log_config=None)
    lifespan_config.load()
    lifespan = LifespanOn(lifespan_config)
    await lifespan.startup()
    if lifespan.should_exit:
        for sock in sockets.values():
            sock.close()
        return 3
    # What start-up made (modules, classes, the app, its engines) lives as long as the
    # process: frozen out of the garbage collector, it is no longer scanned by every full
    # collection (about 160,000 objects, 70 ms of CPU per collection in an idle service,
    # which fell due now and then: up to 0.005 of a core in a 20 s window).
    gc.collect()
    gc.freeze()
    servers = [_Server(configs[listener]) for listener in Listener]

    def stop(signum: int) -> None:
        for server in servers:
            # a second Ctrl-C: do not wait for connections
            server.exit(force=server.should_exit and signum == signal.SIGINT)

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    try:
        running = [
            asyncio.create_task(server.serve([sockets[listener]]), name=f"{listener} listener")
            for listener, server in zip(Listener, servers, strict=True)
        ]
        # One server stopping (a signal, or a failure) stops the other: a service half
        # served would pass one port's probes while failing its peers.
        log.info("listening", public=where.port, internal=where.internal_port, host=where.host)
        told = asyncio.create_task((stopping or asyncio.Event()).wait())
        await asyncio.wait([*running, told], return_when=asyncio.FIRST_COMPLETED)
        told.cancel()
        stop(signal.SIGTERM)
        outcomes = await asyncio.gather(*running, return_exceptions=True)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await lifespan.shutdown()
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    for failure in failed:
        log.error("listener_failed", error=repr(failure))
    return 1 if failed else 0

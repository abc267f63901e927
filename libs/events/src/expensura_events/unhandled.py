"""The last line of the HTTP edge: an exception no handler took becomes a response.

Starlette's `ServerErrorMiddleware` answers such an exception with a 500 but then re-raises
it, and uvicorn closes the connection: a client's next request on that kept-alive connection
fails although it did nothing wrong. This middleware sits inside it, answers, and does not
re-raise. `respond` decides the answer (500, or 503 when a dependency is unavailable) and
logs the exception by class name and SQLSTATE only (its text may carry personal data).
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from expensura_events.db_errors import error_fields

log = structlog.get_logger("expensura.http")


Respond = Callable[[BaseException, str | None], Response]  # (exception, path) -> answer


class AnswerUnhandledErrors:
    def __init__(self, app: ASGIApp, respond: Respond) -> None:
        self.app, self.respond = app, respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception as exc:
            if started:
                # Half a response is out: only closing the connection tells the client.
                log.error("unhandled_after_response_started", **error_fields(exc))
                raise
            await self.respond(exc, scope.get("path"))(scope, receive, send)

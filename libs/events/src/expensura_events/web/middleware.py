"""ASGI middleware every service shares."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from expensura_events.web.problems import problem_response


class BodySizeLimit:
    """Refuse request bodies over the limit with 413 before the app reads them.

    The limit is asked for per request: the service's settings (`max_body_bytes`) are read
    when the app starts, after the middleware stack was declared."""

    def __init__(self, app: ASGIApp, max_bytes: Callable[[], int]) -> None:
        self.app, self.limit = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.limit()
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            await problem_response(
                413, "Payload too large", f"Bodies are limited to {max_bytes} bytes."
            )(scope, receive, send)
            return
        # Read the body before the app does: an error raised while the app reads it would be
        # the app's to handle (FastAPI answers 400 "error parsing the body"), not a 413.
        # At most `max_bytes` are held, and a body without a length is counted all the same.
        received: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request":
                break  # the client went away: let the app see it
            seen += len(message.get("body", b""))
            if seen > max_bytes:
                await problem_response(
                    413, "Payload too large", f"Bodies are limited to {max_bytes} bytes."
                )(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replay = iter(received)

        async def replayed() -> Message:
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)

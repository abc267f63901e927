"""The export's fan-out: each service answers for itself, over HTTP, with the user's own
token (identity never reads another service's tables, and each read is recorded where it
happens)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from expensura_events.outbound import http_client


async def subject_data(
    service_urls: Mapping[str, str], names: Sequence[str], authorization: str
) -> dict[str, Any]:
    """Each named service's `/v1/me/data` for the caller; a service that does not answer
    200 is left out."""
    async with http_client(timeout=20) as client:
        replies = await asyncio.gather(
            *(
                client.get(
                    f"{service_urls[name].rstrip('/')}/v1/me/data",
                    headers={"authorization": authorization},
                )
                for name in names
            ),
            return_exceptions=True,
        )
    return {
        name: reply.json()
        for name, reply in zip(names, replies, strict=True)
        if isinstance(reply, httpx.Response) and reply.status_code == 200
    }

"""`log verify` across processes: the log cut into segments, each verified in a worker
process from the stored hash it starts on (`chain.verify_links`), the joins checked by the
caller (`store.verify_log`).

Hashing and parsing the records is CPU work that holds the GIL, so the only way past one
core is more processes. A worker is a fresh interpreter running this module
(`python -m expensura_events.chain_segments`): nothing is forked from a process holding an
event loop and connections, and, unlike a multiprocessing pool (whose 'spawn' and
'forkserver' children import the parent's main module: for the CLI, every command and
service, about 1.5 s of CPU), a worker imports only the driver and the verifier. Protocol,
one line each way: the database URL first on stdin (never on the command line, which `ps`
shows), then `after upto batch` per segment, answered by the segment's result as JSON on
stdout; end of input ends the worker.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict, dataclass

import asyncpg

from expensura_events.chain import GENESIS, verify_links

# The columns a link is verified on, in `chain.Link` order; the id as text, as the record has it.
LINKS_BETWEEN = (
    "SELECT seq, event_id::text, stream_id, stream_version, event_type, subject_id, record, hash"
    " FROM event_log WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3"
)


@dataclass(frozen=True)
class SegmentResult:
    """One segment (after, upto]: the stored hash it started from, and how far it held."""

    after: int
    upto: int
    start_hash: bytes
    checked: int
    last_seq: int
    last_hash: bytes
    first_broken: int | None = None
    reason: str | None = None

    def to_line(self) -> bytes:
        fields = asdict(self)
        for name in ("start_hash", "last_hash"):
            fields[name] = fields[name].hex()
        return json.dumps(fields).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> SegmentResult:
        fields = json.loads(line)
        for name in ("start_hash", "last_hash"):
            fields[name] = bytes.fromhex(fields[name])
        return cls(**fields)


async def links_between(
    conn: asyncpg.Connection, after: int, upto: int, batch: int, start_hash: bytes | None = None
) -> SegmentResult:
    """Verify the links after `after` up to `upto`, every one of them present. `start_hash`:
    the hash the segment starts from (None: the one stored at `after`)."""
    if start_hash is None:
        start_hash = GENESIS
        if after:
            stored = await conn.fetchval("SELECT hash FROM event_log WHERE seq = $1", after)
            if stored is None:
                return SegmentResult(
                    after, upto, GENESIS, 0, after, GENESIS, after, f"sequence gap: no link {after}"
                )
            start_hash = bytes(stored)
    seq, prev, checked = after, start_hash, 0
    while seq < upto:
        page = await conn.fetch(LINKS_BETWEEN, seq, upto, batch)
        if not page:
            break
        done = verify_links(page, seq, prev)
        checked += done.checked
        if done.first_broken is not None:
            return SegmentResult(
                after, upto, start_hash, checked, done.last_seq, done.last_hash,
                done.first_broken, done.reason,
            )  # fmt: skip
        seq, prev = done.last_seq, done.last_hash
    if seq < upto:
        return SegmentResult(
            after, upto, start_hash, checked, seq, prev, seq + 1,
            f"sequence gap: expected {seq + 1}, found none",
        )  # fmt: skip
    return SegmentResult(after, upto, start_hash, checked, seq, prev)


def serve() -> None:
    """A worker: verify each segment read from stdin, answer on stdout (blocking reads:
    nothing else runs in this process)."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    dsn = stdin.readline().decode().strip()
    with asyncio.Runner() as runner:
        conn = runner.run(asyncpg.connect(dsn))
        try:
            while line := stdin.readline().split():
                after, upto, batch = (int(x) for x in line)
                stdout.write(runner.run(links_between(conn, after, upto, batch)).to_line())
                stdout.flush()
        finally:
            runner.run(conn.close())


if __name__ == "__main__":
    serve()

"""The results as rich tables on the terminal and as docs/performance.md."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from bench.diagnostics import PROBE_MESSAGES
from bench.latency import LatencyResult
from bench.replay import FILL_BATCH, FILL_SUBJECTS_PER_BATCH, FILL_WRITERS
from bench.throughput import BASELINE, ENCRYPTED, PLAIN

if TYPE_CHECKING:
    from bench.cli import Results


def _rate(value: float) -> str:
    return f"{value:,.0f}"


def _ms(value: float) -> str:
    return f"{value:,.1f}"


def _x(value: float) -> str:
    return f"{value:.2f}"


# -- tables (shared by the terminal and the document) ------------------------------------------

THROUGHPUT_HEADERS = [
    "events/txn",
    "writers",
    "baseline INSERT events/s",
    "append, 1 personal field events/s",
    "ratio",
    "append, no personal field events/s",
    "ratio",
    "txn p50 ms (baseline / personal / none)",
    "waiting on the append lock (mean sessions, personal / none)",
    "client process CPU, cores (baseline / personal / none)",
    "machine CPU, cores (baseline / personal / none)",
]


def throughput_rows(r: Results) -> list[list[str]]:
    t = r.throughput
    rows = []
    for per_txn in (1, r.profile.batch):
        for writers in r.profile.writer_counts:
            base = t.cell(BASELINE, per_txn, writers)
            enc = t.cell(ENCRYPTED, per_txn, writers)
            plain = t.cell(PLAIN, per_txn, writers)
            rows.append(
                [
                    str(per_txn),
                    str(writers),
                    _rate(base.events_per_s),
                    _rate(enc.events_per_s),
                    _x(t.ratio(ENCRYPTED, per_txn, writers)),
                    _rate(plain.events_per_s),
                    _x(t.ratio(PLAIN, per_txn, writers)),
                    f"{_ms(base.txn_p50_ms)} / {_ms(enc.txn_p50_ms)} / {_ms(plain.txn_p50_ms)}",
                    f"{enc.lock_waiters:.1f} / {plain.lock_waiters:.1f}",
                    f"{base.cpu_share:.2f} / {enc.cpu_share:.2f} / {plain.cpu_share:.2f}",
                    f"{base.machine_cpu:.2f} / {enc.machine_cpu:.2f} / {plain.machine_cpu:.2f}",
                ]
            )
    return rows


LATENCY_HEADERS = [
    "events/s: target / appended / projected",
    "commit → visible p50 ms",
    "p90 ms",
    "p99 ms",
    "max ms",
    "commit → at a consumer p50 / p99 ms",
    "append txn p50 / p99 ms",
    "visible p50 ms, first → last fifth",
    "CPU, cores: process / machine",
    "kept up",
]


def latency_rows(r: Results) -> list[list[str]]:
    return [
        [
            f"{s.target_rate:.0f} / {s.achieved_rate:.0f} / {s.projected_rate:.0f}",
            _ms(s.visible_ms["p50"]),
            _ms(s.visible_ms["p90"]),
            _ms(s.visible_ms["p99"]),
            _ms(s.visible_ms["max"]),
            f"{_ms(s.delivered_ms['p50'])} / {_ms(s.delivered_ms['p99'])}",
            f"{_ms(s.append_ms['p50'])} / {_ms(s.append_ms['p99'])}",
            f"{_ms(s.first_fifth_p50_ms)} → {_ms(s.last_fifth_p50_ms)}",
            f"{s.cpu_share:.2f} / {s.machine_cpu:.2f}",
            "yes" if s.sustained else "NO",
        ]
        for s in r.latency.steps
    ]


REPLAY_HEADERS = ["operation", "events", "seconds", "events/s", "complete"]


def replay_rows(r: Results) -> list[list[str]]:
    rp = r.replay
    return [
        [
            label,
            f"{t.events:,}",
            f"{t.seconds:.2f}",
            _rate(t.events_per_s),
            "yes" if t.ok else "NO",
        ]
        for label, t in (
            (
                "projection rebuild (consent's KnownSubjects from identity's LocalLogFeed)",
                rp.rebuild,
            ),
            ("log verify (store.verify_log; median of 3 runs)", rp.verify),
        )
    ]


DIAGNOSTIC_HEADERS = [
    "append path",
    "events",
    "subjects",
    "statements, service database",
    "statements, key store",
    "transactions, key store",
]


def diagnostic_rows(r: Results) -> list[list[str]]:
    return [
        [
            a.path,
            str(a.events),
            str(a.subjects),
            str(a.log_statements),
            str(a.keystore_statements),
            str(a.keystore_transactions),
        ]
        for a in r.diagnostics.appends
    ]


def fetch_rows(r: Results) -> list[list[str]]:
    return [
        [str(wait), _ms(v["p50"]), _ms(v["max"])]
        for wait, v in r.diagnostics.fetch_delay_ms.items()
    ]


FETCH_HEADERS = ["consumer fetch_max_wait_ms", "produce → fetched p50 ms", "max ms"]


# -- terminal ------------------------------------------------------------------------------------


def _table(title: str, headers: list[str], rows: list[list[str]]) -> Table:
    table = Table(title=title, title_justify="left")
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    return table


DECISION_HEADERS = ["what", "concurrent clients", "requests", "per second", "p50 ms", "p99 ms"]


def decision_rows(r: Results) -> list[list[str]]:
    d = r.decisions
    return [
        [
            "GET /healthz (baseline)",
            str(d.concurrency),
            f"{d.baseline.requests:,}",
            _rate(d.baseline.per_second),
            _ms(d.baseline.p50_ms),
            _ms(d.baseline.p99_ms),
        ],
        [
            "POST /internal/decisions",
            str(d.concurrency),
            f"{d.decisions.requests:,}",
            _rate(d.decisions.per_second),
            _ms(d.decisions.p50_ms),
            _ms(d.decisions.p99_ms),
        ],
        [
            "ratio decisions / baseline",
            "",
            "",
            _x(d.decisions.per_second / d.baseline.per_second),
            _x(d.decisions.p50_ms / d.baseline.p50_ms),
            _x(d.decisions.p99_ms / d.baseline.p99_ms),
        ],
    ]


def print_results(console: Console, r: Results) -> None:
    console.print()
    console.print(
        _table(
            "Append throughput: EventStore.append vs a plain INSERT of the same bytes",
            THROUGHPUT_HEADERS,
            throughput_rows(r),
        )
    )
    console.print(
        _table(
            "Commit-to-projection latency (relay → broker → KnownSubjects runner, one process)",
            LATENCY_HEADERS,
            latency_rows(r),
        )
    )
    console.print(_table("Reading the log back", REPLAY_HEADERS, replay_rows(r)))
    console.print(_table("Consent decisions under load", DECISION_HEADERS, decision_rows(r)))
    console.print(_table("Database statements per append", DIAGNOSTIC_HEADERS, diagnostic_rows(r)))
    console.print(_table("Broker fetch delay", FETCH_HEADERS, fetch_rows(r)))
    d = r.diagnostics.topic_check_ms
    console.print(
        f"relay topic check (a new admin client, once a second): p50 {_ms(d['p50'])} ms, "
        f"max {_ms(d['max'])} ms; consumer group joined after {r.latency.join_s:.1f} s; "
        f"whole run {r.total_s:.0f} s (profile {r.profile.name})"
    )


# -- docs/performance.md -------------------------------------------------------------------------


def _reflow(text: str, width: int = 92) -> str:
    """Re-wrap prose paragraphs (and "- " list items) after the figures were substituted."""
    out = []
    for paragraph in text.split("\n\n"):
        items: list[list[str]] = []
        for line in paragraph.splitlines():
            if line.startswith("- ") or not items:
                items.append([line.strip()])
            else:
                items[-1].append(line.strip())
        out.append(
            "\n".join(
                textwrap.fill(
                    " ".join(item),
                    width,
                    subsequent_indent="  " if item[0].startswith("- ") else "",
                    break_on_hyphens=False,
                    break_long_words=False,
                )
                for item in items
            )
        )
    return "\n\n".join(out)


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _machine(r: Results) -> str:
    m = r.machine
    settings = ", ".join(f"{k}={v}" for k, v in m.postgres_settings.items())
    libraries = ", ".join(f"{k} {v}" for k, v in m.libraries.items())
    load = " / ".join(f"{a:.2f}, {b:.2f}, {c:.2f}" for a, b, c in (m.load_before, r.load_after))
    return _md_table(
        ["", ""],
        [
            ["date", m.date],
            ["CPU", f"{m.cpu_model}, {m.cores} cores"],
            ["RAM", f"{m.ram_gib:.1f} GiB"],
            ["PostgreSQL", m.postgres_version],
            ["PostgreSQL source and settings", f"{r.infra.postgres}; {settings}"],
            ["broker", r.infra.broker],
            ["Python", f"{m.python}; {libraries}"],
            ["load average (1, 5, 15 min) before / after", load],
            [
                "run",
                f"profile `{r.profile.name}`, {r.total_s:.0f} s in all "
                f"(provisioning {r.provision_s:.0f} s)",
            ],
        ],
    )


def _lowest_sustained(r: Results) -> LatencyResult | None:
    kept = [s for s in r.latency.steps if s.sustained]
    return kept[0] if kept else None


def _busy_note(r: Results) -> list[str]:
    m = r.machine
    if m.load_before[0] <= 0.5 * m.cores:
        return []
    return [
        f"**Note:** the machine was busy with other work when this run started (1-minute "
        f"load average {m.load_before[0]:.2f} on {m.cores} cores): expect lower and noisier "
        "figures than on an idle machine, above all for latency. The machine CPU columns "
        "show how busy it was during each measurement.",
        "",
    ]


def _summary(r: Results) -> list[str]:
    t, b = r.throughput, r.profile.batch
    top = max(r.profile.writer_counts)
    lines = [
        f"- Append, one event per transaction, one writer: "
        f"**{_rate(t.cell(ENCRYPTED, 1, 1).events_per_s)} events/s** with one personal field, "
        f"{_rate(t.cell(PLAIN, 1, 1).events_per_s)} without "
        f"({_x(t.ratio(ENCRYPTED, 1, 1))} and {_x(t.ratio(PLAIN, 1, 1))} of a plain INSERT).",
        f"- Append, {b} events per transaction, {top} writers: "
        f"**{_rate(t.cell(ENCRYPTED, b, top).events_per_s)} events/s** with one personal "
        f"field, {_rate(t.cell(PLAIN, b, top).events_per_s)} without "
        f"({_x(t.ratio(ENCRYPTED, b, top))} and {_x(t.ratio(PLAIN, b, top))} of a plain "
        "INSERT).",
    ]
    for s in r.latency.steps:
        verdict = "kept up" if s.sustained else "**did not keep up**: the backlog grew"
        lines.append(
            f"- Commit → projected row visible at {s.target_rate:.0f} events/s: "
            f"p50 **{_ms(s.visible_ms['p50'])} ms**, p99 **{_ms(s.visible_ms['p99'])} ms** "
            f"({verdict})."
        )
    rp = r.replay
    lines.append(
        f"- Projection rebuild: **{_rate(rp.rebuild.events_per_s)} events/s**; "
        f"`log verify`: **{_rate(rp.verify.events_per_s)} events/s** "
        f"(over {rp.corpus:,} events)."
    )
    return lines


def _method(r: Results) -> str:
    p = r.profile
    rates = ", ".join(f"{x:.0f}" for x in p.rates)
    sizes = r.throughput.record_bytes
    return f"""\
Everything runs in one process (`python -m bench`), against a PostgreSQL server and a
Kafka-protocol broker (see the machine table), in a database namespace provisioned for the
run with `LocalStack.provision()` (all five services' databases, migrated, with their
roles) and dropped at the end. The services' code runs in-process: `ServiceRuntime`s of
identity and consent built from the provisioned settings, with consumer-group timeouts of
2000/500 ms. Times are taken with `time.perf_counter()` in this process. The order is:
latency, then rebuild and verify, then throughput (which appends to the same log).

**Append throughput.** For each shape (1 or {p.batch} events per transaction) and each
number of concurrent writers ({", ".join(str(w) for w in p.writer_counts)}), three workloads
run one after the other, each {p.warmup_s:g} s of warm-up (discarded) and then a
{p.window_s:g} s window:
- *append, 1 personal field*: `EventStore.append` of `testing.NoteRecorded` envelopes
  (its `note` is encrypted with the subject's key), each writer on its own subject and
  stream, inside `engine.begin()` on identity's engine;
- *append, no personal field*: the same envelope and payload fields under an
  unregistered type whose payload marks nothing personal, so nothing is encrypted and no key
  is looked up;
- *baseline*: `INSERT` of stored record bytes copied from the log (mean
  {sizes[BASELINE]:.0f} bytes; appended records average {sizes[ENCRYPTED]:.0f} bytes with the
  encrypted field and {sizes[PLAIN]:.0f} without) into `bench_plain_insert(id bigint identity
  primary key, record bytea)` in identity's database, through the same engine and pool
  (SQLAlchemy Core, executemany like the store's own insert), with the same rows per
  transaction and the same writers.

A transaction counts if it began inside the window; a writer whose transaction outlasted
the window runs one more. Each writer's rate is its counted events over the time its
counted transactions took (writers loop without pause, building their envelopes inside
that time), and a cell's rate is the sum over writers. The ratio is append/baseline. A
second connection samples `pg_stat_activity` every 50 ms for sessions waiting on an
advisory lock (the append lock). Client process CPU is this process's CPU time over wall
time, machine CPU the whole machine's busy time from `/proc/stat` (this process, PostgreSQL,
the broker and anything else running), both in cores.

**Commit-to-projection latency.** Identity's runtime appends one `testing.NoteRecorded`
per transaction through `ServiceRuntime.append`, each for a new subject, at a steady rate
(open loop: each append starts at its scheduled time whatever the earlier ones are doing),
in steps of {rates} events/s, {p.latency_s:g} s each, after a warm-up of
{p.latency_warmup_s:g} s at the first rate (which starts once the first event has been
projected, i.e. the consumer group has joined). Identity's `OutboxRelay` (defaults:
batches of 500, polling every 20 ms when idle) and a `ProjectionRunner` applying
consent's real `KnownSubjects` read model in consent's database run as tasks of the same
process. *committed* is when the append's `engine.begin()` block returned, i.e. the
commit was acknowledged to the writer. *visible* is when a `LISTEN` connection received the
notification an `AFTER INSERT` trigger (added to `known_subjects` for the run, removed
afterwards) queues: PostgreSQL delivers notifications only once the inserting transaction
has committed, so this is the moment the projected row became visible to other sessions,
observed through one local notification. Latency = visible - committed, per event; each
step is drained before the next. *At a consumer* is when a plain consumer (no group) with
`fetch_max_wait_ms=5` fetched the event: the relay-and-broker share. A step *kept up* if
every event was projected, rows became visible at ≥ 95 % of the target rate, and the p50
latency of the step's last fifth of events is below twice that of its first fifth plus
50 ms; otherwise its percentiles describe a growing backlog and depend on the step's length.

**Rebuild.** Identity's log is topped up to {r.replay.corpus:,} events (the latency
events, one subject each, then batches of {FILL_BATCH} notes over
{FILL_SUBJECTS_PER_BATCH} subjects by {FILL_WRITERS} writers: {r.replay.subjects:,} subjects
in all, every event with one encrypted field), then
`expensura_events.projections.rebuild` of `KnownSubjects` runs over a `LocalLogFeed` of
identity's database, timed from the call to its return (it empties the read model and its
inbox, then applies every event through `apply_once`, 1000 per transaction).

**Log verify.** `expensura_events.store.verify_log` (what `expensura log verify` runs)
over the same {r.replay.corpus:,} events; the median of three runs.

**Statements per append** counts, with SQLAlchemy engine events, what one append sends to
identity's database and to the key store once the subject's key exists.
**Broker fetch delay** produces {PROBE_MESSAGES} messages at random moments (20 to 150 ms
apart) to an idle one-partition topic and times until a consumer with the given `fetch_max_wait_ms`
has each one."""


def _interpretation(r: Results) -> str:
    t, b = r.throughput, r.profile.batch
    top = max(r.profile.writer_counts)

    def scale(workload: str, per_txn: int) -> float:
        return (
            t.cell(workload, per_txn, top).events_per_s / t.cell(workload, per_txn, 1).events_per_s
        )

    base_scale, plain_scale, enc_scale = (scale(w, 1) for w in (BASELINE, PLAIN, ENCRYPTED))
    busy = t.cell(BASELINE, 1, top).machine_cpu
    saturated = (
        f" (With {top} writers the machine used {busy:.2f} of its {r.machine.cores} cores for "
        "this process, PostgreSQL and anything else running, so the baseline's scaling is a "
        "lower bound of what the server could do.)"
        if busy >= 0.8 * r.machine.cores
        else ""
    )
    waiting = t.cell(PLAIN, 1, top).lock_waiters
    less = "less than" if plain_scale < base_scale else "about as much as"
    batching_plain = t.cell(PLAIN, b, 1).events_per_s / t.cell(PLAIN, 1, 1).events_per_s
    batching_enc = t.cell(ENCRYPTED, b, 1).events_per_s / t.cell(ENCRYPTED, 1, 1).events_per_s
    crypto_cost = t.cell(PLAIN, b, 1).events_per_s / t.cell(ENCRYPTED, b, 1).events_per_s
    diag = {(a.path, a.events, a.subjects): a for a in r.diagnostics.appends}
    enc = "EventStore.append, 1 personal field"
    one_event = diag[(enc, 1, 1)]
    one_subject = diag[(enc, b, 1)]
    mixed = next(a for a in r.diagnostics.appends if a.path == enc and a.subjects > 1)
    rt_batch = diag[("ServiceRuntime.append, 1 personal field", b, 1)]
    per_event_keys = one_subject.keystore_transactions >= b
    batching_reason = (
        "because the key look-ups of these one-subject batches stay one per event"
        if per_event_keys
        else "because of the key look-ups"
    )
    single_subject_note = (
        " So a batch for a single subject, the usual shape (one stream's events), still pays "
        "a key-store transaction per event: in this version `EventStore.append` fetches the "
        "keys in one go only when the batch names more than one subject (`len(owners) > 1`)."
        if per_event_keys and mixed.keystore_transactions < b
        else ""
    )
    fetch = r.diagnostics.fetch_delay_ms
    slow_wait, fast_wait = max(fetch), min(fetch)
    good = _lowest_sustained(r)
    failed = [s for s in r.latency.steps if not s.sustained]
    parts = [
        f"""\
**Concurrency.** Appends in one database serialise on one transaction-scoped advisory
lock: that is what keeps the sequence gap-free, the hash chain single-headed and commit
order equal to sequence order, which the relay relies on. The lock is taken after
encryption but held to the commit: three statements (head of the log, stream version,
insert) and the commit with its WAL flush, i.e. four client-server round trips, during
which no other append in that database can proceed. So going from 1 to {top} writers
multiplied a plain INSERT's rate by {base_scale:.1f} but an append's by only
{plain_scale:.1f} (no personal field) and {enc_scale:.1f} (one personal field): concurrency
helps appends {less} plain INSERTs. With {top} writers appending one event per transaction,
on average {waiting:.1f} sessions were waiting for the append lock.{saturated}""",
        f"""\
**Batching** amortises the lock and the round trips over the batch: one {b}-event
transaction takes the lock once and sends the same four statements to the service's
database as a one-event transaction. Without personal fields it raised one writer's rate
{batching_plain:.0f}-fold; with one personal field only {batching_enc:.1f}-fold,
{batching_reason} (next paragraph).""",
        f"""\
**Encryption{" is the dominant cost of an append" if crypto_cost >= 2 else ""}**, and the
cost is the key look-up, not the cryptography. `FieldCipher.encrypt_fields` takes the
subject's key from the keys `EventStore.append` fetched for the whole batch with
`get_or_create_many` (one key-store transaction), or else calls
`PostgresKeyStore.get_or_create(subject)`, which opens a key-store transaction of its own
(it generates and wraps a fresh key, `INSERT … ON CONFLICT DO NOTHING`, `SELECT`s the
stored one and unwraps it), with no cache. Counted: a one-event append opened
{one_event.keystore_transactions} key-store transaction; a {b}-event append over
{mixed.subjects} subjects {mixed.keystore_transactions}; a {b}-event append for one subject
{one_subject.keystore_transactions} ({one_subject.keystore_statements} statements, against
{one_subject.log_statements} to identity's database).{single_subject_note} The look-ups
run in series while the caller's transaction is open (before the append lock). The
throughput workload's batches are one writer's, i.e. one subject's, events: at {b} events
per transaction and one writer, appends without personal fields were {crypto_cost:.0f}
times faster than with one. Through `ServiceRuntime.append`, the restriction check adds one
`SELECT` per event ({rt_batch.log_statements} statements to the service's database for {b}
events of one subject).""",
    ]
    latency = []
    if good is not None:
        rest = good.visible_ms["p50"] - good.delivered_ms["p50"]
        share = "most" if fetch[slow_wait]["p50"] > rest / 2 else "part"
        latency.append(
            f"At {good.target_rate:.0f} events/s the pipeline kept up: the projected row was "
            f"visible p50 {_ms(good.visible_ms['p50'])} ms and p99 "
            f"{_ms(good.visible_ms['p99'])} ms after the commit. A consumer had the event "
            f"after p50 {_ms(good.delivered_ms['p50'])} ms (the relay polls every 20 ms when "
            f"idle and waits for acks=all); {share} of the remaining ~{rest:.0f} ms is the "
            f"runner's consumer waiting for its fetch to return: its consumer keeps "
            f"aiokafka's default `fetch_max_wait_ms` ({slow_wait} ms), and Tansu does not "
            "answer a waiting fetch as soon as data arrives; how late it answers grows with "
            f"that setting (the probe: p50 {_ms(fetch[slow_wait]['p50'])} ms at {slow_wait} ms "
            f"against {_ms(fetch[fast_wait]['p50'])} ms at {fast_wait} ms). Apache Kafka "
            "answers a fetch as soon as data arrives, so this share is an artefact of the "
            "local broker."
        )
    higher = [s for s in r.latency.steps if s.sustained and s is not good]
    if higher:
        at = "; ".join(
            f"p50 {_ms(s.visible_ms['p50'])} ms, p99 {_ms(s.visible_ms['p99'])} ms at "
            f"{s.target_rate:.0f} events/s (process CPU {s.cpu_share:.2f} cores)"
            for s in higher
        )
        latency.append(
            f"At higher rates that still kept up: {at}; the writers, the relay and the runner "
            "share one event loop."
        )
    for s in failed:
        latency.append(
            f"At {s.target_rate:.0f} events/s the process did not keep up: rows became "
            f"visible at {s.projected_rate:.0f}/s and the p50 latency grew from "
            f"{_ms(s.first_fifth_p50_ms)} ms (first fifth of the step) to "
            f"{_ms(s.last_fifth_p50_ms)} ms (last fifth), so that step's percentiles measure "
            f"a backlog and grow with the step's length. The process used "
            f"{s.cpu_share:.2f} of a core (the machine {s.machine_cpu:.2f} of its "
            f"{r.machine.cores}): the writers (a key-store transaction for each new subject, the "
            "restriction check, the locked append), the relay and the runner share one "
            "event loop, and the runner applies events one at a time in series, three "
            "statements on consent's database plus a key look-up for each subject not seen "
            "earlier in the same batch. In the deployed system the relay runs in identity's "
            "process and the runner in consent's, so this is a bound for one process, not "
            "for the system."
        )
    parts.append("**Latency.** " + " ".join(latency))
    rp = r.replay
    parts.append(
        f"""\
**Reading back.** A rebuild applies {_rate(rp.rebuild.events_per_s)} events/s: it is the
runner's apply path (inbox insert, erased-subject check, read-model upsert: three
statements per event, one event at a time) with key look-ups cached per batch of 1000.
`log verify` only reads the log in chunks of 2000, hashes each record and checks its
columns against it, at
{_rate(rp.verify.events_per_s)} events/s: a million-event log verifies in about
{1_000_000 / rp.verify.events_per_s:.0f} s."""
    )
    return "\n\n".join(parts)


def markdown(r: Results) -> str:
    sections = [
        "# Performance",
        "",
        _reflow(
            "Measured by `make bench` (`.venv/bin/python -m bench --write-doc` rewrites this "
            "file; `--quick` is a short smoke run). Figures from one run on one machine, "
            "against real PostgreSQL and a real Kafka-protocol broker; they show orders of "
            "magnitude and where time goes, not guarantees. Other work on the machine during "
            "the run shows in the load average below."
        ),
        "",
        "## Summary",
        "",
        *(_reflow(line) if line else line for line in _busy_note(r)),
        _reflow("\n".join(_summary(r))),
        "",
        "## Machine",
        "",
        _machine(r),
        "",
        "## Append throughput",
        "",
        _md_table(THROUGHPUT_HEADERS, throughput_rows(r)),
        "",
        "## Commit-to-projection latency",
        "",
        _md_table(LATENCY_HEADERS, latency_rows(r)),
        "",
        _reflow(
            f"The consumer group joined {r.latency.join_s:.1f} s after the runner started. "
            f"Relay: {r.latency.relay_published:,} events published, "
            f"{r.latency.relay_errors} errors; runner: {r.latency.runner_applied:,} applied, "
            f"{r.latency.runner_errors} errors."
        ),
        "",
        "## Rebuild and verify",
        "",
        _md_table(REPLAY_HEADERS, replay_rows(r)),
        "",
        "## Consent decision latency",
        "",
        _md_table(DECISION_HEADERS, decision_rows(r)),
        "",
        _reflow(
            f"The real consent process on this machine, {r.decisions.subjects} subjects of "
            f"whom half consented to marketing ({r.decisions.allowed_share:.0%} of decisions "
            "allowed). Each decision reads the subject's consent records and legal grounds and "
            "records the decision row; the baseline is the same process answering its health "
            "check, so the ratio is what deciding adds to an HTTP round trip."
        ),
        "",
        "## Where the time goes",
        "",
        _md_table(DIAGNOSTIC_HEADERS, diagnostic_rows(r)),
        "",
        _md_table(FETCH_HEADERS, fetch_rows(r)),
        "",
        _reflow(
            f"The relay checks once a second that its topic exists, with a new admin client "
            f"each time: p50 {_ms(r.diagnostics.topic_check_ms['p50'])} ms, max "
            f"{_ms(r.diagnostics.topic_check_ms['max'])} ms per check"
            + (", negligible." if r.diagnostics.topic_check_ms["p50"] < 5 else ".")
        ),
        "",
        "## How each figure was measured",
        "",
        _reflow(_method(r)),
        "",
        "## Interpretation",
        "",
        _reflow(_interpretation(r)),
        "",
    ]
    return "\n".join(sections)

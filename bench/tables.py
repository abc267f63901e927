"""The figures of a run as table rows and summary lines (shared by the terminal and the doc)."""

from __future__ import annotations

from bench.figures import TARGETS, figures
from bench.replay import VERIFY_RUNS
from bench.results import Results
from bench.throughput import BASELINE, ENCRYPTED, PLAIN


def rate(value: float) -> str:
    return f"{value:,.0f}"


def ms(value: float) -> str:
    return f"{value:,.1f}"


def x(value: float) -> str:
    return f"{value:.2f}"


THROUGHPUT_HEADERS = [
    "events/txn",
    "writers",
    "baseline INSERT events/s",
    "append, 1 personal field events/s",
    "ratio",
    "append, no personal field events/s",
    "ratio",
    "txn p50 ms (baseline / personal / none)",
    "waiting on a lock (mean sessions, personal / none)",
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
                    rate(base.events_per_s),
                    rate(enc.events_per_s),
                    x(t.ratio(ENCRYPTED, per_txn, writers)),
                    rate(plain.events_per_s),
                    x(t.ratio(PLAIN, per_txn, writers)),
                    f"{ms(base.txn_p50_ms)} / {ms(enc.txn_p50_ms)} / {ms(plain.txn_p50_ms)}",
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
    "CPU, cores: writer and relay / runner / machine",
    "kept up",
]


def latency_rows(r: Results) -> list[list[str]]:
    return [
        [
            f"{s.target_rate:.0f} / {s.achieved_rate:.0f} / {s.projected_rate:.0f}",
            ms(s.visible_ms["p50"]),
            ms(s.visible_ms["p90"]),
            ms(s.visible_ms["p99"]),
            ms(s.visible_ms["max"]),
            f"{ms(s.delivered_ms['p50'])} / {ms(s.delivered_ms['p99'])}",
            f"{ms(s.append_ms['p50'])} / {ms(s.append_ms['p99'])}",
            f"{ms(s.first_fifth_p50_ms)} → {ms(s.last_fifth_p50_ms)}",
            f"{s.cpu_share:.2f} / {s.runner_cpu:.2f} / {s.machine_cpu:.2f}",
            "yes" if s.sustained else "NO",
        ]
        for s in r.latency.steps
    ]


REPLAY_HEADERS = ["operation", "events", "seconds", "events/s", "complete"]


def replay_rows(r: Results) -> list[list[str]]:
    return [
        [label, f"{t.events:,}", f"{t.seconds:.2f}", rate(t.events_per_s), "yes" if t.ok else "NO"]
        for label, t in (
            ("projection rebuild (consent's known subjects from identity's log)", r.replay.rebuild),
            (f"log verify (median of {VERIFY_RUNS} runs)", r.replay.verify),
            (f"log verify in one process (median of {VERIFY_RUNS} runs)", r.replay.verify_serial),
            ("floor: the links read in one process, nothing checked", r.replay.read_floor),
        )
    ]


DECISION_HEADERS = ["what", "concurrent clients", "requests", "per second", "p50 ms", "p99 ms"]


def decision_rows(r: Results) -> list[list[str]]:
    d = r.decisions
    return [
        *(
            [
                what,
                str(d.concurrency),
                f"{load.requests:,}",
                rate(load.per_second),
                ms(load.p50_ms),
                ms(load.p99_ms),
            ]
            for what, load in (
                ("httpx: GET /healthz (baseline)", d.baseline),
                ("httpx: POST /internal/decisions", d.decisions),
            )
        ),
        *(
            [
                what,
                str(load.connections),
                f"{load.requests:,}",
                rate(load.per_second),
                ms(load.p50_ms),
                ms(load.p99_ms),
            ]
            for what, load in (
                ()
                if d.native is None
                else (
                    ("wrk: GET /healthz (floor)", d.native.healthz),
                    ("wrk: POST /internal/decisions", d.native.decisions),
                    (
                        f"wrk: decisions paced at {d.native.target_rate:,.0f}/s",
                        d.native.paced,
                    ),
                )
            )
        ),
        [
            "ratio decisions / baseline",
            "",
            "",
            x(d.decisions.per_second / d.baseline.per_second),
            x(d.decisions.p50_ms / d.baseline.p50_ms),
            x(d.decisions.p99_ms / d.baseline.p99_ms),
        ],
    ]


SIGN_IN_HEADERS = ["GET /healthz", "probes", "p50 ms", "p99 ms", "max ms"]


def sign_in_rows(r: Results) -> list[list[str]]:
    s = r.sign_ins
    rows = [
        [what, f"{p.probes:,}", ms(p.p50_ms), ms(p.p99_ms), ms(p.max_ms)]
        for what, p in (
            ("alone (baseline)", s.idle),
            (
                f"while {s.concurrency} clients sign in ({rate(s.sign_ins_per_second)}/s, "
                f"p50 {ms(s.sign_in_p50_ms)} ms, {s.refused} refused)",
                s.busy,
            ),
        )
    ]
    return [
        *rows,
        [
            "ratio while signing in / alone",
            "",
            x(s.busy.p50_ms / s.idle.p50_ms),
            x(s.busy.p99_ms / s.idle.p99_ms),
            x(s.busy.max_ms / s.idle.max_ms),
        ],
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


FETCH_HEADERS = ["consumer fetch_max_wait_ms", "produce → fetched p50 ms", "max ms"]


def fetch_rows(r: Results) -> list[list[str]]:
    return [
        [str(wait), ms(v["p50"]), ms(v["max"])] for wait, v in r.diagnostics.fetch_delay_ms.items()
    ]


MACHINE_HEADERS = ["", ""]


def machine_rows(r: Results) -> list[list[str]]:
    m = r.machine
    settings = ", ".join(f"{k}={v}" for k, v in m.postgres_settings.items())
    libraries = ", ".join(f"{k} {v}" for k, v in m.libraries.items())
    load = " / ".join(f"{a:.2f}, {b:.2f}, {c:.2f}" for a, b, c in (m.load_before, r.load_after))
    return [
        ["date", m.date],
        ["CPU", f"{m.cpu_model}, {m.cores} cores"],
        ["RAM", f"{m.ram_gib:.1f} GiB"],
        ["PostgreSQL", m.postgres_version],
        ["PostgreSQL source and settings", f"{r.postgres}; {settings}"],
        ["broker", r.broker],
        ["Python", f"{m.python}; {libraries}"],
        ["load average (1, 5, 15 min) before / after", load],
        [
            "run",
            f"profile `{r.profile.name}`, {r.total_s:.0f} s in all "
            f"(provisioning {r.provision_s:.0f} s)",
        ],
    ]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def summary_lines(r: Results) -> list[str]:
    t, b = r.throughput, r.profile.batch
    lines = []
    for per_txn, writers in ((1, 1), (b, max(r.profile.writer_counts))):
        enc, plain = (t.cell(w, per_txn, writers).events_per_s for w in (ENCRYPTED, PLAIN))
        lines.append(
            f"Append, {_plural(per_txn, 'event')} per transaction, "
            f"{_plural(writers, 'writer')}: **{rate(enc)} events/s** with one personal field, "
            f"{rate(plain)} without ({x(t.ratio(ENCRYPTED, per_txn, writers))} and "
            f"{x(t.ratio(PLAIN, per_txn, writers))} of a plain INSERT)."
        )
    for s in r.latency.steps:
        verdict = "kept up" if s.sustained else "**did not keep up**: the backlog grew"
        lines.append(
            f"Commit → projected row visible at {s.target_rate:.0f} events/s: "
            f"p50 **{ms(s.visible_ms['p50'])} ms**, p99 **{ms(s.visible_ms['p99'])} ms** "
            f"({verdict})."
        )
    lines.append(
        f"Projection rebuild: **{rate(r.replay.rebuild.events_per_s)} events/s**; "
        f"`log verify`: **{rate(r.replay.verify.events_per_s)} events/s** "
        f"(over {r.replay.corpus:,} events)."
    )
    si = r.sign_ins
    lines.append(
        f"Identity's `/healthz` while {si.concurrency} clients sign in (argon2id at production "
        f"cost, {rate(si.sign_ins_per_second)} sign-ins/s): p50 **{ms(si.busy.p50_ms)} ms** "
        f"against {ms(si.idle.p50_ms)} ms alone, a ratio of {x(si.busy.p50_ms / si.idle.p50_ms)}."
    )
    return lines


TARGET_HEADERS = ["figure", "this run", "target", "floor (same run)", "met"]


def target_rows(r: Results) -> list[list[str]]:
    measured = figures(r)
    rows = []
    for name, target in TARGETS.items():
        value = measured[name]
        met = target.met(value)
        sign = "≥" if target.better == "higher" else "≤"
        rows.append(
            [
                f"`{name}`",
                "not measured" if value is None else f"{value:,.3g}",
                f"{sign} {target.value:g}",
                target.floor,
                "—" if met is None else ("yes" if met else "**no**"),
            ]
        )
    return rows


IDLE_HEADERS = ["process", "cores"]


def idle_rows(r: Results) -> list[list[str]]:
    if r.idle is None:
        return [["not measured", ""]]
    i = r.idle
    rows = [[name, f"{cores:.3f}"] for name, cores in sorted(i.per_service.items())]
    rows.append(["the five services", f"{i.services_cores:.3f}"])
    for name, cores in (("the broker", i.broker_cores), ("PostgreSQL", i.postgres_cores)):
        rows.append([name, "not started by this run" if cores is None else f"{cores:.3f}"])
    rows.append(["**the whole stack**", f"**{i.stack_cores:.3f}**"])
    return rows

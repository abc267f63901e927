"""Checkpoints others witness: the rules that compare a chain with what its peers saw.

A hash chain proves only that the log agrees with itself: whoever owns the database can
rewrite a record and recompute every later hash, and the chain verifies again. So each
service signs its chain head now and then (`platform.ChainCheckpoint`: sequence, hash,
time) and publishes it on its topic like any record; every other service verifies the
signature and records what it saw in its own log (`platform.CheckpointWitnessed`). A
rewrite of one service's history then disagrees with the witness records in the other
services' logs, which its database owner cannot touch.

This module is pure: it compares a chain (its hashes at the witnessed sequences and its
head) with witnessed checkpoints. Gathering them is `witnessing.py`'s job.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from expensura_events.obligations import enforces

CHAIN_CHECKPOINT = "platform.ChainCheckpoint"
CHECKPOINT_WITNESSED = "platform.CheckpointWitnessed"
# Records that say something about chains, never about the service's own business. A log
# that grew only by these does not need a new checkpoint: otherwise every witness would
# move the witness's head, make it checkpoint, be witnessed in turn, and so on for ever.
CHAIN_EVIDENCE_TYPES = (CHAIN_CHECKPOINT, CHECKPOINT_WITNESSED)

REWRITTEN, TRUNCATED, CONFLICTING = "rewritten", "truncated", "conflicting"


@dataclass(frozen=True)
class Witnessed:
    """`witness` saw a checkpoint saying the chain's hash at `sequence` was `head_hash`."""

    witness: str  # the service whose log holds the record ("<service> itself" for its own)
    sequence: int
    head_hash: str  # hex


@dataclass(frozen=True)
class Finding:
    kind: str  # REWRITTEN, TRUNCATED or CONFLICTING
    sequence: int
    message: str


@dataclass(frozen=True)
class WitnessReport:
    compared: int  # witnessed (sequence, hash) pairs compared
    confirmed: int  # of those, how many the chain agrees with
    witnesses: tuple[str, ...]  # who witnessed anything, sorted
    latest: int  # highest sequence a witness confirmed (0: none)
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not self.findings


def short(digest: str) -> str:
    return digest[:16]


@enforces("SEC-3")
def compare(
    hashes: Mapping[int, str], head_seq: int, witnessed: Iterable[Witnessed]
) -> WitnessReport:
    """Check a chain against witnessed checkpoints.

    `hashes`: the chain's hash (hex) at (at least) every witnessed sequence it still has;
    `head_seq`: its last sequence. A witnessed sequence beyond the head means records were
    removed; a different hash at a witnessed sequence means history was rewritten; two
    witnesses that saw different hashes for one sequence mean the service showed different
    histories to different peers (or a witness lies: the message names both).
    """
    seen = list(witnessed)
    findings: list[Finding] = []
    confirmed, latest = 0, 0
    by_sequence: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for w in seen:
        by_sequence[w.sequence][w.head_hash].append(w.witness)
        now = hashes.get(w.sequence)
        if w.sequence > head_seq:
            findings.append(
                Finding(
                    TRUNCATED,
                    w.sequence,
                    f"truncated history: sequence {w.sequence} witnessed by {w.witness} as "
                    f"{short(w.head_hash)}, the log now ends at {head_seq}",
                )
            )
        elif now != w.head_hash:
            findings.append(
                Finding(
                    REWRITTEN,
                    w.sequence,
                    f"rewritten history: sequence {w.sequence} witnessed by {w.witness} as "
                    f"{short(w.head_hash)}, now {short(now) if now else 'missing'}",
                )
            )
        else:
            confirmed += 1
            latest = max(latest, w.sequence)
    for sequence, versions in by_sequence.items():
        if len(versions) > 1:
            seen_as = " and ".join(
                f"by {', '.join(sorted(set(who)))} as {short(h)}"
                for h, who in sorted(versions.items())
            )
            findings.append(
                Finding(
                    CONFLICTING,
                    sequence,
                    f"conflicting checkpoints: sequence {sequence} witnessed {seen_as}",
                )
            )
    findings.sort(key=lambda f: (f.sequence, f.kind, f.message))
    return WitnessReport(
        compared=len(seen),
        confirmed=confirmed,
        witnesses=tuple(sorted({w.witness for w in seen})),
        latest=latest,
        findings=tuple(findings),
    )

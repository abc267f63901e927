"""The rules that compare a chain with the checkpoints its peers witnessed (SEC-3)."""

from __future__ import annotations

import pytest

from expensura_events.checkpoints import (
    CONFLICTING,
    REWRITTEN,
    TRUNCATED,
    Witnessed,
    compare,
)

pytestmark = pytest.mark.obligation("SEC-3")

H = {seq: f"{seq:02x}" * 32 for seq in range(1, 11)}  # the chain's hash at each sequence
OTHER = "ff" * 32


def test_a_chain_that_agrees_with_every_witness_passes() -> None:
    report = compare(
        H,
        10,
        [Witnessed("consent", 4, H[4]), Witnessed("loans", 4, H[4]), Witnessed("loans", 9, H[9])],
    )
    assert report.ok
    assert (report.compared, report.confirmed, report.latest) == (3, 3, 9)
    assert report.witnesses == ("consent", "loans")


def test_no_witness_is_no_finding_but_nothing_is_confirmed() -> None:
    report = compare(H, 10, [])
    assert report.ok and report.confirmed == 0 and report.witnesses == ()


def test_a_different_hash_at_a_witnessed_sequence_is_a_rewritten_history_naming_the_witness() -> (
    None
):
    report = compare(H, 10, [Witnessed("consent", 4, OTHER), Witnessed("loans", 9, H[9])])
    assert not report.ok
    [finding] = report.findings
    assert finding.kind == REWRITTEN and finding.sequence == 4
    assert finding.message == (
        f"rewritten history: sequence 4 witnessed by consent as {OTHER[:16]}, now {H[4][:16]}"
    )
    assert report.confirmed == 1


def test_a_witnessed_sequence_beyond_the_head_is_a_truncated_history() -> None:
    report = compare({s: h for s, h in H.items() if s <= 6}, 6, [Witnessed("incident", 9, H[9])])
    [finding] = report.findings
    assert finding.kind == TRUNCATED
    assert "sequence 9 witnessed by incident" in finding.message
    assert "ends at 6" in finding.message


def test_a_witnessed_sequence_missing_from_the_log_is_rewritten() -> None:
    # a gap cut into the middle: the sequence is below the head but has no row
    hashes = {s: h for s, h in H.items() if s != 5}
    [finding] = compare(hashes, 10, [Witnessed("loans", 5, H[5])]).findings
    assert finding.kind == REWRITTEN and finding.message.endswith("now missing")


def test_witnesses_that_saw_different_hashes_for_one_sequence_conflict_and_both_are_named() -> None:
    report = compare(H, 10, [Witnessed("consent", 3, H[3]), Witnessed("loans", 3, OTHER)])
    kinds = sorted(f.kind for f in report.findings)
    assert kinds == [CONFLICTING, REWRITTEN]
    [conflict] = [f for f in report.findings if f.kind == CONFLICTING]
    assert "by consent as" in conflict.message and "by loans as" in conflict.message


def test_findings_come_in_sequence_order() -> None:
    report = compare(H, 10, [Witnessed("loans", 8, OTHER), Witnessed("consent", 2, OTHER)])
    assert [f.sequence for f in report.findings] == [2, 8]


def test_only_the_witness_sees_checkpoints_and_nobody_applies_witness_records() -> None:
    from expensura_events.privacy.lifecycle import SubjectLifecycle
    from expensura_events.projections import wants
    from expensura_events.witnessing import chain_witness

    witness = chain_witness("identity")
    assert wants(witness, "platform.ChainCheckpoint")
    assert not wants(witness, "platform.CheckpointWitnessed")  # never witness a witness
    assert not wants(witness, "identity.AccountOpened")
    assert "identity" not in witness.sources
    assert set(witness.sources) == {"consent", "loans", "sharing-gateway", "incident"}
    # read models follow business records only
    assert wants(SubjectLifecycle, "rights.ErasureRequested")
    assert not wants(SubjectLifecycle, "platform.ChainCheckpoint")
    assert not wants(SubjectLifecycle, "platform.CheckpointWitnessed")

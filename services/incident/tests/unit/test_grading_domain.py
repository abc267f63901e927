"""ENISA severity in memory: the data-processing context by category and adjustment, the
ease of identification, the circumstances, and the bands at and around their boundaries."""

from __future__ import annotations

import pytest

from expensura_incident.grading.domain import (
    ADJUSTMENTS,
    Adjustment,
    AdjustmentNotForCategory,
    Availability,
    Circumstances,
    Confidentiality,
    DataCategory,
    DataSet,
    EaseOfIdentification,
    Integrity,
    NoDataSet,
    Severity,
    assess,
    band,
)

pytestmark = pytest.mark.obligation("SEC-4")

EI = EaseOfIdentification


@pytest.mark.parametrize(
    ("category", "dpc"),
    [
        (DataCategory.SIMPLE, 1),
        (DataCategory.BEHAVIOURAL, 2),
        (DataCategory.FINANCIAL, 3),
        (DataCategory.SENSITIVE, 4),
    ],
)
def test_each_category_starts_at_its_enisa_base_score(category: DataCategory, dpc: int) -> None:
    assert DataSet(category).dpc == dpc


@pytest.mark.parametrize(
    ("category", "adjustment", "dpc"),
    [
        (DataCategory.SIMPLE, Adjustment.PROFILE_OR_STATUS, 2),
        (DataCategory.SIMPLE, Adjustment.SENSITIVE_ASSUMPTIONS, 3),
        (DataCategory.SIMPLE, Adjustment.PERSONAL_SAFETY, 4),
        (DataCategory.BEHAVIOURAL, Adjustment.NO_BEHAVIOURAL_INSIGHT, 1),
        (DataCategory.BEHAVIOURAL, Adjustment.DETAILED_PROFILE, 3),
        (DataCategory.BEHAVIOURAL, Adjustment.SENSITIVE_PROFILE, 4),
        (DataCategory.FINANCIAL, Adjustment.NO_FINANCIAL_INSIGHT, 1),
        (DataCategory.FINANCIAL, Adjustment.LITTLE_FINANCIAL_INSIGHT, 2),
        (DataCategory.FINANCIAL, Adjustment.FRAUD_OR_FULL_PROFILE, 4),
        (DataCategory.SENSITIVE, Adjustment.NO_SENSITIVE_INSIGHT, 1),
        (DataCategory.SENSITIVE, Adjustment.GENERIC_ASSUMPTIONS, 2),
        (DataCategory.SENSITIVE, Adjustment.ASSUMPTIONS_ON_SENSITIVE, 3),
    ],
)
def test_enisa_adjustments_move_the_context_score(
    category: DataCategory, adjustment: Adjustment, dpc: int
) -> None:
    assert DataSet(category, adjustment).dpc == dpc


def test_every_adjustment_belongs_to_exactly_one_category() -> None:
    owners = [a for table in ADJUSTMENTS.values() for a in table]
    assert sorted(owners) == sorted(Adjustment)


def test_an_adjustment_of_another_category_is_refused() -> None:
    with pytest.raises(AdjustmentNotForCategory):
        DataSet(DataCategory.SIMPLE, Adjustment.FRAUD_OR_FULL_PROFILE)


def test_the_most_critical_data_set_sets_the_context() -> None:
    graded = assess((DataSet(DataCategory.SIMPLE), DataSet(DataCategory.FINANCIAL)), EI.MAXIMUM)
    assert graded.dpc == 3


def test_a_breach_of_no_data_cannot_be_graded() -> None:
    with pytest.raises(NoDataSet):
        assess((), EI.MAXIMUM)


def test_ease_of_identification_multiplies_the_context() -> None:
    sensitive = DataSet(DataCategory.SENSITIVE)
    assert [assess(sensitive, ei).score for ei in EI] == [1.0, 2.0, 3.0, 4.0]


def test_circumstances_add_each_loss_and_malicious_intent() -> None:
    circumstances = Circumstances(
        Confidentiality.UNKNOWN_RECIPIENTS,
        Integrity.ALTERED_RECOVERABLE,
        Availability.TEMPORARY,
        malicious=True,
    )
    assert circumstances.cb == 0.5 + 0.25 + 0.25 + 0.5
    assert assess(DataSet(DataCategory.SIMPLE), EI.MAXIMUM, circumstances).score == 2.5
    assert Circumstances().cb == 0.0


@pytest.mark.parametrize(
    ("score", "severity"),
    [
        (0.25, Severity.LOW),
        (1.75, Severity.LOW),
        (2.0, Severity.MEDIUM),
        (2.75, Severity.MEDIUM),
        (3.0, Severity.HIGH),
        (3.75, Severity.HIGH),
        (4.0, Severity.VERY_HIGH),
        (6.0, Severity.VERY_HIGH),
    ],
)
def test_bands_at_and_below_each_boundary(score: float, severity: Severity) -> None:
    assert band(score) is severity


@pytest.mark.parametrize(
    ("data", "ei", "circumstances", "score", "severity"),
    [
        # a supermarket's customer list, names and phones, leaked by mistake
        (DataSet(DataCategory.SIMPLE), EI.MAXIMUM, Circumstances(), 1.0, Severity.LOW),
        # the same, taken by someone who meant harm and passed to unknown recipients
        (
            DataSet(DataCategory.SIMPLE),
            EI.MAXIMUM,
            Circumstances(Confidentiality.UNKNOWN_RECIPIENTS, malicious=True),
            2.0,
            Severity.MEDIUM,
        ),
        # loan applications (financial) of identifiable customers, sent to a known partner
        (
            DataSet(DataCategory.FINANCIAL),
            EI.MAXIMUM,
            Circumstances(Confidentiality.KNOWN_RECIPIENTS),
            3.25,
            Severity.HIGH,
        ),
        # the same records, pseudonymised and hard to link back (limited identification): low
        (
            DataSet(DataCategory.FINANCIAL),
            EI.LIMITED,
            Circumstances(Confidentiality.KNOWN_RECIPIENTS),
            1.75,
            Severity.LOW,
        ),
        # full card details enabling fraud, stolen on purpose, to unknown recipients
        (
            DataSet(DataCategory.FINANCIAL, Adjustment.FRAUD_OR_FULL_PROFILE),
            EI.MAXIMUM,
            Circumstances(Confidentiality.UNKNOWN_RECIPIENTS, malicious=True),
            5.0,
            Severity.VERY_HIGH,
        ),
        # behavioural data, significant identification, data gone for good: 1.5 + 0.5 = 2
        (
            DataSet(DataCategory.BEHAVIOURAL),
            EI.SIGNIFICANT,
            Circumstances(availability=Availability.FULL),
            2.0,
            Severity.MEDIUM,
        ),
        # sensitive data barely identifiable, integrity lost for good: 3 + 0.5 + 0.5 = 4
        (
            DataSet(DataCategory.SENSITIVE),
            EI.SIGNIFICANT,
            Circumstances(integrity=Integrity.ALTERED_UNRECOVERABLE, malicious=True),
            4.0,
            Severity.VERY_HIGH,
        ),
    ],
)
def test_assessments_land_in_their_band(
    data: DataSet,
    ei: EaseOfIdentification,
    circumstances: Circumstances,
    score: float,
    severity: Severity,
) -> None:
    graded = assess(data, ei, circumstances)
    assert graded.score == score
    assert graded.severity is severity

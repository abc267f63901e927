"""Breach notices in memory: the five required parts, rendered per customer in their
language (English when theirs has no text), and the public-notice rule."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from expensura_incident.breach import domain
from expensura_incident.breach.domain import BreachContent, BreachParts

EN = BreachParts(
    situation="On 1 December 2026 an attacker read part of our loan database.",
    impacts=("contact details", "loan balances"),
    measures="We closed the access, rotated every key and called in forensic experts.",
    advice="Watch your accounts and be wary of messages asking for your password.",
    remedies="Call 1-800-555-0100. You can get a free credit report and a security freeze.",
)
ES = BreachParts(
    situation="El 1 de diciembre de 2026 un atacante leyó parte de nuestra base de préstamos.",
    impacts=("datos de contacto", "saldos de préstamos"),
    measures="Cerramos el acceso, rotamos todas las claves y llamamos a peritos forenses.",
    advice="Vigile sus cuentas y desconfíe de mensajes que pidan su contraseña.",
    remedies="Llame al 1-800-555-0100. Puede obtener un informe de crédito gratuito y congelarlo.",
)
CONTENT = BreachContent.of({"en": EN, "es": ES})


@pytest.mark.obligation("SEC-5")
def test_the_english_notice_carries_all_five_parts_under_their_headings() -> None:
    rendered = domain.render(CONTENT, "en")
    assert rendered.language == "en"
    assert rendered.title == "Important notice about your personal information"
    for heading in domain.HEADINGS["en"].values():
        assert heading in rendered.body or heading == rendered.title
    for text in (EN.situation, EN.measures, EN.advice, EN.remedies):
        assert text in rendered.body
    assert "- contact details\n- loan balances" in rendered.body


@pytest.mark.obligation("SEC-5")
@pytest.mark.obligation("USE-10")
def test_a_spanish_speaking_customer_reads_the_notice_in_spanish() -> None:
    rendered = domain.render(CONTENT, "es-MX")
    assert rendered.language == "es"
    assert rendered.title == "Aviso importante sobre su información personal"
    for key in ("situation", "impacts", "measures", "advice", "remedies"):
        assert domain.HEADINGS["es"][key] in rendered.body
    for text in (ES.situation, ES.measures, ES.advice, ES.remedies):
        assert text in rendered.body
    assert "- saldos de préstamos" in rendered.body
    assert EN.situation not in rendered.body


@pytest.mark.obligation("USE-10")
@pytest.mark.parametrize("language", [None, "", "fr", "de-DE"])
def test_an_unknown_language_reads_in_english(language: str | None) -> None:
    assert domain.render(CONTENT, language).language == "en"


def test_spanish_without_a_spanish_text_falls_back_to_english() -> None:
    assert (
        domain.render(BreachContent.of({"en": EN}), "es").body == domain.render(CONTENT, "en").body
    )


@pytest.mark.obligation("SEC-5")
@pytest.mark.parametrize(
    ("change", "missing"),
    [
        ({"situation": " "}, "situation"),
        ({"impacts": ()}, "impacts"),
        ({"impacts": ("",)}, "impacts"),
        ({"measures": ""}, "measures"),
        ({"advice": ""}, "advice"),
        ({"remedies": "\n"}, "remedies"),
    ],
)
def test_a_notice_missing_a_part_is_refused(change: dict[str, object], missing: str) -> None:
    import dataclasses

    parts = dataclasses.replace(EN, **change)  # type: ignore[arg-type]
    with pytest.raises(domain.IncompleteBreachNotice, match=missing):
        BreachContent.of({"en": parts})
    with pytest.raises(domain.IncompleteBreachNotice, match=f"es: missing {missing}"):
        BreachContent.of({"en": EN, "es": parts})


def test_the_english_text_is_required_and_languages_need_headings() -> None:
    with pytest.raises(domain.IncompleteBreachNotice, match="English"):
        BreachContent.of({"es": ES})
    with pytest.raises(domain.IncompleteBreachNotice, match="'fr'"):
        BreachContent.of({"en": EN, "fr": EN})


def test_one_notice_per_incident_and_subject() -> None:
    incident = uuid.uuid4()
    assert domain.breach_notice_id(incident, "a") == domain.breach_notice_id(incident, "a")
    assert domain.breach_notice_id(incident, "a") != domain.breach_notice_id(incident, "b")
    assert domain.breach_notice_id(incident, "a") != domain.breach_notice_id(uuid.uuid4(), "a")


@pytest.mark.obligation("SEC-5")
@pytest.mark.obligation("USE-10")
def test_the_public_notice_rule() -> None:
    rule = domain.SUBSTITUTE_NOTICE["US-CA"]
    assert "1798.82(j)(3)" in rule.source
    everyone_reached = domain.public_notice_needed(10, 0)
    assert not everyone_reached.needed and everyone_reached.reasons == ()
    one_unreachable = domain.public_notice_needed(10, 1)
    assert one_unreachable.needed and not one_unreachable.substitute
    assert one_unreachable.reasons == (domain.NO_WORKING_CHANNEL,)
    many = domain.public_notice_needed(rule.subjects + 1, 0, cost_per_notice=Decimal(0))
    assert many.needed and many.substitute and many.reasons == (domain.TOO_MANY_SUBJECTS,)
    costly = domain.public_notice_needed(1000, 0, cost_per_notice=Decimal(300))
    assert costly.substitute and costly.reasons == (domain.COST_TOO_HIGH,)
    with pytest.raises(ValueError):
        domain.public_notice_needed(1, 2)


def test_the_public_notice_is_the_english_text() -> None:
    notice = domain.public_notice(uuid.uuid4(), CONTENT, [domain.NO_WORKING_CHANNEL])
    assert EN.situation in notice.body and notice.reasons == (domain.NO_WORKING_CHANNEL,)

"""The published catalog: JSON Schemas from the registry, versions refused when unknown."""

from __future__ import annotations

import pytest

import expensura_events.catalog
import expensura_events.testing.events  # noqa: F401
from expensura_events.registry import REGISTRY, UnknownEventType


@pytest.mark.obligation("SEC-1")
def test_every_personal_field_in_the_catalog_carries_category_grade_and_encryption() -> None:
    schema = REGISTRY.json_schemas()["identity.AccountOpened"]
    assert schema["properties"]["email"]["x-personal-data"] == {
        "category": "pd:Contact",
        "grade": "sensitive",
        "encrypted": True,
    }
    assert schema["properties"]["phone"]["x-personal-data"]["grade"] == "sensitive"
    assert "x-personal-data" not in schema["properties"]["account_id"]


def test_an_old_version_without_an_upcaster_is_refused_not_guessed() -> None:
    with pytest.raises(UnknownEventType):
        REGISTRY.upcast("testing.NoteRecorded", 0, {})
    with pytest.raises(UnknownEventType):
        REGISTRY.model("nobody.Unknown")

"""The published catalog: JSON Schemas and an AsyncAPI 3 document from the registry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


def test_catalog_command_writes_an_asyncapi_3_document_and_schemas(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("expensura")
    subprocess.run([str(exe), "catalog", "--out", str(tmp_path)], check=True, capture_output=True)
    doc = json.loads((tmp_path / "asyncapi.json").read_text())
    assert doc["asyncapi"] == "3.0.0"
    assert doc["channels"]["identity"]["address"] == "expensura.identity.events"
    msg = doc["components"]["messages"]["identity_AccountOpened"]
    assert msg["payload"]["allOf"][0] == {"$ref": "#/components/schemas/EventEnvelope"}
    assert doc["operations"]["publish-identity"]["action"] == "send"
    assert (tmp_path / "schemas" / "identity.AccountOpened.json").exists()


def test_an_old_version_without_an_upcaster_is_refused_not_guessed() -> None:
    with pytest.raises(UnknownEventType):
        REGISTRY.upcast("testing.NoteRecorded", 0, {})
    with pytest.raises(UnknownEventType):
        REGISTRY.model("nobody.Unknown")

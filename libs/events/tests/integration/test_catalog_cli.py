"""`expensura catalog` writes the published catalog: an AsyncAPI 3 document and JSON Schemas."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


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

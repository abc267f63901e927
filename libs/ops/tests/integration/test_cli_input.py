"""The command line holds an operator's input to the same types as the HTTP edge."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from expensura_ops.cli import app


@pytest.mark.parametrize(
    "args",
    [
        ["subject", "shred", "subject\x00one"],
        ["subject", "shred", "subject-1#hold:loan-records"],  # would name a hold's key
        ["subject", "shred", "subject-1", "--reason", "line\nbreak"],
        ["subject", "release-hold", "subject-1", "loan\x1brecords"],
        ["staff", "create-admin", "--email", "root\x00@example.com", "--password", "x" * 20],
        ["staff", "create-admin", "--email", "not-an-address", "--password", "x" * 20],
    ],
)
def test_bad_input_is_refused_before_anything_is_touched(args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output  # a usage error: no stack was even looked up
    assert "Invalid value" in result.output

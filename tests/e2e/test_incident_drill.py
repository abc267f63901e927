"""`expensura incident drill` against the session's stack, as an operator runs it: 600
customers exposed through a partner's leaked credential, and the response reaches exactly
them. Checked from the outside: the SMTP sink holds one notice with the five required parts
for every customer whose e-mail works, the letter provider printed one for exactly those
whose e-mail was set up to fail, and the FTC draft is due 30 days after discovery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from expensura_ops.sandboxes.smtp_sink import delivered
from expensura_ops.stackfile import write_stack
from expensura_ops.testing import personal
from expensura_ops.testing.stack import LocalStack

pytestmark = [
    pytest.mark.obligation("SEC-4"),
    pytest.mark.obligation("SEC-5"),
    pytest.mark.obligation("USE-10"),
]

CUSTOMERS = 600
# The five parts under their headings (breach/domain.HEADINGS), per language.
HEADINGS = {
    "en": (
        "Important notice about your personal information",
        ("What happened", "What information was involved", "What we are doing",
         "What you can do", "For more information"),
    ),
    "es": (
        "Aviso importante sobre su información personal",
        ("Qué sucedió", "Qué información se vio afectada", "Qué estamos haciendo",
         "Qué puede hacer usted", "Para más información"),
    ),
}  # fmt: skip


def _drill(stack: LocalStack, home: Path, report: Path) -> subprocess.CompletedProcess[str]:
    """The command line, run as an operator runs it beside `make run`: it finds the stack
    through `var/stack.json` under EXPENSURA_HOME (no service's variables set)."""
    write_stack(home / "var", stack.env)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPENSURA_")}
    env["EXPENSURA_HOME"] = str(home)
    exe = Path(sys.executable).with_name("expensura")
    return subprocess.run(
        [str(exe), "incident", "drill", "--customers", str(CUSTOMERS),
         "--revocation-wait", "5", "--report", str(report)],
        env=env, capture_output=True, text=True, timeout=1700,
    )  # fmt: skip


@pytest.mark.timeout(1800)
@pytest.mark.runs_first  # the suite's longest test: beside the others, not alone after them
async def test_the_incident_drill_reaches_exactly_the_exposed_customers(
    stack: LocalStack, tmp_path: Path
) -> None:
    report_path = tmp_path / "drill.json"
    started = time.monotonic()
    run = _drill(stack, tmp_path / "home", report_path)
    took = time.monotonic() - started
    print(f"\nincident drill: {took:.1f} s\n{run.stdout[-4000:]}")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    report = json.loads(report_path.read_text())
    customers = report["customers"]
    for c in customers[:10]:  # a sample for the session's last test (nothing in plaintext)
        personal.record("a drill customer's e-mail", c["email"])
        personal.record("a drill customer's phone", c["phone"])
        personal.record("a drill customer's mailing address", c["letter_line1"])

    # exposed: the 600 and no one else; notified: the 600, across e-mail and letter
    assert len({c["subject_id"] for c in customers}) == CUSTOMERS
    assert report["subjects_exposed"] == report["notifiable_subjects"] == CUSTOMERS
    assert report["notices_planned"] == CUSTOMERS and report["notices_unreachable"] == 0
    failing = [c for c in customers if c["email_fails"]]
    working = [c for c in customers if not c["email_fails"]]
    assert len(failing) == CUSTOMERS // 10
    assert report["notice_states"] == {"completed": CUSTOMERS}
    assert report["notice_channels"] == {
        "email": {"completed": len(working)},
        "letter": {"completed": len(failing)},
    }
    assert report["fallbacks"] == {"letter": len(failing)}

    # the SMTP sink: one notice with the five parts for each working address, none else
    titles = {title for title, _ in HEADINGS.values()}
    notices: dict[str, list[str]] = {}
    subjects: dict[str, str] = {}
    for mail in delivered(stack.maildir):
        if mail.subject in titles:
            notices.setdefault(mail.to.lower(), []).append(mail.body)
            subjects[mail.to.lower()] = mail.subject
    mine = {c["email"].lower() for c in customers}
    assert {to for to in notices if to in mine} == {c["email"].lower() for c in working}
    for c in working:
        [body] = notices[c["email"].lower()]
        language = "es" if c["language"] else "en"
        title, parts = HEADINGS[language]
        assert subjects[c["email"].lower()] == title
        positions = [body.find(heading) for heading in parts]
        assert -1 not in positions and positions == sorted(positions), (c["index"], body)
        for heading in parts:  # each part has its text, not only its heading
            after = body[body.index(heading) + len(heading) :].lstrip("\n")
            assert after and not after.startswith(parts[0]), (heading, body)
    assert any(c["language"] for c in working) and any(not c["language"] for c in working)

    # the letter provider: one letter for exactly the customers whose e-mail was refused
    letters = httpx.get(
        f"{stack.messaging_url}/sandbox/deliveries", params={"channel": "letter"}, timeout=30
    ).json()["deliveries"]
    printed = [d["to"] for d in letters if report["run_id"] in str(d["to"])]
    assert sorted(printed) == sorted(c["letter_line1"] for c in failing)

    # the FTC draft: 600 consumers, due 30 days after discovery; the incident graded
    discovered = datetime.fromisoformat(report["discovered_at"])
    assert datetime.fromisoformat(report["ftc_due_by"]) - discovered == timedelta(days=30)
    assert report["ftc_consumers"] == CUSTOMERS
    assert report["severity"] and report["incident_id"]
    # the gateway revoked the leaked credential, and its signed event came back to incident
    assert report["revocation"] == "revoked"
    assert any(r["report_due"] and r["due_by"] for r in report["regimes"])

"""USE-5: a personalisation profile exists only with consent; withdrawal removes it."""

from __future__ import annotations

import httpx
import pytest

from expensura_consent.policy.service import INITIAL_VERSION
from expensura_ops.testing import tokens
from expensura_ops.testing.stack import LocalStack, eventually

PERSONALISATION = {
    "purpose": "personalisation",
    "categories": ["pd:DeviceBased", "pd:LoanRecord"],
    "policy_version": INITIAL_VERSION,
}


@pytest.mark.obligation("USE-5")
async def test_profiling_only_with_consent_and_withdrawal_removes_the_profile(
    stack: LocalStack,
) -> None:
    idp = stack.processes["identity"].url
    consent = stack.processes["consent"].url
    consent_inside = stack.processes["consent"].internal_url
    subject, auth = tokens.user(stack)
    # no consent: signing in builds nothing
    assert httpx.get(f"{idp}/v1/me/personalisation-profile", headers=auth).status_code == 404
    given = httpx.post(f"{consent}/v1/me/consents", json=PERSONALISATION, headers=auth).json()

    async def profile() -> dict[str, object] | None:
        resp = httpx.get(f"{idp}/v1/me/personalisation-profile", headers=auth)
        return resp.json() if resp.status_code == 200 else None

    await eventually(profile, what="the profile to start with consent")
    withdrawn = httpx.delete(f"{consent}/v1/me/consents/{given['consent_id']}", headers=auth)
    assert withdrawn.status_code == 200
    # the decision is refused at once (asked as the one service consent answers) …
    decision = httpx.post(
        f"{consent_inside}/internal/decisions",
        json={
            "subject_id": subject,
            "purpose": "personalisation",
            "categories": ["pd:DeviceBased"],
            "requester": "sharing-gateway",
        },
        headers=stack.service_headers("consent", caller="sharing-gateway"),
    ).json()
    assert decision["allowed"] is False

    # … and the profile is removed as soon as identity sees the withdrawal
    async def gone() -> bool:
        resp = httpx.get(f"{idp}/v1/me/personalisation-profile", headers=auth)
        return resp.status_code == 404

    await eventually(gone, what="the profile to be removed")

"""Staff roles and what each may do with personal data (SEC-2: least privilege). Pure."""

from __future__ import annotations

import hashlib
import hmac

from expensura_events.vocabulary import Purpose, StaffRole

# Purposes for which a role may read a customer's personal data. Administrators manage staff
# and partners but read no customer data.
ROLE_PURPOSES: dict[StaffRole, frozenset[Purpose]] = {
    StaffRole.CUSTOMER_SERVICE: frozenset({Purpose.CUSTOMER_CARE}),
    StaffRole.RISK_ANALYST: frozenset({Purpose.CREDIT_ASSESSMENT, Purpose.SECURITY}),
    StaffRole.SECURITY_OFFICER: frozenset({Purpose.SECURITY}),
    StaffRole.PRIVACY_OFFICER: frozenset({Purpose.LEGAL_COMPLIANCE, Purpose.CUSTOMER_CARE}),
    StaffRole.ADMINISTRATOR: frozenset(),
}

MAX_FAILED_ATTEMPTS = 5
RECOVERY_CODES = 8


def role_for(roles: frozenset[str], purpose: Purpose) -> StaffRole | None:
    """The role under which these roles may use personal data for the purpose, if any."""
    for role in sorted(StaffRole):
        if role.value in roles and purpose in ROLE_PURPOSES[role]:
            return role
    return None


def pseudonym(secret: bytes, staff_id: str) -> str:
    """What a customer sees instead of a staff id: stable per staff member, not reversible."""
    return "staff-" + hmac.new(secret, staff_id.encode(), hashlib.sha256).hexdigest()[:12]


def hash_code(code: str) -> str:
    return hashlib.sha256(code.strip().replace("-", "").lower().encode()).hexdigest()

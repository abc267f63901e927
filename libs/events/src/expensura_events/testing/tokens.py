"""Access tokens for a service's HTTP tests in process: the service's real routes and their
role and MFA checks, with identity's token check replaced by tokens issued here."""

from __future__ import annotations

import uuid

from expensura_events.auth import InvalidToken, Principal
from expensura_events.vocabulary import ActorKind


class IssuedTokens:
    """Stands in for identity's token check: a token it issued names its principal; any
    other is refused as identity would refuse it."""

    def __init__(self) -> None:
        self.principals: dict[str, Principal] = {}

    def issue(self, principal: Principal) -> dict[str, str]:
        """The headers of a request carrying a token for `principal`."""
        token = uuid.uuid4().hex
        self.principals[token] = principal
        return {"authorization": f"Bearer {token}"}

    def staff(self, *roles: str, mfa: bool = True) -> dict[str, str]:
        """The headers of a staff member with these roles, signed in with or without MFA."""
        return self.issue(
            Principal(
                kind=ActorKind.STAFF,
                id=f"staff-{uuid.uuid4().hex[:6]}",
                roles=frozenset(roles),
                mfa=mfa,
            )
        )

    async def verify(self, token: str) -> Principal:
        try:
            return self.principals[token]
        except KeyError:
            raise InvalidToken("unknown token") from None

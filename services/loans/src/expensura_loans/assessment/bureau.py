"""The consumer credit bureau adapter (JSON and Metro 2-style files over HTTP; the sandbox
`expensura_ops.sandboxes.credit_bureau` speaks the same protocol).

Two errors, by what the caller should do: `BureauUnavailable` (down, slow, unreachable, or
an answer that breaks the protocol: keep the work and try again later) and `BureauRefused`
(the bureau understood and said no: retrying the same request will not help).
"""

from __future__ import annotations

from datetime import date
from types import TracebackType
from typing import Any, Literal, TypeVar

import httpx
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from expensura_events.catalog.loans_assessment import PermissiblePurpose
from expensura_events.catalog.loans_reporting import DisputeOutcomeName


class BureauUnavailable(Exception):
    """No usable answer now (503 or other 5xx, 429, connection error, time-out, or a body
    that breaks the protocol)."""


class BureauRefused(Exception):
    """The bureau refused the request (4xx): a wrong key, an invalid request or file, an
    unknown dispute. `problem` is its problem+json body, when it sent one."""

    def __init__(self, status: int, detail: str, problem: dict[str, Any] | None = None) -> None:
        super().__init__(f"bureau refused ({status}): {detail}")
        self.status, self.detail, self.problem = status, detail, problem or {}


# --- the protocol's bodies, validated at the edge --------------------------------------


class _Body(BaseModel):
    # Fields the bureau adds later are ignored, not refused: the contract only grows.
    model_config = ConfigDict(frozen=True, extra="ignore")


class BureauContact(_Body):
    """Who the bureau is: an adverse action notice must name it (FCRA §615(a))."""

    name: str = Field(min_length=1)
    address: str = Field(min_length=1)
    phone: str = Field(min_length=1)
    website: str | None = None


class CreditScore(_Body):
    value: int = Field(ge=300, le=850)
    model: str = Field(min_length=1)
    key_factors: tuple[str, ...]


class CreditAttributes(_Body):
    months_since_oldest_tradeline: int = Field(ge=0)
    open_tradelines: int = Field(ge=0)
    total_monthly_debt_payments_cents: int = Field(ge=0)
    revolving_utilisation_percent: int = Field(ge=0)
    delinquencies_last_24_months: int = Field(ge=0)
    inquiries_last_12_months: int = Field(ge=0)
    public_records: int = Field(ge=0)


class ConsumerIdentity(_Body):
    full_name: str
    date_of_birth: date
    address: str
    marital_status: str


class CreditReport(_Body):
    report_id: str = Field(min_length=1)
    inquiry_id: str = Field(min_length=1)
    status: Literal["ok", "frozen", "no-file"]
    bureau: BureauContact
    score: CreditScore | None
    credit: CreditAttributes | None
    consumer: ConsumerIdentity | None

    @model_validator(mode="after")
    def _status_matches_contents(self) -> CreditReport:
        if self.status == "frozen" and (self.score or self.credit or self.consumer):
            raise ValueError("a frozen file discloses no score, credit or consumer")
        if self.status == "no-file" and self.score is not None:
            raise ValueError("a no-file report has no score")
        if self.status == "ok" and (self.score is None or self.credit is None):
            raise ValueError("an ok report has a score and credit attributes")
        return self


class RejectedRecord(_Body):
    line: int = Field(ge=1)
    reason: str


class FurnishingReceipt(_Body):
    file_id: str = Field(min_length=1)
    accepted: int = Field(ge=0)
    rejected: tuple[RejectedRecord, ...] = ()


class BureauDispute(_Body):
    dispute_id: str = Field(min_length=1)
    account_number: str
    consumer_reference: str
    reason: str
    received_at: AwareDatetime


class _Disputes(_Body):
    disputes: tuple[BureauDispute, ...]


M = TypeVar("M", bound=_Body)


# --- the client ------------------------------------------------------------------------


class CreditBureauClient:
    """One subscriber's connection to the bureau. Use as `async with`, or call `aclose`."""

    def __init__(
        self,
        base_url: str,
        subscriber_id: str,
        subscriber_key: str,
        *,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.subscriber_id = subscriber_id
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {subscriber_key}"},
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> CreditBureauClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def pull_report(
        self, consumer_reference: str, inquiry_id: str, purpose: PermissiblePurpose
    ) -> dict[str, Any]:
        """The consumer's report, as the bureau sent it (checked against the protocol).

        `inquiry_id` makes a retry safe: the bureau answers it with the first report, so
        one decision never pulls twice (each pull is an inquiry on the consumer's file).
        """
        body = await self._send(
            "POST",
            "/v1/inquiries",
            json={
                "subscriber_id": self.subscriber_id,
                "permissible_purpose": purpose.value,
                "consumer_reference": consumer_reference,
                "inquiry_id": inquiry_id,
            },
        )
        report = _parse(CreditReport, body)
        if report.inquiry_id != inquiry_id:
            raise BureauUnavailable("the bureau answered another inquiry")
        raw: dict[str, Any] = body
        return raw

    async def furnish(self, file_text: str) -> FurnishingReceipt:
        """Send a Metro 2-style file; the same file again (same furnisher and activity date)
        gets the first receipt back, so a retry after a lost answer is safe."""
        body = await self._send(
            "POST",
            "/v1/furnishing",
            content=file_text.encode(),
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )
        return _parse(FurnishingReceipt, body)

    async def disputes(self, after: str | None = None) -> list[BureauDispute]:
        """Disputes received after the dispute id `after` (all of them for None), in order."""
        body = await self._send("GET", "/v1/disputes", params={"after": after or ""})
        return list(_parse(_Disputes, body).disputes)

    async def answer_dispute(self, dispute_id: str, outcome: DisputeOutcomeName, note: str) -> None:
        await self._send(
            "POST",
            f"/v1/disputes/{dispute_id}/response",
            json={"outcome": str(outcome), "note": note},
        )

    async def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:  # connection refused, reset, time-out
            raise BureauUnavailable(f"{method} {path}: {exc!r}") from None
        if resp.status_code >= 500 or resp.status_code == 429:
            raise BureauUnavailable(f"{method} {path}: the bureau answered {resp.status_code}")
        if resp.status_code >= 400:
            problem = _json_or_none(resp)
            detail = str(problem.get("detail") or problem.get("title") or "") if problem else ""
            raise BureauRefused(resp.status_code, detail or resp.reason_phrase, problem)
        if resp.status_code != 200:
            raise BureauUnavailable(f"{method} {path}: unexpected {resp.status_code}")
        body = _json_or_none(resp)
        if body is None:
            raise BureauUnavailable(f"{method} {path}: the answer is not a JSON object")
        return body


def _json_or_none(resp: httpx.Response) -> dict[str, Any] | None:
    try:
        body = resp.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _parse(model: type[M], body: dict[str, Any]) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        # The bureau broke its own protocol: nothing usable now, as if it were down.
        raise BureauUnavailable(f"the bureau's answer breaks the protocol: {exc}") from None

"""Loans' credit bureau client against the sandbox bureau running as a real server process:
reports by profile, retries, the two errors (unavailable / refused), furnishing and disputes."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from expensura_events.catalog.loans_assessment import PermissiblePurpose
from expensura_loans.assessment.bureau import (
    BureauDispute,
    BureauRefused,
    BureauUnavailable,
    CreditBureauClient,
    FurnishingReceipt,
)
from expensura_loans.reporting.domain import DisputeOutcome
from expensura_ops.sandboxes import CREDIT_BUREAU_APP
from expensura_ops.testing.sandbox import sandbox_server
from expensura_ops.testing.stack import free_port

KEY = "loans-bureau-key-" + uuid.uuid4().hex[:8]
SUBSCRIBER = "expensura-loans"
CREDIT = PermissiblePurpose.CREDIT_TRANSACTION


@pytest.fixture(scope="module")
def bureau_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The sandbox on a free port, with a subscriber key of this module's own (from env)."""
    log = tmp_path_factory.mktemp("bureau") / "bureau.log"
    with sandbox_server(CREDIT_BUREAU_APP, log, {"EXPENSURA_BUREAU_SUBSCRIBER_KEY": KEY}) as url:
        yield url


@pytest.fixture
async def client(bureau_url: str) -> AsyncIterator[CreditBureauClient]:
    async with CreditBureauClient(bureau_url, SUBSCRIBER, KEY) as c:
        yield c


def control(bureau_url: str, method: str, path: str, body: dict[str, object]) -> httpx.Response:
    resp = httpx.request(method, f"{bureau_url}{path}", json=body, timeout=5)
    resp.raise_for_status()
    return resp


def consumer(bureau_url: str, profile: str) -> str:
    reference = f"c-{uuid.uuid4().hex[:12]}"
    control(bureau_url, "PUT", f"/sandbox/consumers/{reference}", {"profile": profile})
    return reference


# --- reports ---------------------------------------------------------------------------


async def test_a_good_report_comes_back_as_sent(
    client: CreditBureauClient, bureau_url: str
) -> None:
    report = await client.pull_report(consumer(bureau_url, "good"), "inq-1", CREDIT)
    assert report["status"] == "ok"
    assert report["inquiry_id"] == "inq-1"
    assert report["score"]["value"] == 760
    assert report["credit"]["delinquencies_last_24_months"] == 0
    assert report["bureau"]["name"] == "Sandbox Credit Bureau"


async def test_poor_thin_and_frozen_reports(client: CreditBureauClient, bureau_url: str) -> None:
    poor = await client.pull_report(consumer(bureau_url, "poor"), uuid.uuid4().hex, CREDIT)
    assert poor["score"]["value"] == 560
    assert poor["credit"]["delinquencies_last_24_months"] == 3
    thin = await client.pull_report(consumer(bureau_url, "thin"), uuid.uuid4().hex, CREDIT)
    assert thin["status"] == "no-file" and thin["score"] is None
    assert thin["credit"]["months_since_oldest_tradeline"] < 6
    frozen = await client.pull_report(consumer(bureau_url, "frozen"), uuid.uuid4().hex, CREDIT)
    assert frozen["status"] == "frozen"
    assert (frozen["score"], frozen["credit"], frozen["consumer"]) == (None, None, None)


async def test_a_retried_pull_gets_the_first_report(
    client: CreditBureauClient, bureau_url: str
) -> None:
    reference = consumer(bureau_url, "good")
    first = await client.pull_report(reference, "inq-retry", PermissiblePurpose.ACCOUNT_REVIEW)
    control(bureau_url, "PUT", f"/sandbox/consumers/{reference}", {"profile": "poor"})
    again = await client.pull_report(reference, "inq-retry", PermissiblePurpose.ACCOUNT_REVIEW)
    assert again == first


# --- the two errors --------------------------------------------------------------------


async def test_a_wrong_key_is_refused(bureau_url: str) -> None:
    async with CreditBureauClient(bureau_url, SUBSCRIBER, "not-the-key") as wrong:
        with pytest.raises(BureauRefused) as refused:
            await wrong.pull_report("c-any", uuid.uuid4().hex, CREDIT)
    assert refused.value.status == 401
    assert refused.value.problem["status"] == 401


async def test_an_outage_is_unavailable(client: CreditBureauClient, bureau_url: str) -> None:
    control(bureau_url, "PUT", "/sandbox/outage", {"down": True})
    try:
        with pytest.raises(BureauUnavailable):
            await client.pull_report("c-any", uuid.uuid4().hex, CREDIT)
        with pytest.raises(BureauUnavailable):
            await client.disputes()
    finally:
        control(bureau_url, "PUT", "/sandbox/outage", {"down": False})
    assert (await client.pull_report("c-any", uuid.uuid4().hex, CREDIT))["status"] == "ok"


async def test_nothing_listening_is_unavailable() -> None:
    async with CreditBureauClient(f"http://127.0.0.1:{free_port()}", SUBSCRIBER, KEY) as c:
        with pytest.raises(BureauUnavailable):
            await c.pull_report("c-any", "inq-x", CREDIT)


async def test_a_bureau_that_does_not_answer_in_time_is_unavailable() -> None:
    # A socket that accepts connections (the kernel's backlog) but never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        async with CreditBureauClient(url, SUBSCRIBER, KEY, timeout=0.3) as c:
            with pytest.raises(BureauUnavailable):
                await c.pull_report("c-any", "inq-x", CREDIT)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param({"report_id": "r"}, id="missing-fields"),
        pytest.param([], id="not-an-object"),
        pytest.param("<html>", id="not-json"),
    ],
)
async def test_an_answer_that_breaks_the_protocol_is_unavailable(answer: object) -> None:
    # The sandbox never breaks its protocol, so a stand-in transport does here.
    def reply(_: httpx.Request) -> httpx.Response:
        if isinstance(answer, str):
            return httpx.Response(200, text=answer)
        return httpx.Response(200, json=answer)

    transport = httpx.MockTransport(reply)
    async with CreditBureauClient("http://bureau", SUBSCRIBER, KEY, transport=transport) as c:
        with pytest.raises(BureauUnavailable):
            await c.pull_report("c-any", "inq-x", CREDIT)


async def test_a_frozen_report_that_discloses_a_score_breaks_the_protocol(
    client: CreditBureauClient, bureau_url: str
) -> None:
    good = await client.pull_report(consumer(bureau_url, "good"), uuid.uuid4().hex, CREDIT)
    inconsistent = good | {"status": "frozen"}
    transport = httpx.MockTransport(lambda _: httpx.Response(200, json=inconsistent))
    async with CreditBureauClient("http://bureau", SUBSCRIBER, KEY, transport=transport) as c:
        with pytest.raises(BureauUnavailable):
            await c.pull_report("c-any", good["inquiry_id"], CREDIT)


# --- furnishing ------------------------------------------------------------------------


def record(*fields: tuple[int, str], fill: str = " ") -> str:
    """A 426-character record with each value at its 1-based position."""
    chars = [fill] * 426
    for first, value in fields:
        chars[first - 1 : first - 1 + len(value)] = list(value)
    return "".join(chars)


def metro2(furnisher_id: str, accounts: list[str], count: int | None = None) -> str:
    header = record((1, "0426HEADER"), (13, furnisher_id), (48, "05312025"), (56, "06012025"))
    bases = [record((1, "04261"), (43, account)) for account in accounts]
    total = len(accounts) if count is None else count
    trailer = record((1, "0426TRAILER"), (12, f"{total:09d}"), fill="0")
    return "\n".join([header, *bases, trailer]) + "\n"


async def test_a_file_is_furnished_once(client: CreditBureauClient) -> None:
    furnisher = "L" + uuid.uuid4().hex[:9].upper()
    receipt = await client.furnish(metro2(furnisher, ["LN-1", "LN-2"]))
    assert isinstance(receipt, FurnishingReceipt)
    assert receipt.accepted == 2 and receipt.rejected == ()
    again = await client.furnish(metro2(furnisher, ["LN-1", "LN-2"]))
    assert again.file_id == receipt.file_id


async def test_rejected_records_are_in_the_receipt(client: CreditBureauClient) -> None:
    furnisher = "L" + uuid.uuid4().hex[:9].upper()
    text = metro2(furnisher, ["LN-1", "LN-2"]).replace("04261", "04269", 1)
    receipt = await client.furnish(text)
    assert receipt.accepted == 1
    assert [r.line for r in receipt.rejected] == [2]


async def test_a_file_whose_trailer_disagrees_is_refused(client: CreditBureauClient) -> None:
    furnisher = "L" + uuid.uuid4().hex[:9].upper()
    with pytest.raises(BureauRefused) as refused:
        await client.furnish(metro2(furnisher, ["LN-1", "LN-2"], count=5))
    assert refused.value.status == 422
    assert "5" in refused.value.detail


# --- disputes --------------------------------------------------------------------------


async def test_disputes_are_read_after_a_cursor_and_answered(
    client: CreditBureauClient, bureau_url: str
) -> None:
    raised = [
        control(
            bureau_url,
            "POST",
            "/sandbox/disputes",
            {"account_number": f"LN-{n}", "consumer_reference": "c-d", "reason": "paid in full"},
        ).json()["dispute_id"]
        for n in range(2)
    ]
    everything = await client.disputes()
    assert all(isinstance(d, BureauDispute) for d in everything)
    assert [d.dispute_id for d in everything][-2:] == raised
    assert everything[-1].received_at.tzinfo is not None
    later = await client.disputes(after=raised[0])
    assert [d.dispute_id for d in later] == [raised[1]]
    assert await client.disputes(after=raised[1]) == []

    await client.answer_dispute(raised[0], DisputeOutcome.DELETED, "account paid; removed")
    await client.answer_dispute(raised[0], DisputeOutcome.DELETED, "account paid; removed")
    answered = httpx.get(f"{bureau_url}/sandbox/disputes", timeout=5).json()["disputes"]
    response = next(d["response"] for d in answered if d["dispute_id"] == raised[0])
    assert (response["outcome"], response["note"]) == ("deleted", "account paid; removed")


async def test_answering_an_unknown_dispute_is_refused(client: CreditBureauClient) -> None:
    with pytest.raises(BureauRefused) as refused:
        await client.answer_dispute("DSP-0000000000", DisputeOutcome.MODIFIED, "")
    assert refused.value.status == 404

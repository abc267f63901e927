"""The sandbox credit bureau as a real server process (uvicorn, as the stacks start it),
driven over HTTP: its subscriber key, its deterministic profiles, furnishing files checked
against the header/trailer layout its docstring documents, and the dispute feed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from expensura_ops.sandboxes import CREDIT_BUREAU_APP
from expensura_ops.testing.sandbox import sandbox_server

KEY = "bureau-test-key-" + uuid.uuid4().hex[:8]
PURPOSE = "credit-transaction"


@pytest.fixture(scope="module")
def bureau(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The sandbox on a free port, with a subscriber key of this module's own (from env)."""
    log = tmp_path_factory.mktemp("bureau") / "bureau.log"
    with sandbox_server(CREDIT_BUREAU_APP, log, {"EXPENSURA_BUREAU_SUBSCRIBER_KEY": KEY}) as url:
        yield url


@pytest.fixture(scope="module")
def http(bureau: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=bureau, headers={"Authorization": f"Bearer {KEY}"}, timeout=5
    ) as client:
        yield client


def inquiry(reference: str, inquiry_id: str | None = None, **over: str) -> dict[str, str]:
    return {
        "subscriber_id": "expensura-loans",
        "permissible_purpose": PURPOSE,
        "consumer_reference": reference,
        "inquiry_id": inquiry_id or uuid.uuid4().hex,
    } | over


def new_consumer(http: httpx.Client, profile: str | None = None) -> str:
    reference = f"c-{uuid.uuid4().hex[:12]}"
    if profile is not None:
        resp = http.put(f"/sandbox/consumers/{reference}", json={"profile": profile})
        assert resp.status_code == 200
    return reference


def assert_problem(resp: httpx.Response, status: int) -> dict[str, object]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = resp.json()
    assert body["status"] == status and body["title"]
    return body


# --- Metro 2-style records, built from the layout table (not from the sandbox's code) ----


def put(record: list[str], first: int, value: str) -> None:
    """Write `value` at 1-based position `first`."""
    record[first - 1 : first - 1 + len(value)] = list(value)


def header(furnisher_id: str, activity: str = "06302025", created: str = "07012025") -> str:
    record = [" "] * 426
    put(record, 1, "0426HEADER")
    put(record, 13, furnisher_id.ljust(10))
    put(record, 48, activity)
    put(record, 56, created)
    put(record, 80, "EXPENSURA LENDING".ljust(40))
    return "".join(record)


def base(account: str) -> str:
    record = [" "] * 426
    put(record, 1, "04261")
    put(record, 43, account.ljust(30))
    return "".join(record)


def trailer(total_base_records: int) -> str:
    record = ["0"] * 426
    put(record, 1, "0426TRAILER")
    put(record, 12, f"{total_base_records:09d}")
    return "".join(record)


def metro2(furnisher_id: str, bases: list[str], *, count: int | None = None, **hdr: str) -> str:
    total = len(bases) if count is None else count
    return "\n".join([header(furnisher_id, **hdr), *bases, trailer(total)]) + "\n"


def furnish(http: httpx.Client, text: str) -> httpx.Response:
    return http.post("/v1/furnishing", content=text, headers={"Content-Type": "text/plain"})


def furnisher() -> str:
    return "F" + uuid.uuid4().hex[:9].upper()


# --- authentication --------------------------------------------------------------------


# Ids of their own: the key is random, and every xdist worker must collect the same ids.
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-key", f"Basic {KEY}"],
    ids=["none", "wrong-key", "right-key-wrong-scheme"],
)
def test_v1_refuses_a_request_without_the_subscriber_key(
    bureau: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    body = inquiry(f"c-{uuid.uuid4().hex[:8]}")
    resp = httpx.post(f"{bureau}/v1/inquiries", json=body, headers=headers, timeout=5)
    assert_problem(resp, 401)
    assert resp.headers["www-authenticate"] == "Bearer"
    assert_problem(httpx.get(f"{bureau}/v1/disputes", headers=headers, timeout=5), 401)


def test_the_default_sandbox_key_is_not_accepted_when_the_env_sets_another(bureau: str) -> None:
    resp = httpx.post(
        f"{bureau}/v1/inquiries",
        json=inquiry("c-default-key"),
        headers={"Authorization": "Bearer sandbox-subscriber-key"},
        timeout=5,
    )
    assert_problem(resp, 401)


# --- inquiries -------------------------------------------------------------------------


def test_good_profile_is_the_default_for_an_unknown_consumer(http: httpx.Client) -> None:
    resp = http.post("/v1/inquiries", json=inquiry(new_consumer(http), "inq-good-1"))
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["status"] == "ok"
    assert report["inquiry_id"] == "inq-good-1"
    assert report["score"]["value"] == 760
    assert report["score"]["model"] == "sandbox-score-v1"
    assert report["score"]["key_factors"]
    credit = report["credit"]
    assert credit["delinquencies_last_24_months"] == 0
    assert credit["open_tradelines"] == 4
    assert credit["months_since_oldest_tradeline"] == 96
    assert credit["revolving_utilisation_percent"] == 18
    assert isinstance(credit["total_monthly_debt_payments_cents"], int)
    assert report["bureau"]["name"] == "Sandbox Credit Bureau"
    assert all(report["bureau"][k] for k in ("address", "phone", "website"))
    # The prohibited bases are present, so the assessment can prove it ignores them.
    assert {"full_name", "date_of_birth", "address", "marital_status"} <= set(report["consumer"])


def test_poor_profile(http: httpx.Client) -> None:
    good = http.post("/v1/inquiries", json=inquiry(new_consumer(http, "good"))).json()
    report = http.post("/v1/inquiries", json=inquiry(new_consumer(http, "poor"))).json()
    assert report["status"] == "ok"
    assert report["score"]["value"] == 560
    credit = report["credit"]
    assert credit["delinquencies_last_24_months"] == 3
    assert credit["inquiries_last_12_months"] == 7
    assert credit["revolving_utilisation_percent"] == 92
    debt = "total_monthly_debt_payments_cents"
    assert credit[debt] > good["credit"][debt]


def test_thin_profile_is_a_no_file_report(http: httpx.Client) -> None:
    report = http.post("/v1/inquiries", json=inquiry(new_consumer(http, "thin"))).json()
    assert report["status"] == "no-file"
    assert report["score"] is None
    assert report["credit"]["months_since_oldest_tradeline"] < 6
    assert report["credit"]["open_tradelines"] <= 1


def test_frozen_profile_discloses_nothing(http: httpx.Client) -> None:
    report = http.post("/v1/inquiries", json=inquiry(new_consumer(http, "frozen"))).json()
    assert report["status"] == "frozen"
    assert report["score"] is None and report["credit"] is None and report["consumer"] is None
    assert report["bureau"]["name"] == "Sandbox Credit Bureau"


@pytest.mark.parametrize("purpose", ["marketing", "sale", ""])
def test_an_unknown_permissible_purpose_is_refused(http: httpx.Client, purpose: str) -> None:
    body = inquiry(new_consumer(http), permissible_purpose=purpose)
    assert_problem(http.post("/v1/inquiries", json=body), 422)


def test_each_permissible_purpose_is_accepted(http: httpx.Client) -> None:
    for purpose in ("credit-transaction", "account-review", "collection"):
        body = inquiry(new_consumer(http), permissible_purpose=purpose)
        assert http.post("/v1/inquiries", json=body).status_code == 200


def test_a_retried_inquiry_returns_the_first_report(http: httpx.Client) -> None:
    reference = new_consumer(http, "good")
    first = http.post("/v1/inquiries", json=inquiry(reference, "inq-retry")).json()
    # The consumer's file changes between the two; a retry must still see the first answer.
    http.put(f"/sandbox/consumers/{reference}", json={"profile": "poor"})
    again = http.post("/v1/inquiries", json=inquiry(reference, "inq-retry")).json()
    assert again == first
    fresh = http.post("/v1/inquiries", json=inquiry(reference, "inq-retry-2")).json()
    assert fresh["report_id"] != first["report_id"]
    assert fresh["score"]["value"] == 560


def test_an_inquiry_id_reused_for_another_consumer_is_a_conflict(http: httpx.Client) -> None:
    assert http.post("/v1/inquiries", json=inquiry(new_consumer(http), "inq-reuse")).is_success
    assert_problem(http.post("/v1/inquiries", json=inquiry(new_consumer(http), "inq-reuse")), 409)


def test_outage_answers_503_until_it_ends(http: httpx.Client) -> None:
    assert http.put("/sandbox/outage", json={"down": True}).json() == {"down": True}
    try:
        resp = http.post("/v1/inquiries", json=inquiry(new_consumer(http)))
        assert_problem(resp, 503)
        assert resp.headers["retry-after"]
        assert_problem(http.get("/v1/disputes"), 503)
        assert_problem(furnish(http, metro2(furnisher(), [base("A1")])), 503)
    finally:
        http.put("/sandbox/outage", json={"down": False})
    assert http.post("/v1/inquiries", json=inquiry(new_consumer(http))).status_code == 200


# --- furnishing ------------------------------------------------------------------------


def test_a_well_formed_file_is_accepted_and_kept(http: httpx.Client) -> None:
    fid = furnisher()
    resp = furnish(http, metro2(fid, [base("LN-1"), base("LN-2"), base("LN-3")]))
    assert resp.status_code == 200, resp.text
    receipt = resp.json()
    assert receipt["accepted"] == 3 and receipt["rejected"] == []
    kept = [f for f in http.get("/sandbox/furnished").json()["files"] if f["furnisher_id"] == fid]
    assert len(kept) == 1
    assert kept[0]["file_id"] == receipt["file_id"]
    assert kept[0]["activity_date"] == "2025-06-30"
    assert kept[0]["date_created"] == "2025-07-01"
    assert kept[0]["reporter_name"] == "EXPENSURA LENDING"
    assert kept[0]["base_records"] == 3
    assert [r[42:72].strip() for r in kept[0]["records"]] == ["LN-1", "LN-2", "LN-3"]


def test_bad_base_records_are_rejected_by_line_and_the_rest_accepted(http: httpx.Client) -> None:
    short = base("LN-2")[:-1]
    wrong_indicator = "04262" + base("LN-3")[5:]
    resp = furnish(http, metro2(furnisher(), [base("LN-1"), short, wrong_indicator]))
    assert resp.status_code == 200, resp.text
    receipt = resp.json()
    assert receipt["accepted"] == 1
    assert [r["line"] for r in receipt["rejected"]] == [3, 4]  # the header is line 1
    assert "425" in receipt["rejected"][0]["reason"]


def test_a_trailer_count_that_disagrees_with_the_base_records_is_refused(
    http: httpx.Client,
) -> None:
    fid = furnisher()
    assert_problem(furnish(http, metro2(fid, [base("LN-1"), base("LN-2")], count=3)), 422)
    assert_problem(furnish(http, metro2(fid, [base("LN-1"), base("LN-2")], count=1)), 422)
    files = http.get("/sandbox/furnished").json()["files"]
    assert all(f["furnisher_id"] != fid for f in files)  # nothing of a refused file is kept
    # A refused file does not take the (furnisher, activity date) slot: the corrected one goes in.
    assert furnish(http, metro2(fid, [base("LN-1"), base("LN-2")])).json()["accepted"] == 2


def with_status_and_balance(account: str, status: str, balance: str) -> str:
    record = list(base(account))
    put(record, 124, status)
    put(record, 155, balance)
    return "".join(record)


def trailer_with(total_base_records: int, **at: str) -> str:
    """A trailer with values at the given positions (`p84="000000001"`)."""
    record = list(trailer(total_base_records))
    for where, value in at.items():
        put(record, int(where[1:]), value)
    return "".join(record)


def test_trailer_totals_by_status_and_balance_are_checked(http: httpx.Client) -> None:
    bases = [
        with_status_and_balance("LN-1", "11", "000001000"),
        with_status_and_balance("LN-2", "78", "000000500"),
    ]
    right = {"p84": "000000001", "p156": "000000001", "p408": "000001500"}
    wrong_status = right | {"p84": "000000002"}
    wrong_balance = right | {"p408": "000001501"}
    not_a_number = right | {"p147": "00000000X"}
    for bad in (wrong_status, wrong_balance, not_a_number):
        text = "\n".join([header(furnisher()), *bases, trailer_with(2, **bad)]) + "\n"
        assert_problem(furnish(http, text), 422)
    text = "\n".join([header(furnisher()), *bases, trailer_with(2, **right)]) + "\n"
    assert furnish(http, text).json()["accepted"] == 2
    # Blank totals are not declared: not checked.
    blank = {"p84": " " * 9, "p156": " " * 9, "p408": " " * 9}
    text = "\n".join([header(furnisher()), *bases, trailer_with(2, **blank)]) + "\n"
    assert furnish(http, text).status_code == 200


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param(header("FX") + "\n", id="no-trailer"),
        pytest.param(header("FX")[:-1] + "\n" + trailer(0) + "\n", id="short-header"),
        pytest.param("0427" + header("FX")[4:] + "\n" + trailer(0), id="header-rdw"),
        pytest.param(base("A") + "\n" + trailer(0), id="no-header"),
        pytest.param(header(" ") + "\n" + trailer(0), id="no-furnisher-id"),
        pytest.param(header("FX", activity="13322025") + "\n" + trailer(0), id="bad-date"),
        pytest.param(header("FX") + "\n" + base("A"), id="base-as-trailer"),
        pytest.param(header("FX") + "\n" + "0426TRAILER" + " " * 415, id="no-total"),
    ],
)
def test_a_file_with_a_bad_header_or_trailer_is_refused(http: httpx.Client, text: str) -> None:
    assert_problem(furnish(http, text), 422)


def test_a_file_must_be_sent_as_text_plain(http: httpx.Client) -> None:
    text = metro2(furnisher(), [base("A")])
    resp = http.post("/v1/furnishing", content=text, headers={"Content-Type": "application/json"})
    assert_problem(resp, 415)


def test_the_same_file_twice_is_received_once(http: httpx.Client) -> None:
    fid = furnisher()
    first = furnish(http, metro2(fid, [base("LN-1")])).json()
    again = furnish(http, metro2(fid, [base("LN-1")]))
    assert again.status_code == 200
    assert again.json() == first
    kept = [f for f in http.get("/sandbox/furnished").json()["files"] if f["furnisher_id"] == fid]
    assert len(kept) == 1
    next_month = furnish(http, metro2(fid, [base("LN-1")], activity="07312025")).json()
    assert next_month["file_id"] != first["file_id"]


# --- disputes --------------------------------------------------------------------------


def raise_dispute(http: httpx.Client, account: str) -> dict[str, str]:
    body = {"account_number": account, "consumer_reference": "c-d", "reason": "not mine"}
    resp = http.post("/sandbox/disputes", json=body)
    assert resp.status_code == 201, resp.text
    dispute: dict[str, str] = resp.json()
    return dispute


def test_disputes_appear_in_order_after_a_cursor_and_can_be_answered(
    http: httpx.Client,
) -> None:
    first, second = raise_dispute(http, "LN-D1"), raise_dispute(http, "LN-D2")
    listed = http.get("/v1/disputes", params={"after": ""}).json()["disputes"]
    ids = [d["dispute_id"] for d in listed]
    assert ids.index(first["dispute_id"]) < ids.index(second["dispute_id"])
    assert listed[ids.index(first["dispute_id"])] == first
    assert set(first) == {
        "dispute_id",
        "account_number",
        "consumer_reference",
        "reason",
        "received_at",
    }
    after_first = http.get("/v1/disputes", params={"after": first["dispute_id"]}).json()
    assert after_first["disputes"][0] == second
    assert http.get("/v1/disputes", params={"after": second["dispute_id"]}).json() == {
        "disputes": []
    }

    answer = {"outcome": "modified", "note": "balance corrected"}
    resp = http.post(f"/v1/disputes/{first['dispute_id']}/response", json=answer)
    assert resp.status_code == 200, resp.text
    # The same answer again is a retry; a different one is a conflict.
    assert http.post(f"/v1/disputes/{first['dispute_id']}/response", json=answer).is_success
    other = {"outcome": "deleted", "note": "removed"}
    assert_problem(http.post(f"/v1/disputes/{first['dispute_id']}/response", json=other), 409)
    seen = {d["dispute_id"]: d for d in http.get("/sandbox/disputes").json()["disputes"]}
    assert seen[first["dispute_id"]]["response"]["outcome"] == "modified"
    assert seen[first["dispute_id"]]["response"]["note"] == "balance corrected"
    assert seen[second["dispute_id"]]["response"] is None


def test_answering_an_unknown_dispute_is_404(http: httpx.Client) -> None:
    answer = {"outcome": "verified-as-reported", "note": ""}
    assert_problem(http.post("/v1/disputes/DSP-9999999999/response", json=answer), 404)


def test_an_unknown_outcome_is_refused(http: httpx.Client) -> None:
    dispute = raise_dispute(http, "LN-D3")
    answer = {"outcome": "ignored", "note": ""}
    assert_problem(http.post(f"/v1/disputes/{dispute['dispute_id']}/response", json=answer), 422)

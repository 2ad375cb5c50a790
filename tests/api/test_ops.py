"""Operations endpoints: liveness, readiness against the lag bound, Prometheus metrics."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from adapters.http.settings import Limit, Limits
from adapters.smtp import SmtpMailer, SmtpSettings
from consumers.file_ingest import ingest_lines
from projections.projector import Projector
from projections.registry import all_projections
from simulation import casegen
from tests.api.conftest import (
    METRICS_TOKEN,
    Files,
    applicant_registration,
    bearer,
    free_port,
    outbox_done,
)
from tests.integration.stored_events import store_nul_in_a_text_column


def scrape(client: TestClient) -> str:
    answer = client.get("/metrics", headers=bearer(METRICS_TOKEN))
    assert answer.status_code == 200
    return answer.text


def test_healthz_and_readyz_when_caught_up(client: TestClient, files: Files) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert set(ready.json()["lag_events"]) >= {"case_status", "case_history", "case_parties"}
    assert all(lag == 0 for lag in ready.json()["lag_events"].values())


def test_readyz_fails_when_projections_lag_beyond_the_bound(
    make_client: Callable[..., TestClient], store: Any
) -> None:
    lines = casegen.generate(5, seed=3)
    ingest_lines((line.encode() for line in lines), "test", store)  # not projected
    client = make_client(max_lag_events=3)
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert "case_status" in answer.json()["detail"]
    assert client.get("/healthz").status_code == 200


def test_metrics_count_requests_by_route_and_show_the_log(
    client: TestClient, files: Files, store: Any
) -> None:
    ingest_lines([b"not json at all"], "test-bad", store)
    client.get("/healthz")
    client.get("/v1/applications/F123456789")  # 401
    client.get("/v1/nowhere")
    text = scrape(client)
    assert 'casetrack_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
    assert (
        'casetrack_http_requests_total{method="GET",route="/v1/applications/{application_number}",'
        'status="401"} 1.0'
    ) in text
    assert 'route="unmatched",status="404"' in text
    assert "casetrack_http_request_duration_seconds_bucket" in text
    assert 'casetrack_projection_lag_events{projection="case_status"} 0.0' in text
    assert "casetrack_ingest_dead_letters_total 1.0" in text
    stored = [
        line for line in text.splitlines() if line.startswith("casetrack_events_stored_total")
    ]
    assert stored and float(stored[0].split()[-1]) > 0
    assert "F123456789" not in text


def test_request_ids_are_ours_and_problem_instances_name_them(client: TestClient) -> None:
    """A client's X-Request-ID is not taken: ids in our logs and audit rows are ours."""
    chosen = "abcdef0123456789"
    answers = [client.get("/v1/applications", headers={"X-Request-ID": chosen}) for _ in range(2)]
    ids = [answer.headers["x-request-id"] for answer in answers]
    assert chosen not in ids and ids[0] != ids[1]
    for answer, request_id in zip(answers, ids, strict=True):
        assert json.loads(answer.text)["instance"] == f"urn:casetrack:request:{request_id}"


def test_metrics_need_the_metrics_token(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    for headers in ({}, bearer("x" * len(METRICS_TOKEN)), bearer("cts_" + "A" * 43)):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert "casetrack_" not in refused.text
    assert "casetrack_http_requests_total" in scrape(client)
    off = make_client(metrics_token=None)
    assert off.get("/metrics", headers=bearer(METRICS_TOKEN)).status_code == 404


def _without_timings(text: str) -> list[str]:
    """The metric lines that count things (not times, process figures or creation stamps)."""
    return [
        line
        for line in text.splitlines()
        if not line.startswith(("#", "process_", "python_", "casetrack_http_request_duration"))
        and "_created" not in line
    ]


def test_no_metric_tells_whether_a_registration_matched(
    make_client: Callable[..., TestClient], files: Files
) -> None:
    """With the mail server down, a matching registration fails to send its code; nothing
    an observer of /metrics can see may differ from a registration that matched nothing."""
    number, payload = files.pick(representative=False, applicant_email=True)
    matching = applicant_registration(number, payload, "principal_applicant")
    unmatched = {**matching, "family_name": matching["family_name"] + "x"}
    seen = []
    for body in (unmatched, matching):
        down = SmtpMailer(SmtpSettings(host="127.0.0.1", port=free_port(), timeout=2.0))
        client = make_client(mailer=down)
        assert client.post("/v1/accounts/register", json=body).status_code == 202
        outbox_done(client)  # the code was (not) mailed before the scrape
        seen.append(_without_timings(scrape(client)))
    assert seen[0] == seen[1]


def test_a_bad_stored_event_leaves_readyz_ready_and_shows_in_the_metrics(
    client: TestClient, store: Any
) -> None:
    store_nul_in_a_text_column(store, "F000000001")
    ingest_lines((line.encode() for line in casegen.generate(3, seed=8)), "later", store)
    for projection in all_projections().values():
        Projector(store, projection).catch_up()

    assert client.get("/readyz").status_code == 200
    text = scrape(client)
    assert 'casetrack_projection_dead_letters_total{projection="case_parties"} 1.0' in text
    assert 'casetrack_projection_halted{projection="case_parties"} 0.0' in text


def test_no_metric_tells_whether_registrations_passed_the_mail_limit(
    make_client: Callable[..., TestClient], files: Files
) -> None:
    """Past the mails a login may get in an hour, a matching registration sends nothing;
    counting that would tell a /metrics reader the details matched."""
    number, payload = files.pick(representative=False, applicant_email=True)
    matching = applicant_registration(number, payload, "principal_applicant")
    unmatched = {**matching, "family_name": matching["family_name"] + "x"}
    asks = Limits().mails_per_login.hits + 1
    roomy = Limits(per_login_address={**Limits().per_login_address, "register": Limit(asks, 3600)})
    seen = []
    for body in (unmatched, matching):
        client = make_client(limits=roomy)
        for _ in range(asks):
            assert client.post("/v1/accounts/register", json=body).status_code == 202
        outbox_done(client)
        seen.append(_without_timings(scrape(client)))
    assert seen[0] == seen[1]


def test_a_clients_method_names_cannot_grow_the_metrics(client: TestClient) -> None:
    """Request methods are the client's choice: each new one must not add a time series
    (memory and /metrics would grow without bound)."""
    for n in range(5):
        assert client.request(f"MADEUP{n}", "/v1/nowhere").status_code in (404, 405)
    text = scrape(client)
    assert "MADEUP" not in text
    assert (
        'casetrack_http_requests_total{method="other",route="unmatched",status="404"} 5.0' in text
    )

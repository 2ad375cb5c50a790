"""Conditional reads: ETag, Last-Modified, 304s, and new events moving the validators."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from domain.application_number import case_id
from tests.api.conftest import (
    METRICS_TOKEN,
    Files,
    Mailbox,
    add_event,
    applicant_registration,
    bearer,
    sign_up,
)
from tests.stores import execute, rows


def _signed_in(client: TestClient, mailbox: Mailbox, files: Files) -> tuple[str, str]:
    number, payload = files.pick(
        representative=False, applicant_email=True, acknowledged=True, decided=False
    )
    uci = payload["principal_applicant"]["uci"]
    registration = applicant_registration(number, payload, "principal_applicant")
    return number, sign_up(client, mailbox, registration, uci)


def test_if_none_match_gives_304_until_the_file_changes(
    client: TestClient, mailbox: Mailbox, files: Files, store: Any
) -> None:
    number, token = _signed_in(client, mailbox, files)
    first = client.get(f"/v1/applications/{number}", headers=bearer(token))
    assert first.status_code == 200
    tag = first.headers["etag"]
    assert first.headers["cache-control"].startswith("private, max-age=")
    assert "estimate" in first.json(), "an open acknowledged file shows the estimate"
    again = client.get(
        f"/v1/applications/{number}", headers={**bearer(token), "If-None-Match": tag}
    )
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == tag
    french = client.get(
        f"/v1/applications/{number}?lang=fr", headers={**bearer(token), "If-None-Match": tag}
    )
    assert french.status_code == 200, "another language is another representation"

    add_event(store, number, "correspondence.sent", {"subject": "A letter about your file"})
    changed = client.get(
        f"/v1/applications/{number}", headers={**bearer(token), "If-None-Match": tag}
    )
    assert changed.status_code == 200 and changed.headers["etag"] != tag
    assert changed.json()["history"][-1]["title"] == "We sent you a message"


def test_if_modified_since_and_history_validators(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    number, token = _signed_in(client, mailbox, files)
    first = client.get(f"/v1/applications/{number}", headers=bearer(token))
    modified = first.headers["last-modified"]
    same = client.get(
        f"/v1/applications/{number}", headers={**bearer(token), "If-Modified-Since": modified}
    )
    assert same.status_code == 304
    old = client.get(
        f"/v1/applications/{number}",
        headers={**bearer(token), "If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"},
    )
    assert old.status_code == 200
    nonsense = client.get(
        f"/v1/applications/{number}", headers={**bearer(token), "If-Modified-Since": "yesterday"}
    )
    assert nonsense.status_code == 200

    history = client.get(f"/v1/applications/{number}/history", headers=bearer(token))
    assert history.status_code == 200
    revalidated = client.get(
        f"/v1/applications/{number}/history",
        headers={**bearer(token), "If-None-Match": history.headers["etag"]},
    )
    assert revalidated.status_code == 304


def test_a_304_still_needs_a_live_session(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    number, token = _signed_in(client, mailbox, files)
    tag = client.get(f"/v1/applications/{number}", headers=bearer(token)).headers["etag"]
    client.delete("/v1/sessions/current", headers=bearer(token))
    answer = client.get(
        f"/v1/applications/{number}", headers={**bearer(token), "If-None-Match": tag}
    )
    assert answer.status_code == 401


def test_the_fast_lane_and_the_routes_answer_alike(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    """Well-formed reads take the fast lane; an extra query parameter sends the same read
    through FastAPI's route: both must give the same status, headers and body."""
    number, token = _signed_in(client, mailbox, files)
    for suffix in ("", "/history"):
        fast = client.get(f"/v1/applications/{number}{suffix}?lang=en", headers=bearer(token))
        routed = client.get(
            f"/v1/applications/{number}{suffix}?lang=en&page=1", headers=bearer(token)
        )
        assert fast.status_code == routed.status_code == 200
        assert fast.content == routed.content
        for header in ("etag", "last-modified", "cache-control", "content-type"):
            assert fast.headers[header] == routed.headers[header], header
        for answer in (fast, routed):
            again = client.get(
                f"/v1/applications/{number}{suffix}?lang=en",
                headers={**bearer(token), "If-None-Match": answer.headers["etag"]},
            )
            assert again.status_code == 304
    other = "Z999999999"
    fast_404 = client.get(f"/v1/applications/{other}", headers=bearer(token))
    routed_404 = client.get(f"/v1/applications/{other}?page=1", headers=bearer(token))
    assert fast_404.status_code == routed_404.status_code == 404
    assert fast_404.json().keys() == routed_404.json().keys()
    assert fast_404.json()["detail"] == routed_404.json()["detail"]
    metrics = client.get("/metrics", headers=bearer(METRICS_TOKEN)).text
    assert 'route="/v1/applications/{application_number}",status="200"} 2.0' in metrics
    assert 'route="/v1/applications/{application_number}/history",status="200"} 2.0' in metrics


def test_a_history_that_moves_after_the_view_gets_new_validators(
    client: TestClient, mailbox: Mailbox, files: Files, store: Any
) -> None:
    """tracker_history commits after case_status (two projections): a read between the two
    sees the new view with the old history. Once the history catches up, a client holding
    that read's validator must get the new history, not a 304 (nor a page cached under it)."""
    number, token = _signed_in(client, mailbox, files)
    case = case_id(number)
    mine = " WHERE case_id = %s AND role = 'principal_applicant'"
    (row,) = rows(store, "SELECT history_en FROM {schema}.tracker_history" + mine, (case,))
    current = json.loads(row["history_en"])
    assert len(current) >= 2
    set_history = "UPDATE {schema}.tracker_history SET history_en = %s" + mine
    execute(store, set_history, (json.dumps(current[:-1]), case))  # the history lagging
    for path in (f"/v1/applications/{number}", f"/v1/applications/{number}/history"):
        stale = client.get(path, headers=bearer(token))
        execute(store, set_history, (json.dumps(current), case))  # ... and catching up
        fresh = client.get(path, headers={**bearer(token), "If-None-Match": stale.headers["etag"]})
        assert fresh.status_code == 200, f"{path}: the caught-up history was 'not modified'"
        assert len(fresh.json()["history"]) == len(stale.json()["history"]) + 1
        execute(store, set_history, (json.dumps(current[:-1]), case))

"""What a reader of a file may see: nobody reads a file linked to someone else, a sponsor's
history holds the overall milestones only, no internal type names or producers' free text
reach anyone, and validators never let one representation stand in for another."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from domain.accounts import SESSION_PREFIX, new_token
from tests.api.conftest import Files, Mailbox, add_event, applicant_registration, bearer, sign_up

# The overall milestones, the only history a sponsor sees (English titles).
MILESTONES = {
    "We received your application",
    "We sent you an acknowledgement of receipt",
    "We approved your application",
    "We refused your application",
    "Your application was withdrawn",
}
MILESTONE_TYPES = {
    "application.received",
    "application.acknowledged",
    "decision.made",
    "application.withdrawn",
}
ENTRY_FIELDS = {"title", "text", "occurred_at", "recorded_at"}


def _signed_up(
    client: TestClient, mailbox: Mailbox, number: str, payload: dict[str, Any], role: str
) -> str:
    registration = applicant_registration(number, payload, role)
    return sign_up(client, mailbox, registration, payload[role]["uci"])


def _both(client: TestClient, mailbox: Mailbox, files: Files, **pick: Any) -> tuple[str, str, str]:
    """A file with its applicant and its sponsor signed in: (number, applicant, sponsor)."""
    number, payload = files.pick(
        representative=False, applicant_email=True, sponsor_email=True, **pick
    )
    applicant = _signed_up(client, mailbox, number, payload, "principal_applicant")
    sponsor = _signed_up(client, mailbox, number, payload, "sponsor")
    return number, applicant, sponsor


def _histories(client: TestClient, token: str, number: str, lang: str) -> list[list[Any]]:
    """The history as the view and as the history route serve it, fast lane and routed."""
    found = []
    for suffix, extra in (("", ""), ("/history", ""), ("", "&page=1"), ("/history", "&page=1")):
        answer = client.get(f"/v1/applications/{number}{suffix}?lang={lang}{extra}",
                            headers=bearer(token))  # fmt: skip
        assert answer.status_code == 200, answer.text
        found.append(answer.json()["history"])
    return found


def test_a_file_linked_to_another_caller_answers_like_a_missing_one(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    a_number, a_payload = files.pick(representative=False, applicant_email=True, acknowledged=True)
    b_number, b_payload = files.pick(
        representative=False, applicant_email=True, exclude=(a_number,)
    )
    a = _signed_up(client, mailbox, a_number, a_payload, "principal_applicant")
    b = _signed_up(client, mailbox, b_number, b_payload, "principal_applicant")
    assert client.get(f"/v1/applications/{a_number}", headers=bearer(a)).status_code == 200
    for suffix in ("", "/history"):
        for query in ("", "?page=1"):  # the fast lane and the routes
            theirs = client.get(f"/v1/applications/{a_number}{suffix}{query}", headers=bearer(b))
            missing = client.get(f"/v1/applications/Z999999999{suffix}{query}", headers=bearer(b))
            assert theirs.status_code == missing.status_code == 404, suffix + query
            assert theirs.json()["type"] == missing.json()["type"] == "/problems/not-found"
            assert theirs.json()["detail"] == missing.json()["detail"]
            assert a_number not in theirs.text and "history" not in theirs.json()


def test_a_caller_without_a_live_session_learns_nothing_of_a_file(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    """No header, a malformed one, a well-formed token never issued: 401 alike for a real
    file and a missing one, on the view and the history, in the fast lane and the routes."""
    number, payload = files.pick(representative=False, applicant_email=True, acknowledged=True)
    owner = _signed_up(client, mailbox, number, payload, "principal_applicant")
    assert client.get(f"/v1/applications/{number}", headers=bearer(owner)).status_code == 200
    callers: list[dict[str, str]] = [
        {},
        {"Authorization": "Basic Zm9vOmJhcg=="},
        bearer(new_token(SESSION_PREFIX)),  # well formed, never issued
    ]
    for headers in callers:
        for suffix in ("", "/history"):
            for query in ("", "?page=1"):  # the fast lane and the routes
                real = client.get(f"/v1/applications/{number}{suffix}{query}", headers=headers)
                missing = client.get(f"/v1/applications/Z999999999{suffix}{query}", headers=headers)
                assert real.status_code == missing.status_code == 401, (headers, suffix, query)
                same = {k: v for k, v in real.json().items() if k != "instance"}  # request id
                assert same == {k: v for k, v in missing.json().items() if k != "instance"}
                assert number not in real.text and "history" not in real.json()


def test_a_sponsor_sees_the_overall_milestones_only_in_every_history(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    number, applicant, sponsor = _both(client, mailbox, files, acknowledged=True, decided=True)
    milestones = len(files.types[number] & MILESTONE_TYPES)
    for lang in ("en", "fr"):
        for history in _histories(client, sponsor, number, lang):
            assert len(history) == milestones, history
            for entry in history:
                assert set(entry) == ENTRY_FIELDS
        for history in _histories(client, applicant, number, lang):
            assert len(history) > milestones
            for entry in history:
                assert set(entry) == ENTRY_FIELDS
    sponsor_titles = {e["title"] for e in _histories(client, sponsor, number, "en")[0]}
    assert sponsor_titles <= MILESTONES
    assert "We received your application" in sponsor_titles


def test_no_reader_sees_a_letter_subject_and_a_sponsor_no_letter(
    client: TestClient, mailbox: Mailbox, files: Files, store: Any
) -> None:
    number, applicant, sponsor = _both(client, mailbox, files, acknowledged=True, decided=False)
    before = len(_histories(client, sponsor, number, "en")[0])
    subject = "Medical: HIV test result for Quackenbush"
    add_event(store, number, "correspondence.sent", {"subject": subject})
    for lang in ("en", "fr"):
        for history in _histories(client, applicant, number, lang):
            assert not any("Quackenbush" in e["title"] + e["text"] for e in history)
            assert not any("HIV" in e["title"] + e["text"] for e in history)
        for history in _histories(client, sponsor, number, lang):
            assert len(history) == before
    (last,) = _histories(client, applicant, number, "en")[0][-1:]
    assert last["title"] == "We sent you a message"


def test_another_role_revalidating_with_the_first_roles_etag_gets_its_own_answer(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    """Closed files have no estimate, so only the role can tell the representations apart."""
    number, applicant, sponsor = _both(client, mailbox, files, acknowledged=True, decided=True)
    for suffix in ("", "/history"):
        for query in ("", "?page=1"):
            path = f"/v1/applications/{number}{suffix}{query}"
            first = client.get(path, headers=bearer(applicant))
            assert first.status_code == 200
            tag = first.headers["etag"]
            mine = client.get(path, headers={**bearer(applicant), "If-None-Match": tag})
            assert mine.status_code == 304
            other = client.get(path, headers={**bearer(sponsor), "If-None-Match": tag})
            assert other.status_code == 200, path
            assert other.headers["etag"] != tag
            assert other.json() != first.json()


def test_history_in_another_language_is_another_representation(
    client: TestClient, mailbox: Mailbox, files: Files
) -> None:
    number, applicant, _ = _both(client, mailbox, files, acknowledged=True, decided=True)
    for extra in ("", "&page=1"):
        path = f"/v1/applications/{number}/history"
        english = client.get(f"{path}?lang=en{extra}", headers=bearer(applicant))
        tag = english.headers["etag"]
        french = client.get(
            f"{path}?lang=fr{extra}", headers={**bearer(applicant), "If-None-Match": tag}
        )
        assert french.status_code == 200 and french.headers["etag"] != tag
        assert french.json()["history"][0]["title"] == "Nous avons reçu votre demande"


def test_a_line_only_the_applicant_sees_does_not_move_what_the_sponsor_sees(
    client: TestClient, mailbox: Mailbox, files: Files, store: Any
) -> None:
    """Last updated, Last-Modified and the ETags would tell a sponsor when something
    happened on the applicant's side (a medical result, a letter)."""
    number, applicant, sponsor = _both(client, mailbox, files, acknowledged=True, decided=False)
    paths = (f"/v1/applications/{number}", f"/v1/applications/{number}/history")
    first = {path: client.get(path, headers=bearer(sponsor)) for path in paths}
    listed = client.get("/v1/applications", headers=bearer(sponsor)).json()
    applicant_view = client.get(paths[0], headers=bearer(applicant)).json()
    add_event(store, number, "correspondence.sent", {"subject": "Update on your application"})
    moved = client.get(paths[0], headers=bearer(applicant)).json()
    assert moved["last_updated"] != applicant_view["last_updated"]
    for path, answer in first.items():
        for query in ("", "?page=1"):
            again = client.get(
                path + query,
                headers={**bearer(sponsor), "If-None-Match": answer.headers["etag"]},
            )
            assert again.status_code == 304, path + query
            assert again.headers["last-modified"] == answer.headers["last-modified"]
    view = client.get(paths[0], headers=bearer(sponsor)).json()
    assert view["last_updated"] == first[paths[0]].json()["last_updated"]
    assert client.get("/v1/applications", headers=bearer(sponsor)).json() == listed

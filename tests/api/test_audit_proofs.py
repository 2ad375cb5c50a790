"""The auditors' proofs over HTTP: events carry their leaf, chain link and leaf index; a
file's proof bundle verifies offline; checkpoints and consistency proofs verify with the
public key alone; every read is audit-logged, refusals included."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from adapters.http import models
from adapters.postgres import auditors_store
from consumers.file_ingest import ingest_lines
from domain.application_number import case_id
from domain.integrity import merkle
from domain.integrity.bundle import verify_bundle
from domain.integrity.checkpoint import generate_key, verify_checkpoint
from domain.integrity.leaves import CHAIN_0, chain
from simulation import casegen
from tests.api.conftest import (
    Files,
    Mailbox,
    applicant_registration,
    bearer,
    load_files,
    sign_up,
)
from tests.stores import execute

SKEY, VKEY = generate_key("test.example/log")
ROUTES = (
    "/v1/audit/applications/{number}/proof",
    "/v1/audit/checkpoints/latest",
    "/v1/audit/checkpoints/consistency?from=0&to=0",
)


@pytest.fixture
def small_files(store: Any) -> Files:
    return load_files(store, cases=12, seed=8)


@pytest.fixture
def key(database_url: str, schema: str) -> dict[str, str]:
    return bearer(auditors_store.add(database_url, schema, "dana"))


def grow(store: Any, seed: int) -> None:
    lines = casegen.generate(4, seed=seed)
    assert ingest_lines((line.encode() for line in lines), "test-more", store).accepted > 0


def documented(model: type[BaseModel], body: dict[str, Any]) -> bool:
    """The body is what the OpenAPI document's model describes: valid, nothing more."""
    return model.model_validate(body).model_dump(by_alias=True, exclude_unset=True) == body


def log_entries(client: TestClient, key: dict[str, str]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = client.get("/v1/audit/log", headers=key).json()["entries"]
    return [e for e in entries if e["action"] != "log"]


def test_each_event_carries_its_leaf_chain_link_and_leaf_index(
    client: TestClient, key: dict[str, str], small_files: Files, store: Any
) -> None:
    number, _ = small_files.pick(decided=True)
    events = client.get(f"/v1/audit/applications/{number}/events", headers=key).json()["events"]
    stored = store.integrity.case_events(case_id(number))
    assert [e["leaf_index"] for e in events] == [h.leaf_index for _, h in stored]
    assert [e["leaf"] for e in events] == [h.leaf.hex() for _, h in stored]
    link = CHAIN_0
    for event in events:
        link = chain(link, bytes.fromhex(event["leaf"]))
        assert event["chain"] == link.hex()
    at_two = client.get(
        f"/v1/audit/applications/{number}/events?as_of_version=2", headers=key
    ).json()["events"]
    assert [e["chain"] for e in at_two] == [e["chain"] for e in events[:2]]


def test_an_event_whose_hashes_were_deleted_shows_with_none(
    client: TestClient, key: dict[str, str], small_files: Files, store: Any
) -> None:
    number, _ = small_files.pick(decided=True)
    deleted = execute(
        store,
        "DELETE FROM {schema}.event_hashes WHERE case_id = %s AND case_version = 2",
        (case_id(number),),
    )
    assert deleted == 1
    events = client.get(f"/v1/audit/applications/{number}/events", headers=key).json()["events"]
    assert events[1]["version"] == 2 and events[1]["leaf"] is None and events[1]["chain"] is None
    assert events[0]["leaf"] is not None and events[2]["leaf_index"] is not None


def test_a_bundle_from_the_api_verifies_offline(
    client: TestClient, key: dict[str, str], small_files: Files, store: Any
) -> None:
    number, _ = small_files.pick(decided=True)
    assert client.get(f"/v1/audit/applications/{number}/proof", headers=key).status_code == 404
    first, _ = store.integrity.checkpoint(SKEY)
    answer = client.get(f"/v1/audit/applications/{number}/proof", headers=key)
    assert answer.status_code == 200
    assert documented(models.ProofBundle, answer.json())
    report = verify_bundle(answer.content, VKEY, case_id_of=case_id)
    expected = len(store.integrity.case_events(case_id(number)))
    assert report.checkpoint.size == first.size and report.events == expected
    assert [c.application_number for c in report.cases] == [number]

    grow(store, seed=31)
    second, _ = store.integrity.checkpoint(SKEY)
    since = client.get(f"/v1/audit/applications/{number}/proof?since={first.size}", headers=key)
    assert documented(models.ProofBundle, since.json())
    report = verify_bundle(since.content, VKEY, first.note, case_id_of=case_id)
    assert report.consistent_with == first.size and report.checkpoint.size == second.size

    beyond = client.get(
        f"/v1/audit/applications/{number}/proof?since={second.size + 1}", headers=key
    )
    assert beyond.status_code == 422
    assert client.get("/v1/audit/applications/Z999999999/proof", headers=key).status_code == 404
    assert [(e["action"], e["status"], e["parameters"]) for e in log_entries(client, key)] == [
        ("proof", 404, {"since": None}),
        ("proof", 422, {"since": second.size + 1}),
        ("proof", 200, {"since": first.size}),
        ("proof", 200, {"since": None}),
        ("proof", 404, {"since": None}),
    ]


def test_checkpoints_and_consistency_proofs_verify_with_the_public_key(
    client: TestClient, key: dict[str, str], small_files: Files, store: Any
) -> None:
    missing = client.get("/v1/audit/checkpoints/latest", headers=key)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    first, _ = store.integrity.checkpoint(SKEY)
    grow(store, seed=32)
    second, _ = store.integrity.checkpoint(SKEY)

    latest = client.get("/v1/audit/checkpoints/latest", headers=key).json()
    assert latest == {"size": second.size, "root": second.root.hex(), "note": second.note}
    assert documented(models.CheckpointOut, latest)
    signed = verify_checkpoint(latest["note"], VKEY)
    assert (signed.size, signed.root.hex()) == (latest["size"], latest["root"])

    answer = client.get(
        f"/v1/audit/checkpoints/consistency?from={first.size}&to={second.size}", headers=key
    ).json()
    assert (answer["from"], answer["to"]) == (first.size, second.size)
    assert documented(models.ConsistencyOut, answer)
    old = verify_checkpoint(first.note, VKEY)
    proof = [bytes.fromhex(h) for h in answer["proof"]]
    merkle.verify_consistency(first.size, second.size, old.root, signed.root, proof)
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(first.size, second.size, old.root, signed.root, proof[::-1])

    def status(query: str) -> int:
        return client.get(f"/v1/audit/checkpoints/consistency?{query}", headers=key).status_code

    assert status(f"from={second.size}&to={first.size}") == 422
    assert status(f"from=0&to={second.size + 1}") == 422
    assert status("from=-1&to=3") == 422
    assert status("to=3") == 422
    assert status(f"from={second.size}&to={second.size}") == 200
    logged = [(e["action"], e["status"]) for e in log_entries(client, key)]
    assert logged == [
        ("checkpoints_consistency", 200),
        ("checkpoints_consistency", 422),
        ("checkpoints_consistency", 422),
        ("checkpoints_consistency", 422),
        ("checkpoints_consistency", 422),
        ("checkpoints_consistency", 200),
        ("checkpoints_latest", 200),
        ("checkpoints_latest", 404),
    ]


def test_proofs_need_an_auditor_key(
    client: TestClient, key: dict[str, str], small_files: Files
) -> None:
    number, _ = small_files.pick()
    for route in ROUTES:
        path = route.format(number=number)
        assert client.get(path).status_code == 401
        assert client.get(path, headers=bearer("cta_" + "A" * 43)).status_code == 401
    assert log_entries(client, key) == []


def test_applicants_and_sponsors_of_the_file_get_none_of_its_proofs(
    client: TestClient, key: dict[str, str], mailbox: Mailbox, files: Files, store: Any
) -> None:
    """A bundle holds the file's payloads unfiltered (names, UCIs, dates of birth): only
    auditors may have it. The file's own applicant and sponsor are refused, as anyone is."""
    store.integrity.checkpoint(SKEY)
    number, payload = files.pick(representative=False, applicant_email=True)
    tokens = [
        sign_up(client, mailbox, applicant_registration(number, payload, role), uci)
        for role in ("principal_applicant", "sponsor")
        for uci in [payload[role]["uci"]]
    ]
    routes = (*ROUTES, "/v1/audit/applications/{number}/events")
    for token in tokens:
        for route in routes:
            answer = client.get(route.format(number=number), headers=bearer(token))
            assert answer.status_code == 403, route
            assert payload["principal_applicant"]["uci"] not in answer.text
    assert log_entries(client, key) == []


def test_a_log_that_no_longer_holds_what_its_checkpoint_covers_is_a_conflict(
    client: TestClient, key: dict[str, str], small_files: Files, store: Any
) -> None:
    """Hash rows deleted under a signed checkpoint: no proof of its tree can be made. The
    answer says so (409, logged), not a 500, nor 'beyond the log' for a size the log
    claims to hold."""
    number, _ = small_files.pick(decided=True)
    signed, _ = store.integrity.checkpoint(SKEY)
    execute(store, "DELETE FROM {schema}.event_hashes WHERE leaf_index = 1")  # a gap

    def get(path: str) -> Any:
        return client.get(path, headers=key)

    gap = get(f"/v1/audit/checkpoints/consistency?from=1&to={signed.size}")
    assert gap.status_code == 409
    assert gap.json()["type"] == "/problems/log-altered"
    assert "casetrack audit verify" in gap.json()["detail"]
    assert get(f"/v1/audit/checkpoints/consistency?from=0&to={signed.size + 1}").status_code == 422
    execute(store, "DELETE FROM {schema}.event_hashes WHERE leaf_index >= %s", (signed.size - 3,))
    for path in (
        f"/v1/audit/applications/{number}/proof",
        f"/v1/audit/applications/{number}/proof?since=1",
    ):
        answer = get(path)
        assert answer.status_code == 409, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        detail = answer.json()["detail"]
        assert f"the events checkpoint {signed.size} covers" in detail
    assert [(e["action"], e["status"]) for e in log_entries(client, key)] == [
        ("proof", 409),
        ("proof", 409),
        ("checkpoints_consistency", 422),
        ("checkpoints_consistency", 409),
    ]


def test_the_latest_checkpoint_is_answered_from_its_signed_note(
    client: TestClient, key: dict[str, str], small_files: Files, store: Any
) -> None:
    """The size and root columns are not signed: an altered row does not change the answer,
    and a row whose note is not a checkpoint is a conflict, not a 500."""
    signed, _ = store.integrity.checkpoint(SKEY)
    execute(
        store,
        "UPDATE {schema}.checkpoints SET size = size + 1000, root = sha256(root) WHERE size = %s",
        (signed.size,),
    )
    latest = client.get("/v1/audit/checkpoints/latest", headers=key).json()
    assert latest == {"size": signed.size, "root": signed.root.hex(), "note": signed.note}
    execute(store, "UPDATE {schema}.checkpoints SET note = 'not a note'")
    refused = client.get("/v1/audit/checkpoints/latest", headers=key)
    assert refused.status_code == 409 and refused.json()["type"] == "/problems/log-altered"
    assert [(e["action"], e["status"]) for e in log_entries(client, key)] == [
        ("checkpoints_latest", 409),
        ("checkpoints_latest", 200),
    ]

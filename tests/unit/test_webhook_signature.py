"""Our Standard Webhooks signatures pass the reference library (standardwebhooks, written
by others), and fail it when anything signed changes."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook, WebhookVerificationError

from domain import webhook_signature


@given(
    body=st.binary(max_size=2000).map(lambda b: b.hex().encode()),
    ident=st.text("abc_0123", min_size=1, max_size=40),
)
def test_the_reference_library_verifies_our_signatures(body: bytes, ident: str) -> None:
    secret = webhook_signature.new_secret()
    now = int(time.time())
    headers = webhook_signature.headers(secret, ident, now, body)
    Webhook(secret).verify(body, headers, json_parse=False)


def test_a_changed_body_id_timestamp_or_secret_fails() -> None:
    secret = webhook_signature.new_secret()
    now = int(time.time())
    body = b'{"type":"application.updated"}'
    headers = webhook_signature.headers(secret, "msg_1", now, body)
    for data, changed, key in (
        (body + b" ", headers, secret),
        (body, {**headers, "webhook-id": "msg_2"}, secret),
        (body, {**headers, "webhook-timestamp": str(now + 1)}, secret),
        (body, headers, webhook_signature.new_secret()),
    ):
        with pytest.raises(WebhookVerificationError):
            Webhook(key).verify(data, changed, json_parse=False)


def test_secrets_are_in_the_standard_form() -> None:
    secret = webhook_signature.new_secret()
    assert secret.startswith("whsec_")
    assert len(webhook_signature.secret_bytes(secret)) == 32
    assert webhook_signature.new_secret() != secret
    with pytest.raises(ValueError):
        webhook_signature.secret_bytes("not-a-secret")

"""Inbound webhooks: Mailgun's HMAC and SendGrid's ECDSA signatures checked, 2xx only once the raw message is stored."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import secrets
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.inbox import fixtures
from tests.inbox.conftest import Desk
from ticketing.models import InboundMail, OutboxMessage
from web.app import create_app

KEY = "key-" + "3" * 32
PRIVATE = ec.generate_private_key(ec.SECP256R1())
PUBLIC_B64 = base64.b64encode(
    PRIVATE.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
).decode()


@pytest.fixture
def web(desk: Desk, redis_url: str) -> Iterator[FlaskClient]:
    """The web app with both providers' keys, on an emptied Redis (the replay check's used signatures)."""
    desk.runtime.settings = desk.runtime.settings.with_overrides(
        mailgun_signing_key=KEY, sendgrid_verification_key=PUBLIC_B64
    )
    app = create_app(runtime=desk.runtime)
    with app.test_client() as client:
        yield client


def stored(desk: Desk) -> int:
    with desk.runtime.sessions() as s:
        return s.scalar(select(func.count(InboundMail.id))) or 0


def mailgun_form(desk: Desk, raw: bytes, *, key: str = KEY, age: int = 0, token: str | None = None) -> dict[str, str]:
    """A Mailgun route's post as Mailgun signs it: a fresh random 50-character token each time."""
    ts = str(int(desk.runtime.now().timestamp()) - age)
    token = token or secrets.token_hex(25)
    sig = hmac.new(key.encode(), (ts + token).encode(), hashlib.sha256).hexdigest()
    return {
        "timestamp": ts,
        "token": token,
        "signature": sig,
        "recipient": "help@itech.example",
        "body-mime": raw.decode(),
    }


def test_a_signed_mailgun_message_is_stored_then_parsed_into_a_ticket(desk: Desk, web: FlaskClient) -> None:
    response = web.post("/mail/inbound/mailgun", data=mailgun_form(desk, fixtures.multipart_alternative()))
    assert response.status_code == 200 and response.json["duplicate"] is False
    with desk.runtime.sessions() as s:
        assert s.scalar(select(OutboxMessage.key)) == f"mail-in:{response.json['stored']}"  # parsed later, by the job
    desk.run_jobs()
    (ticket,) = desk.tickets()
    assert ticket.source == "email" and len(desk.sent()) == 1
    again = web.post("/mail/inbound/mailgun", data=mailgun_form(desk, fixtures.multipart_alternative()))
    assert again.status_code == 200 and again.json["duplicate"] is True
    desk.run_jobs()
    assert len(desk.tickets()) == 1


@pytest.mark.parametrize("bad", ["wrong key", "stale", "missing"])
def test_a_badly_signed_mailgun_request_is_refused_and_changes_nothing(desk: Desk, web: FlaskClient, bad: str) -> None:
    form = mailgun_form(
        desk, fixtures.html_only(), key="key-wrong" if bad == "wrong key" else KEY, age=900 if bad == "stale" else 0
    )
    if bad == "missing":
        form.pop("signature")
    assert web.post("/mail/inbound/mailgun", data=form).status_code == 403
    assert stored(desk) == 0


def sendgrid_request(
    desk: Desk, raw: bytes, *, private: ec.EllipticCurvePrivateKey = PRIVATE
) -> tuple[bytes, dict[str, str]]:
    boundary = "xYzZY"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="to"\r\n\r\nhelp@itech.example\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="email"\r\n\r\n'
        ).encode()
        + raw
        + f"\r\n--{boundary}--\r\n".encode()
    )
    ts = str(int(desk.runtime.now().timestamp()))
    signature = base64.b64encode(private.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
    return body, {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "X-Twilio-Email-Event-Webhook-Signature": signature,
        "X-Twilio-Email-Event-Webhook-Timestamp": ts,
    }


def test_a_signed_sendgrid_inbound_parse_post_is_stored(desk: Desk, web: FlaskClient) -> None:
    body, headers = sendgrid_request(desk, fixtures.latin1_subject())
    response = web.post("/mail/inbound/sendgrid", data=io.BytesIO(body), headers=headers)
    assert response.status_code == 200, response.data
    desk.run_jobs()
    (ticket,) = desk.tickets()
    assert ticket.summary == "Problème de réseau à l'accueil"


def test_a_sendgrid_post_signed_by_another_key_or_altered_is_refused(desk: Desk, web: FlaskClient) -> None:
    body, headers = sendgrid_request(desk, fixtures.html_only(), private=ec.generate_private_key(ec.SECP256R1()))
    assert web.post("/mail/inbound/sendgrid", data=io.BytesIO(body), headers=headers).status_code == 403
    body, headers = sendgrid_request(desk, fixtures.html_only())
    tampered = body.replace(b"VPN", b"VPX")
    assert web.post("/mail/inbound/sendgrid", data=io.BytesIO(tampered), headers=headers).status_code == 403
    assert stored(desk) == 0


LATIN1 = (
    b"From: Dana Whitfield <dana@acme-dental.example>\r\n"
    b"To: help@itech.example\r\n"
    b"Subject: =?iso-8859-1?q?Caf=E9?=\r\n"
    b"Message-ID: <latin1-8bit@acme-dental.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Caf\xe9 ferm\xe9 \xe0 midi.\r\n"
)


def _multipart(fields: dict[str, str | bytes], boundary: str = "mg-boundary-7a1c") -> tuple[bytes, str]:
    """A multipart/form-data body as Mailgun posts it: plain fields, no charset on the parts."""
    out = b""
    for name, value in fields.items():
        data = value if isinstance(value, bytes) else value.encode()
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("encoding", ["multipart", "urlencoded"])
def test_an_8bit_latin1_mailgun_message_is_stored_byte_for_byte(desk: Desk, web: FlaskClient, encoding: str) -> None:
    from urllib.parse import urlencode

    fields: dict[str, str | bytes] = {**mailgun_form(desk, b""), "body-mime": LATIN1}
    if encoding == "multipart":
        body, content_type = _multipart(fields)
    else:
        body, content_type = urlencode(fields).encode(), "application/x-www-form-urlencoded"
    response = web.post("/mail/inbound/mailgun/mime", data=body, content_type=content_type)
    assert response.status_code == 200, response.json
    assert desk.inbound(response.json["stored"]).raw == LATIN1
    desk.run_jobs()
    (ticket,) = desk.tickets()
    assert ticket.summary == "Café" and "Café fermé à midi." in (ticket.description or "")


def test_a_replayed_mailgun_signature_with_another_body_is_refused_and_stores_nothing(
    desk: Desk, web: FlaskClient
) -> None:
    first = mailgun_form(desk, fixtures.multipart_alternative())
    assert web.post("/mail/inbound/mailgun/mime", data=first).status_code == 200
    replay = {**first, "body-mime": fixtures.html_only().decode()}  # same timestamp, token and signature
    refused = web.post("/mail/inbound/mailgun/mime", data=replay)
    assert refused.status_code == 409 and "already used" in refused.json["error"]
    assert stored(desk) == 1
    desk.run_jobs()
    assert len(desk.tickets()) == 1


def test_a_replayed_sendgrid_post_is_refused(desk: Desk, web: FlaskClient) -> None:
    body, headers = sendgrid_request(desk, fixtures.no_message_id())
    assert web.post("/mail/inbound/sendgrid", data=io.BytesIO(body), headers=headers).status_code == 200
    again = web.post("/mail/inbound/sendgrid", data=io.BytesIO(body), headers=headers)
    assert again.status_code == 409 and "already used" in again.json["error"]
    assert stored(desk) == 1


def test_the_replay_check_keys_are_namespaced_and_expire_with_the_signatures_lifetime(
    desk: Desk, web: FlaskClient
) -> None:
    form = mailgun_form(desk, fixtures.multipart_alternative())
    assert web.post("/mail/inbound/mailgun/mime", data=form).status_code == 200
    keys = desk.runtime.redis.keys("supportline:mail-webhook:*")
    assert len(keys) == 1 and form["token"] not in keys[0].decode()  # a digest, never the token itself
    ttl = desk.runtime.redis.ttl(keys[0])
    max_age = desk.runtime.settings.mail_webhook_max_age_seconds
    assert max_age - 5 <= ttl <= max_age + 2  # as long as a timestamp of now is accepted (Redis rounds TTLs)


def test_with_redis_down_a_signed_webhook_is_answered_503_and_nothing_is_stored(desk: Desk, web: FlaskClient) -> None:
    desk.runtime.settings = desk.runtime.settings.with_overrides(redis_url="redis://127.0.0.1:1/0")
    desk.runtime._redis = None
    desk.runtime.redis_timeout = 0.5
    response = web.post("/mail/inbound/mailgun/mime", data=mailgun_form(desk, fixtures.multipart_alternative()))
    assert response.status_code == 503 and "send again" in response.json["error"]
    body, headers = sendgrid_request(desk, fixtures.html_only())
    assert web.post("/mail/inbound/sendgrid", data=io.BytesIO(body), headers=headers).status_code == 503
    assert stored(desk) == 0


def test_a_message_the_database_could_not_store_is_accepted_when_the_provider_sends_it_again(
    desk: Desk, web: FlaskClient
) -> None:
    from ticketing.db import make_engine, make_session_factory

    working = desk.runtime.sessions
    down = make_engine("postgresql://postgres@127.0.0.1:1/test?connect_timeout=2")  # nothing listens there
    form = mailgun_form(desk, fixtures.multipart_alternative())
    desk.runtime.sessions = make_session_factory(down)
    try:
        first = web.post("/mail/inbound/mailgun/mime", data=form)
    finally:
        desk.runtime.sessions = working
        down.dispose()
    assert first.status_code == 503 and first.json["error"] == "not stored, send again"
    again = web.post("/mail/inbound/mailgun/mime", data=form)  # the provider's retry: the same signed request
    assert again.status_code == 200 and stored(desk) == 1

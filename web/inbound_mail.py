"""Inbound email webhooks (thin): check the provider's signature, store the raw MIME, answer 2xx once stored.

- ``POST /mail/inbound/mailgun/mime`` - a Mailgun route forwarding raw MIME (a URL ending in ``mime``, field
  ``body-mime``); ``/mail/inbound/mailgun`` takes the same
- ``POST /mail/inbound/sendgrid`` - SendGrid Inbound Parse with "POST the raw, full MIME message" (field
  ``email``) and a signature-verification security policy

Parsing happens later in the worker; a duplicate delivery is answered 200 and stored once.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote_to_bytes

from flask import Blueprint, Response, jsonify, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from inbox import intake, signatures
from runtime.web import rt
from ticketing.db import transaction
from workers.dispatch import claim_for_response, hand_off_after_response

log = logging.getLogger(__name__)
blueprint = Blueprint("mail", __name__, url_prefix="/mail")


@blueprint.url_value_preprocessor
def allow_whole_messages(_endpoint: str | None, _values: dict[str, object] | None) -> None:
    """A provider posts the whole raw message: allow twice MAIL_MAX_BYTES, so an oversized one is still stored
    (and quarantined with its headers) instead of refused and lost."""
    limit = 2 * rt().settings.mail_max_bytes + 1024 * 1024
    request.max_content_length = limit
    request.max_form_memory_size = limit


def _raw_field(name: str) -> bytes | None:
    """The exact bytes posted in form field ``name`` (urlencoded or multipart, a plain field or a file part).

    Werkzeug decodes form fields as UTF-8 with replacement, which mangles an 8-bit message in another
    charset; the raw message is stored as posted, so the field is read again from the request's bytes.
    """
    body = request.get_data(cache=True)
    wanted = name.encode()
    if request.mimetype == "application/x-www-form-urlencoded":
        for pair in body.split(b"&"):  # by hand: urllib's parse_qsl decodes the values as UTF-8 too
            key, _eq, value = pair.partition(b"=")
            if unquote_to_bytes(key.replace(b"+", b" ")) == wanted:
                return unquote_to_bytes(value.replace(b"+", b" "))
        return None
    boundary = request.mimetype_params.get("boundary")
    if request.mimetype != "multipart/form-data" or not boundary:
        return None
    decoder = MultipartDecoder(boundary.encode("latin-1"), max_form_memory_size=request.max_form_memory_size)
    decoder.receive_data(body)
    decoder.receive_data(None)
    current: str | None = None
    chunks: list[bytes] = []
    while True:
        try:
            event = decoder.next_event()
        except ValueError:  # a malformed body: no such field, as werkzeug's own form parser would say
            return None
        if isinstance(event, (Epilogue, NeedData)):
            return None
        if isinstance(event, (Field, File)):
            current, chunks = event.name, []
        elif isinstance(event, Data) and current == name:
            chunks.append(event.data)
            if not event.more_data:
                return b"".join(chunks)


def _claim(key: str, timestamp: str) -> tuple[Response, int] | None:
    """Accept a signed request once: a second use of its signature is refused (409), and when Redis cannot
    say whether it was used the request is refused with 503 so the provider retries later."""
    runtime = rt()
    try:
        fresh = signatures.first_use(
            runtime.redis,
            key,
            timestamp=timestamp,
            now=runtime.now().timestamp(),
            max_age=runtime.settings.mail_webhook_max_age_seconds,
        )
    except signatures.ReplayCheckUnavailable:
        log.exception("inbound mail refused: the replay check (Redis) is unreachable")
        return jsonify(error="replay check unavailable, send again"), 503
    if not fresh:
        log.warning("refused a replayed mail webhook (%s)", key)
        return jsonify(error="signature already used: replayed request refused"), 409
    return None


def _store(raw: bytes, via: str, recipient: str | None, replay_key: str) -> Response | tuple[Response, int]:
    runtime = rt()
    settings = runtime.settings
    mailbox = intake.mailbox_key(settings.inbox_address, recipient)
    try:
        with transaction(runtime.sessions) as s:
            stored = intake.store_raw(
                s, mailbox=mailbox, raw=raw, via=via, now=runtime.now(), max_bytes=settings.mail_max_bytes
            )
            claimed = claim_for_response(s, runtime)
    except SQLAlchemyError:
        log.exception("inbound mail not stored")
        signatures.forget(runtime.redis, replay_key)  # nothing stored: the provider's retry must be accepted
        return jsonify(error="not stored, send again"), 503  # the provider retries a 5xx
    response = jsonify(stored=stored.id, duplicate=not stored.new)
    if claimed:
        hand_off_after_response(response, runtime, claimed)
    return response


@blueprint.post("/inbound/mailgun")
@blueprint.post("/inbound/mailgun/mime")  # Mailgun posts the raw message to a route URL ending in "mime"
def mailgun() -> Response | tuple[Response, int]:
    """Mailgun's forwarded raw MIME, signed with the webhook signing key."""
    settings = rt().settings
    request.get_data(cache=True)  # kept: the raw message is read from these bytes, the form parsed from them
    form = request.form
    if not signatures.mailgun_valid(
        settings.mailgun_signing_key,
        form.get("timestamp", ""),
        form.get("token", ""),
        form.get("signature", ""),
        now=rt().now().timestamp(),
        max_age=settings.mail_webhook_max_age_seconds,
    ):
        log.warning("refused unsigned or badly signed Mailgun webhook")
        return jsonify(error="bad signature"), 403
    raw = _raw_field("body-mime")  # the exact bytes: an 8-bit ISO-8859-1 message stays as it was sent
    if not raw:
        return jsonify(error="no body-mime: forward to a URL ending in 'mime'"), 400
    # Mailgun's token is unique per request: the signed triple must not carry another body a second time.
    key = signatures.replay_key("mailgun", form["token"].encode())
    refused = _claim(key, form["timestamp"])
    if refused is not None:
        return refused
    return _store(raw, "mailgun", form.get("recipient"), key)


@blueprint.post("/inbound/sendgrid")
def sendgrid() -> Response | tuple[Response, int]:
    """SendGrid Inbound Parse, raw MIME, signed by its security policy (ECDSA)."""
    settings = rt().settings
    body = request.get_data(cache=True)  # the signature covers the exact bytes; the form is parsed from the cache
    timestamp = request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp", "")
    if not signatures.sendgrid_valid(
        settings.sendgrid_verification_key,
        timestamp,
        body,
        request.headers.get("X-Twilio-Email-Event-Webhook-Signature", ""),
        now=rt().now().timestamp(),
        max_age=settings.mail_webhook_max_age_seconds,
    ):
        log.warning("refused unsigned or badly signed SendGrid webhook")
        return jsonify(error="bad signature"), 403
    raw = _raw_field("email")
    if not raw:
        return jsonify(error="no raw message: enable 'POST the raw, full MIME message'"), 400
    key = signatures.replay_key("sendgrid", timestamp.encode() + b"\n" + body)
    refused = _claim(key, timestamp)
    if refused is not None:
        return refused
    return _store(raw, "sendgrid", request.form.get("to"), key)

"""Development mode pages: /dev/outbox (what the local Twilio stand-in and the Maildir were sent), /dev/mail-in."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for

from inbox import intake
from ticketing.db import transaction
from web.console.auth import blueprint, rt
from web.console.shared import _sentence, _text
from workers.dispatch import hand_off_after_response


@blueprint.app_context_processor
def simulated_time() -> dict[str, Any]:
    """Development mode: the simulated present while a simulated call has moved the clock (the "SIMULATED" banner)."""
    from runtime import system_clock
    from runtime.devclock import SharedOffsetClock

    settings = rt().settings
    if not (settings.dev_mode and settings.allow_simulated_time):
        return {}
    clock = SharedOffsetClock(system_clock, settings.redis_url)
    return {"simulated_at": clock() if clock.simulating() else None}


@blueprint.get("/dev/outbox")
def dev_outbox() -> str:
    """Development mode: the SMS and calls the service asked the local Twilio stand-in to send, and the mail."""
    from ivr.twilio_standin import read_log

    runtime = rt()
    settings = runtime.settings
    if not settings.dev_mode:
        abort(404, description="Development mode is off: SMS and calls go to Twilio.")
    mailbox = Path(settings.dev_mailbox_dir)
    mails = (
        sorted((mailbox / "new").glob("*"), key=lambda p: p.stat().st_mtime, reverse=True)[:50]
        if (mailbox / "new").is_dir()
        else []
    )
    return render_template(
        "console/dev_outbox.html",
        entries=read_log(Path(settings.dev_twilio_log)),
        log_path=settings.dev_twilio_log,
        mailbox=mailbox,
        mails=[_mail_summary(p) for p in mails],
        api_base=settings.twilio_api_base_url,
    )


@blueprint.route("/dev/mail-in", methods=["GET", "POST"])
def dev_mail_in() -> Response | tuple[str, int]:
    """Development mode: a message typed here (or an .eml file) enters the email intake as a provider's would."""
    runtime = rt()
    settings = runtime.settings
    if not settings.dev_mode:
        abort(404, description="Development mode is off: mail comes in by a provider webhook or IMAP.")
    inbox = settings.inbox_address or "helpdesk"
    if request.method == "GET":
        return render_template("console/dev_mail_in.html", inbox=inbox, form={}, error=None), 200
    upload = request.files.get("eml")
    try:
        if upload is not None and upload.filename:
            raw = upload.read()
            if not raw.strip():
                raise ValueError("the .eml file is empty")
        else:
            raw = intake.typed_message(
                sender=_text(request.form, "from"),
                to=inbox,
                subject=_text(request.form, "subject"),
                body=request.form.get("body") or "",
                now=runtime.now(),
            )
    except ValueError as exc:
        page = render_template("console/dev_mail_in.html", inbox=inbox, form=request.form, error=_sentence(exc))
        return page, 400
    with transaction(runtime.sessions) as s:
        stored = intake.store_raw(
            s,
            mailbox=intake.mailbox_key(settings.inbox_address),
            raw=raw,
            via="dev",
            now=runtime.now(),
            max_bytes=settings.mail_max_bytes,
        )
    flash(
        f"Message stored (#{stored.id}); the worker turns it into a ticket or a reply: see Mail."
        if stored.new
        else f"The same message was stored before (#{stored.id}): nothing new.",
        "ok",
    )
    response = redirect(url_for("console.dev_mail_in"), code=303)
    hand_off_after_response(response, runtime)  # the parsing job goes to the worker now
    return response


_LINK = re.compile(r"https?://[^\s<>\"')\]]+")


def _mail_summary(path: Path) -> dict[str, Any]:
    """One message of the Maildir: its headers, and its text body decoded (quoted-printable, base64, charset),
    cut into text and links so every link works (``email``'s get_content, never the raw transfer encoding)."""
    from email import policy
    from email.parser import BytesParser

    try:
        with path.open("rb") as f:
            msg = BytesParser(policy=policy.default).parse(f)
    except OSError:
        return {"file": path.name, "to": "?", "subject": "(unreadable)", "date": "", "parts": []}
    body = ""
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is not None:
        try:
            body = part.get_content()
        except (LookupError, ValueError):  # an unknown charset or a broken encoding: show what can be read
            payload = part.get_payload(decode=True)
            body = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    parts: list[dict[str, str]] = []
    at = 0
    for link in _LINK.finditer(body):
        url = link.group(0).rstrip(".,;:!?")
        parts += [{"text": body[at : link.start()]}, {"url": url}]
        at = link.start() + len(url)
    parts.append({"text": body[at:]})
    return {
        "file": path.name,
        "to": str(msg["To"] or ""),
        "subject": str(msg["Subject"] or ""),
        "date": str(msg["Date"] or ""),
        "parts": [p for p in parts if p.get("url") or p.get("text")],
    }

"""Development mode pages: /dev/outbox (what the local Twilio stand-in and the Maildir were sent), /dev/mail-in."""

from __future__ import annotations

from pathlib import Path

from flask import Response, abort, flash, redirect, render_template, request, url_for

from inbox import intake
from ticketing.db import transaction
from web.console.auth import blueprint, rt
from web.console.shared import _sentence, _text
from workers.dispatch import hand_off_after_response


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


def _mail_summary(path: Path) -> dict[str, str]:
    from email import policy
    from email.parser import BytesParser

    try:
        with path.open("rb") as f:
            msg = BytesParser(policy=policy.default).parse(f, headersonly=True)
    except OSError:
        return {"file": path.name, "to": "?", "subject": "(unreadable)", "date": ""}
    return {
        "file": path.name,
        "to": str(msg["To"] or ""),
        "subject": str(msg["Subject"] or ""),
        "date": str(msg["Date"] or ""),
    }

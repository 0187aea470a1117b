"""The conversation with the client on a ticket: the reply box, sending again, bouncing mail, files from email."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, send_file
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from languages import translator
from ticketing import conversation, phone
from ticketing.models import MailAttachment, Ticket
from ticketing.text import one_line
from web.console.auth import blueprint, rt
from web.console.layout import phone_display
from web.console.shared import TRIAGE, ActionContext, _text, action, recording_file


def _mail_context(session: Session, t: Ticket) -> dict[str, Any]:
    address = conversation.requester_address(session, t)
    return {
        "messages": conversation.conversation(session, t),
        "address": address,
        "sms_to": phone_display(t.caller_number) if address is None and phone.normalize(t.caller_number) else None,
        "bouncing": conversation.bouncing(session, address),
    }


@action("reply")
def _reply(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    message = conversation.reply_to_client(
        c.session,
        t,
        _text(form, "text"),
        actor=c.actor,
        now=c.now,
        tag_prefix=c.runtime.settings.mail_tag_prefix,
        tz=c.runtime.policy.timezone,
        translate=translator(t.language),
    )
    return f"Reply queued ({message.channel} to {message.to_address if message.channel == 'email' else 'the caller'})."


@action("send-again")
def _send_again(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    number = _text(form, "message")
    if not number.isdigit():
        raise ValueError("say which message to send again")
    conversation.send_again(c.session, t, int(number), actor=c.actor, now=c.now)
    return "Message queued again."


@action("mail-deliverable", TRIAGE)
def _mail_deliverable(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    address = conversation.clear_bouncing(c.session, t, actor=c.actor, now=c.now)
    return f"Mail to {address} resumes: marked deliverable again."


@blueprint.get("/attachments/<int:attachment_id>")
def mail_attachment(attachment_id: int) -> Response:
    """A file from a client's email, to signed-in users only, always as a download."""
    runtime = rt()
    with runtime.sessions() as s:
        attachment = s.get(MailAttachment, attachment_id)
        if attachment is None:
            abort(404)
        stored, name = attachment.path, attachment.filename
    path = recording_file(stored, runtime.settings.recordings_dir)
    if path is None:
        abort(404)
    # A name mailed with a line break (RFC 2231 lets a sender encode one) would make the header invalid: one line,
    # which send_file then quotes (and encodes per RFC 5987 when it is not ASCII).
    response = send_file(
        path, mimetype="application/octet-stream", as_attachment=True, download_name=one_line(name) or "file", max_age=0
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response

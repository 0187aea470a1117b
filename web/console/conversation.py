"""The conversation with the client on a ticket: the composer (public reply or internal note, and a status with it),
the messages with notices folded (internal notes live in the timeline), sending again, bouncing mail, files from email."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import Response, abort, send_file
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from languages import translator
from ticketing import conversation, phone
from ticketing.models import MailAttachment, Source, Ticket, TicketMessage
from ticketing.text import one_line
from web.console.auth import blueprint, rt
from web.console.layout import phone_display
from web.console.mail import envelopes
from web.console.shared import TRIAGE, ActionContext, _text, action, recording_file


def notice(message: TicketMessage) -> bool:
    """Whether a conversation message was written by no person: a notice the system sent (confirmation,
    waiting on client, SLA, page) or an automatic answer (out-of-office); the page folds it to one line."""
    return bool(message.automatic)


def _mail_context(session: Session, t: Ticket) -> dict[str, Any]:
    address = conversation.requester_address(session, t)
    messages = conversation.conversation(session, t)
    return {
        "messages": messages,
        "notice": notice,
        "address": address,
        "sms_to": phone_display(t.caller_number) if address is None and phone.normalize(t.caller_number) else None,
        "bouncing": conversation.bouncing(session, address),
        "sender": _sender(session, t, messages),
    }


def _sender(session: Session, t: Ticket, messages: Sequence[TicketMessage]) -> str | None:
    """Who wrote the email that opened the ticket, 'Name <address>' (None for a ticket that came otherwise)."""
    if t.source != Source.EMAIL.value:
        return None
    first = next((m for m in messages if m.direction == "in" and m.inbound_id is not None), None)
    if first is not None:
        sender = envelopes(session, [first.inbound_id]).get(first.inbound_id)
        if sender is not None and sender.sender:
            return sender.sender
    if t.contact is not None and t.contact.email:
        return f"{t.contact.name} <{t.contact.email}>"
    return t.requester_email or (first.from_address if first is not None else None)


@action("compose")
def _compose(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    mode = _text(form, "mode")
    if mode not in ("reply", "note"):
        raise ValueError("choose a public reply or an internal note")
    done = conversation.compose(
        c.session,
        t,
        _text(form, "text"),
        public=mode == "reply",
        then=_text(form, "then") or "keep",
        actor=c.actor,
        now=c.now,
        policy=c.runtime.policy,
        tag_prefix=c.runtime.settings.mail_tag_prefix,
    )
    status = "" if (_text(form, "then") or "keep") == "keep" else f"; status {done.status}"
    if done.reply is None:
        return f"Internal note added{status}."
    to = done.reply.to_address if done.reply.channel == "email" else "the caller"
    return f"Reply queued ({done.reply.channel} to {to}){status}."


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

"""Email jobs: parse a stored inbound message, send a ticket's notices and replies (email, or SMS).

Every job is idempotent: an inbound message is processed once (its row's state), an outgoing message is
one row keyed on (ticket, event occurrence) and is never sent again once recorded as sent. Sending is at
least once: a job that dies between the SMTP server's 250 and that record sends the message again when
retried, with the same Message-ID (stored before the first try), so mail clients show it once. Sending failures the
server calls temporary are retried with the worker's backoff (JOB_RETRY_INTERVALS); a final failure is
shown on the message and in the ticket's audit log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import phonenumbers
from redis.exceptions import RedisError
from rq import get_current_job
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

import runtime as rt
from inbox import intake
from inbox.parse import OWN_MAIL_HEADER
from inbox.sandbox import Sandbox
from languages import local_time, priority_label, translator
from providers.mail import MailSendError, new_message_id, send_message
from runtime.heartbeat import is_alive
from ticketing import audit as audit_log
from ticketing import conversation, lifecycle, mailrules, outbox, phone, texts
from ticketing.db import transaction
from ticketing.models import InboundMail, Ticket, TicketMessage
from ticketing.priority import Priority
from ticketing.summaries import client_summary
from ticketing.text import one_line
from workers.notices import Notices, load_notices

log = logging.getLogger(__name__)
SYSTEM = "support line"


def notices(runtime: rt.Runtime) -> Notices:
    """The notices configuration of this process (loaded once)."""
    loaded = runtime.cache.get("notices")
    if loaded is None:
        loaded = runtime.cache["notices"] = load_notices(runtime.settings.mail_templates_file)
    return loaded  # type: ignore[no-any-return]


def _retries_left() -> int:
    from workers.jobs import _retries_left as left

    return left()


# --- intake -------------------------------------------------------------------------------------------


def sandbox(runtime: rt.Runtime) -> Sandbox:
    """This process's mail-parsing child (``inbox.sandbox``), held to the configured memory and time."""
    settings = runtime.settings
    wanted = (settings.mail_parse_max_memory_mb, settings.mail_parse_timeout_seconds)
    box = runtime.cache.get("mail-sandbox")
    if box is None or (box.memory_mb, box.timeout_seconds) != wanted:
        if box is not None:
            box.close()
        box = runtime.cache["mail-sandbox"] = Sandbox(memory_mb=wanted[0], timeout_seconds=wanted[1])
    return box  # type: ignore[no-any-return]


def worker_identity() -> str:
    """Who is running this job: the RQ worker's name (its heartbeat says whether it lives), else host and pid."""
    job = get_current_job()
    if job is not None and job.worker_name:
        return job.worker_name
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(runtime: rt.Runtime, me: str) -> Callable[[str], bool]:
    def alive(who: str) -> bool:
        if who == me:
            return True  # this process started it and is still here: no crash, e.g. a retry after an exception
        try:
            return is_alive(runtime.redis, who)
        except RedisError:
            return True  # unknown is not dead: never set a message aside on a guess

    return alive


def ingest_mail(inbound: int) -> str:
    """Parse one stored inbound message into a ticket, a reply, a bounce or nothing; idempotent.

    The attempt is recorded before parsing, in a transaction of its own: a later attempt that finds it
    unfinished and its worker dead quarantines the message instead of parsing it again (a poison message).
    """
    runtime = rt.current()
    key = f"{outbox.MAIL_IN}:{inbound}"
    me = worker_identity()
    with transaction(runtime.sessions) as s:
        done = intake.begin_attempt(s, inbound, by=me, alive=_alive(runtime, me), now=runtime.now())
        if done is not None:
            outbox.complete(s, key, runtime.now())
    if done is not None:
        return done
    box = sandbox(runtime)
    try:
        with transaction(runtime.sessions) as s:
            result = intake.process(
                s, inbound, settings=runtime.settings, policy=runtime.policy, now=runtime.now(), parser=box.parse
            )
            outbox.complete(s, key, runtime.now())
    except (SQLAlchemyError, OSError):
        _forget_attempt(runtime, inbound, me)
        raise  # the database or the disk: RQ tries again with backoff
    except Exception as exc:
        _forget_attempt(runtime, inbound, me)
        if _retries_left() > 0:
            raise
        return _quarantine_after_failure(runtime, inbound, key, exc)
    except BaseException:  # SystemExit of a worker told to stop at once
        _forget_attempt(runtime, inbound, me)
        raise
    return result  # the "new ticket created" notice goes to Redis once this job succeeded (its callback)


def _forget_attempt(runtime: rt.Runtime, inbound: int, me: str) -> None:
    # Python code still runs here: the worker did not die of this message, so the next attempt must not
    # take it for a poison message. Best effort: with the database away the mark stays, and the next
    # attempt still finds this worker alive by its heartbeat.
    with contextlib.suppress(SQLAlchemyError), transaction(runtime.sessions) as s:
        intake.end_attempt(s, inbound, me)


def _quarantine_after_failure(runtime: rt.Runtime, inbound: int, key: str, exc: Exception) -> str:
    # A message that breaks the intake itself: set aside, visibly, so it never holds anything up.
    with transaction(runtime.sessions) as s:
        row = s.get(InboundMail, inbound)
        if row is not None and row.state == "stored":
            intake.quarantine(row, f"processing failed: {type(exc).__name__}: {exc}", runtime.now())
        outbox.complete(s, key, runtime.now())
    log.exception("inbound mail %s quarantined after the intake failed", inbound, exc_info=exc)
    return "quarantined"


# --- outgoing -----------------------------------------------------------------------------------------


def support_phone(number: str) -> str:
    """The support number as people write it: 805-592-2500."""
    try:
        parsed = phonenumbers.parse(number, "US")
    except phonenumbers.NumberParseException:
        return number
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return national.replace("(", "").replace(") ", "-")


def _pacific(runtime: rt.Runtime, at: datetime | None, language: str | None = None) -> str:
    if at is None:
        return ""
    return local_time(at.astimezone(runtime.policy.timezone), language)


def template_values(runtime: rt.Runtime, ticket: Ticket, detail: dict[str, Any]) -> dict[str, Any]:
    """The variables every template can use (README lists them)."""
    settings = runtime.settings
    prio = Priority.parse(ticket.priority)
    target = runtime.policy.target(prio).first_response or timedelta(0)
    estimate = detail.get("estimate")
    language = ticket.language
    return {
        "company": settings.company_name,
        "number": ticket.number,
        "tag": mailrules.tag(ticket.number or 0, settings.mail_tag_prefix),
        # What the client was told the ticket is about: never a voicemail's transcript (ticketing.summaries).
        "summary": client_summary(ticket, tz=runtime.policy.timezone, translate=translator(language)) or "your request",
        "priority": prio.value,
        "priority_label": priority_label(prio.value, language),
        "source": ticket.source,
        "first_response_minutes": int(target.total_seconds() // 60),
        "first_response_due": _pacific(runtime, ticket.milestone("first_response").due_at, language),
        "support_phone": support_phone(settings.support_number),
        "contact_name": ticket.contact.name.split()[0] if ticket.contact is not None and ticket.contact.name else "",
        "client_name": ticket.client.name if ticket.client is not None else "",
        "actor": detail.get("actor") or "",
        "note": detail.get("note") or "",
        "question": detail.get("question") or "",
        "estimate": _pacific(runtime, datetime.fromisoformat(estimate), language) if estimate else "",
        "reopen_days": settings.mail_reopen_days,
        "reply": detail.get("reply") or "",
        "callback_number": _callback_number(ticket),
    }


def _callback_number(ticket: Ticket) -> str:
    """The number we will call the caller back on ("805-555-0188 ext. 12"), as the ticket has it when the notice
    is written; '' where there is none, or only a number heard in the message (a hint, never a promise)."""
    number, origin = phone.callback_of(ticket.callback_number, ticket.callback_origin, ticket.caller_number)
    if number is None or origin == phone.HEARD:
        return ""
    main, _, extension = number.partition(phone.EXTENSION)
    return support_phone(main) + (f" ext. {extension}" if extension else "")


def notify_ticket_event(ticket: int, event: str, key: str, detail: dict[str, Any] | None = None) -> str:
    """Render and send the client's notice of a ticket event (once per key)."""
    runtime = rt.current()
    config = notices(runtime)
    detail = detail or {}
    with transaction(runtime.sessions) as s:
        existing = s.scalars(select(TicketMessage).where(TicketMessage.key == key)).first()
        if existing is not None:
            row_id = existing.id
        else:
            t = lifecycle.get_ticket(s, ticket)
            address = conversation.requester_address(s, t)
            if not config.enabled.get(event, False) or address is None:
                outbox.complete(s, key, runtime.now())
                return "disabled" if address else "no address"
            rendered = config.render(event, template_values(runtime, t, detail), t.language)
            first_in = s.scalars(
                select(TicketMessage)
                .where(TicketMessage.ticket_id == t.id, TicketMessage.direction == "in")
                .order_by(TicketMessage.id)
                .limit(1)
            ).first()
            row = TicketMessage(
                ticket=t,
                key=key,
                direction="out",
                channel="email",
                event=event,
                author=SYSTEM,
                to_address=address,
                subject=mailrules.tagged_subject(rendered.subject, t.number or 0, runtime.settings.mail_tag_prefix),
                body=rendered.body,
                in_reply_to=first_in.message_id if first_in is not None and event == "created" else None,
                state="queued",
                automatic=True,
                created_at=runtime.now(),
                tries=0,
            )
            if event == "created" and first_in is not None and first_in.auto_reason:
                row.state = "suppressed"
                row.error = f"no automatic answer to an automatic message ({first_in.auto_reason})"
            s.add(row)
            s.flush()
            row_id = row.id
    return deliver(runtime, row_id, key)


def deliver_message(message: int) -> str:
    """Send one stored conversation message (a person's reply) by email or SMS."""
    runtime = rt.current()
    return deliver(runtime, message, f"{outbox.DELIVER}:{message}")


def deliver(runtime: rt.Runtime, row_id: int, outbox_key: str) -> str:
    """Send a stored outgoing message unless it was sent, the address bounces, or the cap is reached."""
    settings = runtime.settings
    now = runtime.now()
    with transaction(runtime.sessions) as s:
        row = s.get(TicketMessage, row_id, with_for_update=True)
        if row is None:
            return "unknown"
        if row.state in ("sent", "bounced", "suppressed", "failed"):
            _finish(s, row, outbox_key, now, audit=row.state == "suppressed" and row.tries == 0)
            return row.state
        t = row.ticket
        why_not = _why_not(s, runtime, row, now)
        if why_not is not None:
            row.state = "suppressed"
            row.error = why_not
            _finish(s, row, outbox_key, now, audit=True)
            return "suppressed"
        row.state = "sending"
        row.tries = (row.tries or 0) + 1
        values = template_values(runtime, t, {"reply": row.body, "actor": row.author})
        if row.channel == "email":
            if not row.message_id:
                row.message_id = new_message_id(settings.inbox_address.rsplit("@", 1)[-1] or "localhost")
            if row.event == "reply":
                body = notices(runtime).render("reply", values, t.language).body
            else:
                body = row.body
            message = build_email(runtime, row, body, t.number or 0)
        else:
            sms_body = notices(runtime).render("reply_sms", values, t.language).body.strip()[:1500]
        channel, to = row.channel, row.to_address or ""
    try:
        if channel == "email":
            where = send_message(message, smtp_url=settings.smtp_url, dev_mailbox=settings.dev_mailbox_dir)
        else:
            from providers.twilio_rest import TwilioSendError, make_twilio_client, send_sms

            try:
                where = "twilio:" + send_sms(
                    make_twilio_client(settings), from_=settings.support_number, to=to, body=sms_body
                )
            except TwilioSendError as exc:
                raise MailSendError(str(exc), retryable=exc.retryable) from exc
    except MailSendError as exc:
        retry = exc.retryable and _retries_left() > 0
        with transaction(runtime.sessions) as s:
            row = s.get(TicketMessage, row_id)
            assert row is not None
            row.error = str(exc)[:1000]
            row.state = "queued" if retry else "failed"
            if not retry:
                _finish(s, row, outbox_key, runtime.now(), audit=True)
        if retry:
            log.warning("message %s not sent yet, retrying: %s", row_id, exc)
            raise
        return "failed"
    # The server accepted it (250): record that at once, in a short transaction of its own. A crash before
    # this commits sends the message again on the retry (at least once), with the same stored Message-ID.
    with transaction(runtime.sessions) as s:
        row = s.get(TicketMessage, row_id)
        assert row is not None
        row.state = "sent"
        row.sent_at = runtime.now()
        row.error = None
        audit_log.audit(
            s,
            row.ticket,
            actor=SYSTEM,
            action="email sent" if channel == "email" else "sms sent",
            now=runtime.now(),
            detail={"event": row.event, "to": to if channel == "email" else phone.mask(to), "via": where[:200]},
        )
        outbox.complete(s, outbox_key, runtime.now())
    return "sent"


def _why_not(s: Any, runtime: rt.Runtime, row: TicketMessage, now: datetime) -> str | None:
    settings = runtime.settings
    if row.event == "reply" and not notices(runtime).enabled.get("reply", True):
        return "replies are switched off (notify.reply in the notices file)"
    if row.channel == "sms":
        return texts.refusal(s, row.to_address)  # a number that texted STOP gets no SMS at all
    if row.channel != "email":
        return None
    bounced = conversation.bouncing(s, row.to_address)
    if bounced is not None:
        return (
            f"{row.to_address} is bouncing since {bounced.bouncing_since:%Y-%m-%d %H:%M} UTC: {bounced.bounce_reason}"
        )
    if row.automatic:
        window = timedelta(minutes=settings.mail_cap_window_minutes)
        sent = s.scalars(
            select(TicketMessage.sent_at).where(
                TicketMessage.ticket_id == row.ticket_id,
                TicketMessage.to_address == row.to_address,
                TicketMessage.direction == "out",
                TicketMessage.automatic.is_(True),
                TicketMessage.sent_at.is_not(None),
                TicketMessage.sent_at >= now - window,
            )
        ).all()
        if mailrules.over_cap(list(sent), now, settings.mail_cap_per_ticket, window):
            return (
                f"cap reached: {settings.mail_cap_per_ticket} automatic messages to {row.to_address} about this "
                f"ticket in {settings.mail_cap_window_minutes} minutes"
            )
    return None


def _finish(s: Any, row: TicketMessage, outbox_key: str, now: datetime, *, audit: bool) -> None:
    if audit:
        audit_log.audit(
            s,
            row.ticket,
            actor=SYSTEM,
            action=f"{'email' if row.channel == 'email' else 'sms'} {'not sent' if row.state == 'suppressed' else 'failed'}",
            now=now,
            detail={"event": row.event, "to": row.to_address},
            reason=row.error,
        )
    outbox.complete(s, outbox_key, now)


def build_email(runtime: rt.Runtime, row: TicketMessage, body: str, number: int) -> EmailMessage:
    """The outgoing message: ticket tag in the subject, stored Message-ID, Auto-Submitted, plain text."""
    settings = runtime.settings
    msg = EmailMessage()
    # Every value made one line: a line break in a stored subject (a summary typed or mailed with one) would make
    # the email package refuse the header, and the message would never go out.
    msg["From"] = one_line(settings.mail_from)
    msg["To"] = one_line(row.to_address)
    if settings.inbox_address and settings.inbox_address not in settings.mail_from.lower():
        msg["Reply-To"] = one_line(settings.inbox_address)
    msg["Subject"] = one_line(row.subject)
    msg["Date"] = format_datetime(runtime.now())
    msg["Message-ID"] = one_line(row.message_id)
    if row.in_reply_to:
        msg["In-Reply-To"] = one_line(row.in_reply_to)
        msg["References"] = one_line(row.in_reply_to)
    # RFC 3834: a notice answering the client's mail is auto-replied, the others auto-generated.
    msg["Auto-Submitted"] = "auto-replied" if row.in_reply_to else "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"  # Exchange/Outlook: no out-of-office back to us
    msg[OWN_MAIL_HEADER] = str(number)
    msg.set_content(body)
    return msg

"""Command-line tools: ``flask --app wsgi <group> <command>``."""

from __future__ import annotations

import tomllib
from datetime import datetime, timedelta
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import func, select

from inbox import intake
from runtime.web import rt as _runtime
from ticketing import conversation, lifecycle, milestones, phone, queue
from ticketing import directory as directory_rules
from ticketing.db import transaction
from ticketing.errors import DomainError
from ticketing.models import Client, Contact, Source, TicketMessage
from web.commands.transactions import changing


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc))


directory = AppGroup("directory", help="Clients and contacts, so a caller ID resolves to a client.")
tickets = AppGroup("ticket", help="Look at and change tickets.")
sla = AppGroup("sla", help="SLA clocks.")
mail = AppGroup("mail", help="The email channel.")


@directory.command("add-client")
@click.argument("name")
@click.option("--number", help="The client's main phone number.")
def add_client(name: str, number: str | None) -> None:
    """Add a client."""
    with transaction(_runtime().sessions) as session:
        session.add(Client(name=name, main_number=phone.normalize(number)))
    click.echo(f"client {name} added")


@directory.command("add-contact")
@click.argument("client")
@click.argument("name")
@click.option("--phone", "number", help="Direct or mobile number (caller ID).")
@click.option("--email", help="Work email address (the client portal signs in with it).")
@click.option(
    "--primary", is_flag=True, help="The client's primary contact: sees every ticket of the client in the portal."
)
def add_contact(client: str, name: str, number: str | None, email: str | None, primary: bool) -> None:
    """Add a contact to a client."""
    e164 = phone.normalize(number)
    if number and e164 is None:
        _fail(ValueError(f"{number!r} is not a phone number"))
    with transaction(_runtime().sessions) as session:
        owner = session.scalars(select(Client).where(Client.name == client)).first()
        if owner is None:
            _fail(ValueError(f"no client called {client!r}"))
        session.add(Contact(client=owner, name=name, phone=e164, email=email, primary=primary))
    click.echo(f"contact {name} added to {client}")


@directory.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_directory(path: Path) -> None:
    """Add or update clients and contacts from a TOML file (see config/directory.example.toml).

    Contacts are matched by email address, else phone number: importing the file again updates them."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        _fail(ValueError(f"{path}: not a TOML file ({exc})"))
    with changing(_runtime().sessions) as session:
        result = directory_rules.import_directory(session, data)
    click.echo(str(result))


@directory.command("list")
def list_contacts() -> None:
    """Every client and its contacts (disabled ones marked)."""
    with _runtime().sessions() as session:
        for client in session.scalars(select(Client).order_by(Client.name)):
            click.echo(f"{client.name}  {client.main_number or '-'}")
            for c in client.contacts:
                marks = " (primary)" if c.primary else ""
                marks += "" if c.active else " DISABLED"
                click.echo(f"  #{c.id:<5} {c.name:<28} {c.email or '-':<32} {c.phone or '-'}{marks}")


@directory.command("disable")
@click.argument("contact")
def disable_contact(contact: str) -> None:
    """Disable a contact (email, phone or #id): it keeps its tickets but matches no call, mail or portal sign-in."""
    _set_contact_active(contact, False)


@directory.command("enable")
@click.argument("contact")
def enable_contact(contact: str) -> None:
    """Enable a disabled contact again (email, phone or #id)."""
    _set_contact_active(contact, True)


def _set_contact_active(key: str, active: bool) -> None:
    with changing(_runtime().sessions) as session:
        contact = directory_rules.contact_by_key(session, key)
        changed = directory_rules.set_active(session, contact, active)
        name = contact.name
    state = "enabled" if active else "disabled"
    click.echo(f"contact {name} {state}" if changed else f"contact {name} was already {state}")


@tickets.command("list")
def list_tickets() -> None:
    """The open queue: by priority, then first come first served."""
    rt = _runtime()
    with rt.sessions() as session:
        now = rt.now()
        for t in queue.open_queue(session):
            nxt = milestones.next_milestone(t)
            due = f"{nxt.name} due {nxt.due_at.astimezone(rt.policy.timezone):%a %m-%d %H:%M}" if nxt else "-"
            client = t.client.name if t.client else "unknown caller"
            late = " BREACHED" if nxt and nxt.due_at and nxt.due_at < now else ""
            click.echo(f"{t.number}  {t.priority}  {t.status:<18} {t.source:<9} {client:<24} {due}{late}  {t.summary}")


@tickets.command("open")
@click.option("--priority", default="P3", show_default=True)
@click.option("--summary", required=True)
@click.option("--caller", help="Caller's phone number.")
@click.option("--source", type=click.Choice([s.value for s in Source]), default="phone", show_default=True)
@click.option("--by", "actor", default="coordinator", show_default=True)
def open_ticket(priority: str, summary: str, caller: str | None, source: str, actor: str) -> None:
    """Open a ticket by hand (e.g. for a call the coordinator answered)."""
    rt = _runtime()
    with changing(rt.sessions, also=(ValueError,)) as session:
        t = lifecycle.open_ticket(
            session,
            policy=rt.policy,
            now=rt.now(),
            priority=priority,
            source=source,
            actor=actor,
            caller_number=caller,
            summary=summary,
        )
        number = t.number
    click.echo(f"ticket {number} opened")


@tickets.command("priority")
@click.argument("number")
@click.argument("priority")
@click.option("--reason", required=True)
@click.option("--by", "actor", default="coordinator", show_default=True)
def change_priority(number: str, priority: str, reason: str, actor: str) -> None:
    """Change a ticket's priority; the SLA due times are recomputed."""
    rt = _runtime()
    with changing(rt.sessions, also=(ValueError,)) as session:
        t = lifecycle.get_ticket(session, number)
        lifecycle.change_priority(session, t, priority, reason=reason, actor=actor, now=rt.now(), policy=rt.policy)
    click.echo(f"ticket {number} is now {priority.upper()}")


@tickets.command("mail-deliverable")
@click.argument("number")
@click.option("--by", "actor", default="coordinator", show_default=True)
def mail_deliverable(number: str, actor: str) -> None:
    """Clear the bouncing mark of the ticket's email address: mail to it resumes (audited on the ticket)."""
    rt = _runtime()
    with changing(rt.sessions, also=(ValueError,)) as session:
        t = lifecycle.get_ticket(session, number)
        address = conversation.clear_bouncing(session, t, actor=actor, now=rt.now())
    click.echo(f"{address} marked deliverable again: mail to it resumes")


@tickets.command("retry-transcription")
@click.argument("number")
@click.option("--by", "actor", default="coordinator", show_default=True)
def retry_transcription(number: str, actor: str) -> None:
    """Transcribe a ticket's recording again: a failed one, or one pending without progress (ticketing.voicemail)."""
    from ticketing import voicemail
    from workers.dispatch import dispatch_pending

    rt = _runtime()
    try:
        with transaction(rt.sessions) as session:
            stale = timedelta(minutes=rt.settings.transcription_pending_minutes)
            ticket = lifecycle.get_ticket(session, number)
            voicemail.retry_transcription(session, ticket, actor=actor, now=rt.now(), stale_after=stale)
    except (DomainError, ValueError) as exc:
        _fail(exc)
    try:
        dispatch_pending(rt)
    except Exception:  # noqa: BLE001 - the sweeper hands it to Redis later
        click.echo("queued; Redis is unavailable, the sweeper will hand the job over")
        return
    click.echo(f"ticket {number}: transcription queued")


@mail.command("in")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def mail_in(path: Path) -> None:
    """Feed a raw message (.eml) to the email intake, as a provider webhook or the IMAP poller would."""
    from workers.dispatch import dispatch_pending

    rt = _runtime()
    settings = rt.settings
    with transaction(rt.sessions) as session:
        stored = intake.store_raw(
            session,
            mailbox=intake.mailbox_key(settings.inbox_address),
            raw=path.read_bytes(),
            via="cli",
            now=rt.now(),
            max_bytes=settings.mail_max_bytes,
        )
    if not stored.new:
        click.echo(f"message {stored.id}: stored before, nothing new")
        return
    try:
        dispatch_pending(rt)
    except Exception:  # noqa: BLE001 - the sweeper hands it to Redis later
        click.echo(f"message {stored.id} stored; Redis is unavailable, the sweeper will hand the job over")
        return
    click.echo(f"message {stored.id} stored; the worker turns it into a ticket or a reply")


@mail.command("bounce")
@click.argument("number")
@click.option("--wait", default=30.0, show_default=True, help="Seconds to wait for the worker to read the report.")
def mail_bounce(number: str, wait: float) -> None:
    """Development mode: the last mail sent to the ticket's address comes back undeliverable.

    A mail server's delivery-status report naming that message enters the intake (as from a provider or IMAP);
    the worker then marks the address bouncing, which `ticket mail-deliverable` clears."""
    import time

    from workers.dispatch import dispatch_pending

    rt = _runtime()
    settings = rt.settings
    if not settings.dev_mode:
        _fail(ValueError("only in development mode: real bounces come from the mail server"))
    with rt.sessions() as session:
        try:
            ticket = lifecycle.get_ticket(session, number)
        except (DomainError, ValueError) as exc:
            _fail(exc)
        address = conversation.requester_address(session, ticket)
        sent = session.scalars(
            select(TicketMessage)
            .where(
                TicketMessage.ticket_id == ticket.id,
                TicketMessage.direction == "out",
                TicketMessage.channel == "email",
                TicketMessage.message_id.is_not(None),
                func.lower(TicketMessage.to_address) == (address or "").lower(),
            )
            .order_by(TicketMessage.id.desc())
        ).first()
        if address is None or sent is None:
            _fail(ValueError(f"ticket {number}: no mail was sent to {address or 'an email address of it'} yet"))
        assert sent is not None and address is not None
        raw = delivery_failure(
            recipient=address, original_message_id=str(sent.message_id), subject=sent.subject, now=rt.now()
        )
    with transaction(rt.sessions) as session:
        stored = intake.store_raw(
            session,
            mailbox=intake.mailbox_key(settings.inbox_address),
            raw=raw,
            via="dev",
            now=rt.now(),
            max_bytes=settings.mail_max_bytes,
        )
    dispatch_pending(rt)
    deadline = time.monotonic() + wait
    while True:
        with rt.sessions() as session:
            if conversation.bouncing(session, address) is not None:
                break
        if time.monotonic() > deadline:
            _fail(
                RuntimeError(f"message {stored.id} stored, but no worker read it within {wait:.0f} s: is one running?")
            )
        time.sleep(0.2)
    click.echo(
        f"{address} is bouncing (report #{stored.id}): no more mail to it until `ticket mail-deliverable {number}`"
    )


def delivery_failure(*, recipient: str, original_message_id: str, subject: str, now: datetime) -> bytes:
    """A mail server's delivery-status report (RFC 3464): ``recipient`` rejected the message sent as
    ``original_message_id``."""
    from email.utils import format_datetime, make_msgid

    for value in (recipient, original_message_id, subject):
        if "\r" in value or "\n" in value:
            raise ValueError("a header value of the report has a line break")
    boundary = "report-" + make_msgid().strip("<>").split("@")[0]
    text = f"""From: Mail Delivery System <MAILER-DAEMON@localhost>
To: helpdesk
Subject: Undelivered Mail Returned to Sender
Date: {format_datetime(now)}
Message-ID: {make_msgid(domain="localhost")}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"

--{boundary}
Content-Type: text/plain; charset=us-ascii

Your message could not be delivered (development mode: a simulated bounce).

--{boundary}
Content-Type: message/delivery-status

Reporting-MTA: dns; localhost

Final-Recipient: rfc822; {recipient}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User unknown

--{boundary}
Content-Type: text/rfc822-headers

To: {recipient}
Subject: {subject}
Message-ID: {original_message_id}

--{boundary}--
"""
    return text.replace("\n", "\r\n").encode("utf-8")


@sla.command("breaching")
@click.option("--within", default=30, show_default=True, help="Minutes ahead.")
def breaching(within: int) -> None:
    """Milestones already breached (the queue's Breached filter) or due within N minutes."""
    rt = _runtime()
    tz = rt.policy.timezone
    with rt.sessions() as session:
        for t, m in queue.breaching(session, rt.now(), timedelta(minutes=within)):
            assert m.due_at is not None
            met = f"  met {m.met_at.astimezone(tz):%a %m-%d %H:%M %Z}" if m.met_at is not None else ""
            click.echo(f"{t.number}  {t.priority}  {m.name:<16} due {m.due_at.astimezone(tz):%a %m-%d %H:%M %Z}{met}")


def register(app: Flask) -> None:
    """Attach the command groups to the app."""
    for group in (directory, tickets, sla, mail):
        app.cli.add_command(group)

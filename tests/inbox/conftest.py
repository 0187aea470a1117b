"""Fixtures of the email tests: a directory of clients, a real SMTP server, and running the mail jobs."""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default

import pytest
from sqlalchemy import select

import runtime as rt
from inbox import intake
from runtime import Runtime
from ticketing import outbox
from ticketing.db import transaction
from ticketing.models import Client, Contact, InboundMail, OutboxMessage, Ticket
from workers import mail as mail_jobs

INBOX = "help@itech.example"


@pytest.fixture
def desk(runtime: Runtime) -> Iterator[Desk]:
    runtime.settings = runtime.settings.with_overrides(
        mail_from=f"ITECH Solutions Support <{INBOX}>",
        dispatch_after_response=False,
        mail_attachment_max_bytes=64 * 1024,
    )
    rt.install(runtime)
    with transaction(runtime.sessions) as s:
        acme = Client(name="Acme Dental", main_number="+18055550100")
        s.add_all(
            [
                Contact(client=acme, name="Dana Whitfield", phone="+18055550142", email="dana@acme-dental.example"),
                Contact(client=acme, name="Luis Ortega", phone="+18055550143", email="luis@acme-dental.example"),
                Contact(client=acme, name="Gone Person", email="gone@acme-dental.example"),
            ]
        )
        pismo = Client(name="Pismo Title", main_number="+18055550200")
        s.add(Contact(client=pismo, name="Priya Raman", phone="+18055550211", email="priya@pismotitle.example"))
    yield Desk(runtime)
    rt.install(None)


class Desk:
    """Drives the intake as the worker would: store raw, run the queued mail jobs, read what was sent."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def receive(self, raw: bytes, via: str = "imap") -> int:
        with transaction(self.runtime.sessions) as s:
            stored = intake.store_raw(
                s,
                mailbox=INBOX,
                raw=raw,
                via=via,
                now=self.runtime.now(),
                max_bytes=self.runtime.settings.mail_max_bytes,
            )
        self.run_jobs()
        return stored.id

    def run_jobs(self) -> list[str]:
        """Run every unfinished mail job in the outbox, as the worker would, until none is left."""
        done: list[str] = []
        for _ in range(50):
            with self.runtime.sessions() as s:
                rows = s.scalars(
                    select(OutboxMessage)
                    .where(OutboxMessage.completed_at.is_(None))
                    .where(OutboxMessage.kind.in_([outbox.MAIL_IN, outbox.NOTIFY, outbox.DELIVER]))
                    .order_by(OutboxMessage.id)
                ).all()
                work = [(m.kind, m.key, dict(m.payload)) for m in rows]
            if not work:
                return done
            for kind, key, payload in work:
                if kind == outbox.MAIL_IN:
                    mail_jobs.ingest_mail(**payload)
                elif kind == outbox.NOTIFY:
                    mail_jobs.notify_ticket_event(**payload)
                else:
                    mail_jobs.deliver_message(**payload)
                done.append(key)
        raise AssertionError("mail jobs did not settle")

    def sent(self) -> list[EmailMessage]:
        """Every message in the development Maildir, oldest first."""
        box = mailbox.Maildir(self.runtime.settings.dev_mailbox_dir, create=True)
        messages = [BytesParser(policy=default).parsebytes(box.get_bytes(k)) for k in box.keys()]
        return sorted(messages, key=lambda m: (m["Date"].datetime, str(m["Subject"])))

    def tickets(self) -> list[Ticket]:
        with self.runtime.sessions() as s:
            return list(s.scalars(select(Ticket).order_by(Ticket.id)).all())

    def inbound(self, row_id: int) -> InboundMail:
        with self.runtime.sessions() as s:
            row = s.get(InboundMail, row_id)
            assert row is not None
            s.expunge(row)
            return row

"""Who may join a ticket by mail, where its replies go, forged bounces, dedupe and noreply senders.

Every message arrives through the signed Mailgun webhook, as in production, and is parsed by the real job.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import OperationalError

from tests.conftest import POSTGRES_URL, FixedClock
from tests.inbox import fixtures
from tests.inbox.conftest import Desk
from tests.inbox.test_webhooks import mailgun_form, web  # noqa: F401 - the fixture
from ticketing import conversation, lifecycle, mailrules
from ticketing.db import normalize_url, transaction
from ticketing.models import AuditEntry, InboundMail, MailAddress, Ticket, TicketMessage

ATTACKER = "attacker@evil.example"


def post(desk: Desk, web: FlaskClient, raw: bytes) -> InboundMail:  # noqa: F811
    """Post one message through the signed webhook, run the jobs, and return its stored row."""
    response = web.post("/mail/inbound/mailgun/mime", data=mailgun_form(desk, raw))
    assert response.status_code == 200, response.get_data(as_text=True)
    desk.run_jobs()
    return desk.inbound(response.json["stored"])


def dana_opens(desk: Desk, web: FlaskClient) -> Ticket:  # noqa: F811
    """Dana (a directory contact of Acme Dental) mails the helpdesk: her ticket, and its confirmation."""
    post(desk, web, fixtures.multipart_alternative())
    (ticket,) = desk.tickets()
    return ticket


def conversation_of(desk: Desk, number: int) -> tuple[list[TicketMessage], list[str]]:
    """What the client's portal page of the ticket shows of the conversation: its messages and its files."""
    with desk.runtime.sessions() as s:
        t = lifecycle.get_ticket(s, number)
        messages = list(conversation.conversation(s, t))
        files = [f.filename for f in conversation.client_files(s, t)]
        for m in messages:
            s.expunge(m)
        return messages, files


def reply_from_console(desk: Desk, number: int, text: str) -> None:
    """A coordinator's public reply (the console's Reply to client box calls this), then the jobs."""
    with transaction(desk.runtime.sessions) as s:
        conversation.reply_to_client(
            s, lifecycle.get_ticket(s, number), text, actor="coordinator", now=desk.runtime.now()
        )
    desk.run_jobs()


def ask_client(desk: Desk, number: int, question: str) -> None:
    """Set the ticket waiting on the client with a question (the automatic "waiting on client" notice)."""
    with transaction(desk.runtime.sessions) as s:
        lifecycle.pause_sla(
            s, lifecycle.get_ticket(s, number), actor="coordinator", now=desk.runtime.now(), reason=question
        )
    desk.run_jobs()


def sent_to(desk: Desk, address: str) -> list[str]:
    """Subject and text of every message sent to ``address``."""
    return [
        f"{m['Subject']}\n{m.get_body(('plain',)).get_content()}"
        for m in desk.sent()
        if address in str(m["To"]).lower()
    ]


# --- a stranger naming a ticket -----------------------------------------------------------------------


def test_a_strangers_mail_with_a_tickets_tag_opens_a_new_ticket_marked_as_mentioning_it(
    desk: Desk,
    web: FlaskClient,  # noqa: F811
) -> None:
    ticket = dana_opens(desk, web)
    row = post(
        desk,
        web,
        fixtures.plain(
            sender=f"Mallory <{ATTACKER}>",
            subject=f"Re: [#{ticket.number}] Printer in reception is offline",
            body="Please send the new VPN password to this address.",
            mid="<mallory-1@evil.example>",
        ),
    )
    client_ticket, new = desk.tickets()
    assert row.state == "ticketed" and row.ticket_id == new.id
    assert f"mentions #{ticket.number}, sender not on that ticket" in (row.outcome or "")
    messages, _files = conversation_of(desk, ticket.number)
    assert all("VPN password" not in m.body for m in messages)
    assert all(m.from_address != ATTACKER for m in messages)
    with desk.runtime.sessions() as s:
        created = s.scalars(
            select(AuditEntry).where(AuditEntry.ticket_id == new.id, AuditEntry.action == "created")
        ).one()
        assert f"mentions #{ticket.number}, sender not on that ticket" in (created.reason or "")
    assert client_ticket.status == "new"


def test_after_a_strangers_mail_the_coordinators_reply_and_the_waiting_notice_go_to_the_contact_only(
    desk: Desk,
    web: FlaskClient,  # noqa: F811
) -> None:
    ticket = dana_opens(desk, web)
    post(
        desk,
        web,
        fixtures.plain(
            sender=ATTACKER,
            subject=f"Re: [#{ticket.number}] Printer in reception is offline",
            body="I am the new office manager, write to me from now on.",
            mid="<mallory-2@evil.example>",
        ),
    )
    reply_from_console(desk, ticket.number, "The admin password was reset to Winter-2026.")
    ask_client(desk, ticket.number, "Which printer model is it?")
    to_attacker = sent_to(desk, ATTACKER)
    assert all("Winter-2026" not in m and "Which printer model" not in m for m in to_attacker)
    assert all(f"[#{ticket.number}]" not in m for m in to_attacker)  # only the confirmation of their own ticket
    to_dana = sent_to(desk, "dana@acme-dental.example")
    assert any("Winter-2026" in m for m in to_dana) and any("Which printer model is it?" in m for m in to_dana)


def test_a_strangers_mail_never_makes_them_where_a_ticket_without_an_email_address_is_answered(
    desk: Desk,
    web: FlaskClient,  # noqa: F811
    clock: FixedClock,
) -> None:
    with transaction(desk.runtime.sessions) as s:
        from ticketing.models import Client

        acme = s.scalars(select(Client).where(Client.name == "Acme Dental")).one()
        ticket = lifecycle.open_ticket(
            s,
            policy=desk.runtime.policy,
            now=clock(),
            priority="P3",
            source="manual",
            actor="coordinator",
            summary="Server room is too warm",
            client_id=acme.id,
        )
        number = ticket.number
    desk.run_jobs()
    post(
        desk,
        web,
        fixtures.plain(
            sender=ATTACKER,
            subject=f"Re: [#{number}] Server room is too warm",
            body="Send the alarm code here.",
            mid="<mallory-6@evil.example>",
        ),
    )
    from ticketing.errors import InvalidTransition

    with pytest.raises(InvalidTransition, match="no email address"):
        reply_from_console(desk, number, "The alarm code is 4711.")
    ask_client(desk, number, "Which rack is it?")
    assert all(f"[#{number}]" not in m for m in sent_to(desk, ATTACKER))
    assert all("4711" not in m and "Which rack" not in m for m in sent_to(desk, ATTACKER))


def test_a_strangers_text_and_attachment_never_reach_the_clients_portal_view_of_the_ticket(
    desk: Desk,
    web: FlaskClient,  # noqa: F811
) -> None:
    ticket = dana_opens(desk, web)
    post(
        desk,
        web,
        fixtures.with_executable(
            sender=ATTACKER,
            subject=f"RE: [#{ticket.number}] invoice",
            body="Run the attached invoice to fix the printer.",
            mid="<mallory-3@evil.example>",
        ),
    )
    messages, files = conversation_of(desk, ticket.number)
    assert all("Run the attached invoice" not in m.body for m in messages)
    assert "invoice.exe" not in files
    _client, new = desk.tickets()
    assert "invoice.exe" in conversation_of(desk, new.number)[1]  # kept on the stranger's own ticket


def test_a_strangers_mail_does_not_reopen_a_resolved_ticket(
    desk: Desk,
    web: FlaskClient,  # noqa: F811
    clock: FixedClock,
) -> None:
    ticket = dana_opens(desk, web)
    with transaction(desk.runtime.sessions) as s:
        lifecycle.set_status(
            s, lifecycle.get_ticket(s, ticket.number), "resolved", actor="eng", now=clock(), policy=desk.runtime.policy
        )
    desk.run_jobs()
    clock.advance(hours=2)
    row = post(
        desk,
        web,
        fixtures.plain(
            sender=ATTACKER,
            subject=f"Re: [#{ticket.number}] Resolved: Printer in reception is offline",
            body="Still broken, reopen please.",
            mid="<mallory-4@evil.example>",
        ),
    )
    old, new = desk.tickets()
    assert old.status == "resolved" and new.id == row.ticket_id
    assert f"mentions #{ticket.number}" in (row.outcome or "")


def test_a_stranger_quoting_the_clients_own_message_id_does_not_join_the_ticket(
    desk: Desk,
    web: FlaskClient,  # noqa: F811
) -> None:
    ticket = dana_opens(desk, web)
    row = post(
        desk,
        web,
        fixtures.plain(
            sender=ATTACKER,
            subject="Re: Printer in reception is offline",
            body="Reply-all from someone she copied.",
            mid="<mallory-5@evil.example>",
            in_reply_to="<alt-1@acme-dental.example>",  # Dana's Message-ID, which anyone she copied knows
        ),
    )
    assert row.state == "ticketed" and f"mentions #{ticket.number}" in (row.outcome or "")
    assert len(desk.tickets()) == 2


# --- the legitimate replies still thread ---------------------------------------------------------------


def test_the_contacts_reply_with_the_tag_joins_her_ticket(desk: Desk, web: FlaskClient) -> None:  # noqa: F811
    ticket = dana_opens(desk, web)
    row = post(desk, web, fixtures.reply_with_tag_only(f"[#{ticket.number}]"))
    assert row.state == "threaded" and len(desk.tickets()) == 1
    assert "serial CN123" in conversation_of(desk, ticket.number)[0][-1].body


def test_a_reply_naming_our_message_id_joins_the_ticket_but_replies_still_go_to_the_contact(
    desk: Desk,
    web: FlaskClient,  # noqa: F811
) -> None:
    ticket = dana_opens(desk, web)
    confirmation_id = desk.sent()[0]["Message-ID"]
    row = post(
        desk,
        web,
        fixtures.plain(
            sender="Dana W <dana.whitfield@gmail.com>",
            subject="Re: New ticket created",
            body="Writing from my phone: it is the HP.",
            mid="<phone-1@mail.gmail.com>",
            in_reply_to=confirmation_id,
            reply_to="dana.whitfield@gmail.com",
        ),
    )
    assert row.state == "threaded" and len(desk.tickets()) == 1
    reply_from_console(desk, ticket.number, "Thanks, a technician is on the way.")
    assert sent_to(desk, "dana.whitfield@gmail.com") == []
    assert any("technician is on the way" in m for m in sent_to(desk, "dana@acme-dental.example"))


def test_a_colleague_at_the_clients_domain_joins_the_ticket_and_replies_stay_with_the_contact(
    desk: Desk,
    web: FlaskClient,  # noqa: F811
) -> None:
    ticket = dana_opens(desk, web)
    row = post(
        desk,
        web,
        fixtures.plain(
            sender="Jose Munoz <jose@acme-dental.example>",
            subject=f"Re: [#{ticket.number}] Printer in reception is offline",
            body="Dana is out today; the printer is still offline.",
            mid="<jose-1@acme-dental.example>",
        ),
    )
    assert row.state == "threaded" and len(desk.tickets()) == 1
    reply_from_console(desk, ticket.number, "We will call at noon.")
    assert sent_to(desk, "jose@acme-dental.example") == []
    assert any("We will call at noon." in m for m in sent_to(desk, "dana@acme-dental.example"))


def test_an_unknown_sender_keeps_their_own_ticket_by_its_tag(desk: Desk, web: FlaskClient) -> None:  # noqa: F811
    post(desk, web, fixtures.no_message_id())
    (ticket,) = desk.tickets()
    row = post(
        desk,
        web,
        fixtures.plain(
            sender="someone@unknown-company.example",
            subject=f"Re: [#{ticket.number}] Help with my laptop",
            body="It beeps three times.",
            mid="<beeps@unknown-company.example>",
        ),
    )
    assert row.state == "threaded" and len(desk.tickets()) == 1
    reply_from_console(desk, ticket.number, "Three beeps: the memory. We will swap it.")
    assert any("swap it" in m for m in sent_to(desk, "someone@unknown-company.example"))


# --- bounces ---------------------------------------------------------------------------------------------


def test_a_delivery_report_naming_no_message_we_sent_marks_nothing(
    desk: Desk,
    web: FlaskClient,  # noqa: F811
) -> None:
    ticket = dana_opens(desk, web)
    row = post(
        desk,
        web,
        fixtures.forged_bounce(["dana@acme-dental.example", "luis@acme-dental.example"], "<made-up@itech.example>"),
    )
    assert row.state == "ignored"
    assert row.outcome == "delivery-status report naming no message we sent: ignored"
    with desk.runtime.sessions() as s:
        assert s.scalars(select(MailAddress)).all() == []
    reply_from_console(desk, ticket.number, "Still reaching you.")
    assert any("Still reaching you." in m for m in sent_to(desk, "dana@acme-dental.example"))


def test_a_delivery_report_marks_only_the_address_the_bounced_message_went_to(
    desk: Desk,
    web: FlaskClient,  # noqa: F811
) -> None:
    ticket = dana_opens(desk, web)
    confirmation_id = desk.sent()[0]["Message-ID"]
    row = post(
        desk,
        web,
        fixtures.forged_bounce(["dana@acme-dental.example", "luis@acme-dental.example"], confirmation_id),
    )
    assert row.state == "bounce"
    with desk.runtime.sessions() as s:
        assert [a.address for a in s.scalars(select(MailAddress)).all()] == ["dana@acme-dental.example"]
    assert "luis@acme-dental.example" not in (row.outcome or "") or "not a recipient" in (row.outcome or "")
    assert conversation_of(desk, ticket.number)[0][1].state == "bounced"


def test_a_delivery_report_about_a_message_we_sent_someone_else_marks_nothing(
    desk: Desk,
    web: FlaskClient,  # noqa: F811
) -> None:
    dana_opens(desk, web)
    confirmation_id = desk.sent()[0]["Message-ID"]
    row = post(desk, web, fixtures.forged_bounce(["luis@acme-dental.example"], confirmation_id))
    assert row.state == "ignored" and "luis@acme-dental.example" in (row.outcome or "")
    with desk.runtime.sessions() as s:
        assert s.scalars(select(MailAddress)).all() == []


# --- dedupe --------------------------------------------------------------------------------------------


def test_two_different_messages_without_message_id_and_the_same_five_headers_are_two_tickets(
    desk: Desk,
    web: FlaskClient,  # noqa: F811
) -> None:
    first = fixtures.no_message_id()
    second = first.replace(b"My laptop will not boot.", b"And now the monitor is black too.")
    assert post(desk, web, first).id != post(desk, web, second).id
    assert len(desk.tickets()) == 2


# --- noreply senders -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "gmail-noreply@google.com",
        "calendar-no-reply@example.com",
        "alerts.donotreply@bank.example",
        "x-do-not-reply-y@vendor.example",
        "NoReply@vendor.example",
    ],
)
def test_noreply_anywhere_in_the_local_part_is_a_machine_sender(address: str) -> None:
    assert mailrules.is_machine_sender(address)


@pytest.mark.parametrize("address", ["nora.reply@acme-dental.example", "replyguy@example.com", "norepl@example.com"])
def test_people_whose_names_merely_resemble_noreply_are_not_machines(address: str) -> None:
    assert not mailrules.is_machine_sender(address)


def test_a_noreply_sender_with_a_persons_reply_to_gets_no_automatic_answer_anywhere(
    desk: Desk,
    web: FlaskClient,  # noqa: F811
) -> None:
    row = post(
        desk,
        web,
        fixtures.plain(
            sender="Google Calendar <gmail-noreply@google.com>",
            subject="Invitation: printer maintenance",
            body="Priya invited you to printer maintenance.",
            mid="<calendar-1@google.com>",
            reply_to="priya@pismotitle.example",
        ),
    )
    assert row.state == "ticketed" and "no automatic answer (machine sender gmail-noreply@google.com)" in (
        row.outcome or ""
    )
    assert desk.sent() == []
    (ticket,) = desk.tickets()
    with desk.runtime.sessions() as s:
        t = lifecycle.get_ticket(s, ticket.number)
        assert t.contact is not None and t.contact.name == "Priya Raman"  # the person the robot wrote for
        assert t.requester_email is None  # a machine is never written to
    reply_from_console(desk, ticket.number, "The maintenance is booked.")  # a person's reply: to the contact
    assert [m["To"] for m in desk.sent()] == ["priya@pismotitle.example"]


def test_a_noreply_sender_whose_reply_to_is_no_contact_leaves_the_ticket_without_an_email_address(
    desk: Desk,
    web: FlaskClient,  # noqa: F811
) -> None:
    post(
        desk,
        web,
        fixtures.plain(
            sender="Forms <forms-noreply@google.com>",
            subject="New response: laptop request",
            body="A stranger filled in the form.",
            mid="<forms-1@google.com>",
            reply_to="someone@example.org",
        ),
    )
    (ticket,) = desk.tickets()
    assert "Reply-To someone@example.org (not written to" in ticket.description
    from ticketing.errors import InvalidTransition

    with pytest.raises(InvalidTransition, match="no email address"):
        reply_from_console(desk, ticket.number, "Which laptop?")
    assert desk.sent() == []


# --- the migration ------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of this test's own with no schema yet (an SQLite file, or a PostgreSQL schema)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'upgrade.db'}"
        return
    schema = f"test_upgrade_{os.getpid()}"
    base = normalize_url(POSTGRES_URL)
    engine = create_engine(base)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except OperationalError:
        engine.dispose()
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is not available")
    yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    engine.dispose()


def test_the_upgrade_gives_existing_email_tickets_without_a_contact_the_address_that_opened_them(
    empty_database: str,
) -> None:
    from datetime import UTC, datetime

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import insert

    from settings import ROOT
    from ticketing.db import make_engine

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", empty_database.replace("%", "%%"))
    command.upgrade(config, "0008")
    at = datetime(2026, 11, 18, 18, 0, tzinfo=UTC)
    engine = make_engine(empty_database)
    tickets, messages = Ticket.__table__, TicketMessage.__table__
    with engine.begin() as conn:
        for number, source in ((400001, "email"), (400002, "phone")):
            conn.execute(
                insert(tickets).values(
                    id=number - 400000, number=number, priority="P3", source=source, opened_at=at, updated_at=at
                )
            )
        for i, (ticket_id, sender) in enumerate(
            [(1, "someone@unknown-company.example"), (1, "colleague@unknown-company.example"), (2, "x@y.example")]
        ):
            conn.execute(
                insert(messages).values(
                    ticket_id=ticket_id,
                    key=f"in:{i}",
                    direction="in",
                    channel="email",
                    event="client",
                    author=sender,
                    from_address=sender,
                    state="received",
                    created_at=at,
                )
            )
    command.upgrade(config, "head")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT number, requester_email FROM tickets ORDER BY number")).all()
    assert [tuple(r) for r in rows] == [(400001, "someone@unknown-company.example"), (400002, None)]
    command.downgrade(config, "0008")
    engine.dispose()


# --- the rule itself, pure --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "joins"),
    [
        ("dana@acme-dental.example", True),  # the ticket's contact
        ("DANA@Acme-Dental.example", True),
        ("luis.personal@gmail.com", True),  # another contact of the client, at a public provider
        ("jose@acme-dental.example", True),  # a colleague at the client's domain
        ("anyone@gmail.com", False),  # a public provider's domain lets nobody else in
        ("attacker@evil.example", False),
        ("dana@acme-dental.example.evil.example", False),
        ("", False),
    ],
)
def test_who_may_join_a_ticket_by_its_tag(address: str, joins: bool) -> None:
    client = ["dana@acme-dental.example", "luis.personal@gmail.com"]
    assert mailrules.sender_on_ticket(address, ["dana@acme-dental.example"], client) is joins


def test_a_delivery_report_naming_our_message_only_in_its_dsn_fields_counts(
    desk: Desk,
    web: FlaskClient,  # noqa: F811
) -> None:
    dana_opens(desk, web)
    confirmation_id = desk.sent()[0]["Message-ID"]
    raw = fixtures.forged_bounce(["dana@acme-dental.example"], "<not-ours@example.org>")
    raw = raw.replace(b"Action: failed\r\n", f"Action: failed\r\nX-Original-Message-ID: {confirmation_id}\r\n".encode())
    raw = raw.replace(b"Message-ID: <not-ours@example.org>\r\n", b"")  # no headers of the original
    row = post(desk, web, raw)
    assert row.state == "bounce" and "dana@acme-dental.example marked bouncing" in (row.outcome or "")

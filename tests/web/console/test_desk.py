"""The ticket page's desk without a browser: the one composer, assigning a console user, the folded notices, the
email sender, and the Mail page's From / Subject / fate columns; with the refusals that change nothing."""

from __future__ import annotations

import re

from sqlalchemy import select

from tests.inbox import fixtures
from tests.inbox.conftest import Desk, desk  # noqa: F401 - the fixture
from tests.web.conftest import Console
from ticketing.db import transaction
from ticketing.models import AuditEntry, OutboxMessage, Ticket, TicketMessage, User
from web.console.mail import envelope, fate


def _email_ticket(desk: Desk) -> Ticket:  # noqa: F811
    desk.receive(fixtures.multipart_alternative())
    (ticket,) = desk.tickets()
    return ticket


def _state(desk: Desk, number: int) -> tuple[str, str | None, list[str], list[str]]:  # noqa: F811
    """The ticket's status and assignee, its audit actions and the keys of its not-yet-finished outbox jobs."""
    with desk.runtime.sessions() as s:
        t = s.scalars(select(Ticket).where(Ticket.number == number)).one()
        actions = [a.action for a in s.scalars(select(AuditEntry).where(AuditEntry.ticket_id == t.id))]
        pending = list(s.scalars(select(OutboxMessage.key).where(OutboxMessage.completed_at.is_(None))))
        return t.status, t.assignee, actions, pending


def test_a_public_reply_that_asks_the_client_sends_one_email_and_waits_on_the_client(
    desk: Desk,  # noqa: F811
    console: Console,
) -> None:
    ticket = _email_ticket(desk)
    sent_before = len(desk.sent())
    answer = console.post(
        f"/tickets/{ticket.number}/compose",
        {"mode": "reply", "text": "Which printer model is it?\r\nA photo of its label helps.", "then": "waiting"},
    )
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith(f"/tickets/{ticket.number}#composer")
    status, _, actions, pending = _state(desk, ticket.number)
    assert status == "waiting on client"
    # The reply is the first response (a person began addressing it: new -> acknowledged), then the status asked for.
    replied = actions.index("reply to client")
    assert actions[replied:] == ["reply to client", "first response met", "status changed", "waiting on client"]
    assert [k for k in pending if k.startswith("notify:")] == []  # the reply asks: no "we need information" too
    desk.run_jobs()
    sent = desk.sent()[sent_before:]
    assert len(sent) == 1 and sent[0]["To"] == "dana@acme-dental.example"
    assert "A photo of its label helps." in sent[0].get_body(("plain",)).get_content()


def test_an_internal_note_that_resolves_the_ticket_mails_nobody(desk: Desk, console: Console) -> None:  # noqa: F811
    ticket = _email_ticket(desk)
    sent_before = len(desk.sent())
    answer = console.post(
        f"/tickets/{ticket.number}/compose",
        {"mode": "note", "text": "Fixed on site, toner swapped", "then": "resolved"},
    )
    assert answer.status_code == 303 and answer.headers["Location"].endswith("#composer")
    status, _, actions, pending = _state(desk, ticket.number)
    assert status == "resolved" and actions[-1] == "status changed" and "note" in actions
    assert pending == []
    desk.run_jobs()
    assert desk.sent()[sent_before:] == []
    page = console.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "Fixed on site, toner swapped" in page


def test_a_note_keeping_the_status_changes_only_the_log(desk: Desk, console: Console) -> None:  # noqa: F811
    ticket = _email_ticket(desk)
    before = _state(desk, ticket.number)
    assert (
        console.post(f"/tickets/{ticket.number}/compose", {"mode": "note", "text": "called, no answer"}).status_code
        == 303
    )
    status, _, actions, pending = _state(desk, ticket.number)
    assert status == before[0] and actions == [*before[2], "note"] and pending == []


def test_a_refused_composer_action_changes_nothing_and_keeps_what_was_typed(
    desk: Desk,  # noqa: F811
    console: Console,
) -> None:
    ticket = _email_ticket(desk)
    before = _state(desk, ticket.number)
    for form, said in (
        ({"mode": "reply", "text": "   ", "then": "waiting"}, "A reply needs some text."),
        ({"mode": "note", "text": "", "then": "resolved"}, "A note needs some text."),
        ({"mode": "shout", "text": "hello"}, "Choose a public reply or an internal note."),
        ({"mode": "reply", "text": "kept <b>draft</b>", "then": "closed"}, "Unknown status change"),
        ({"mode": "note", "text": "x" * 10001}, "A note is at most 10000 characters."),
    ):
        answer = console.post(f"/tickets/{ticket.number}/compose", form)
        html = answer.get_data(as_text=True)
        assert answer.status_code == 400 and said in html, form
        assert _state(desk, ticket.number) == before
    kept = console.post(f"/tickets/{ticket.number}/compose", {"mode": "note", "text": "kept <b>draft</b>", "then": "x"})
    assert ">kept &lt;b&gt;draft&lt;/b&gt;</textarea>" in kept.get_data(as_text=True)
    assert re.search(r'value="note" checked', kept.get_data(as_text=True))


def test_the_composer_says_who_sees_what_and_offers_only_possible_statuses(
    desk: Desk,  # noqa: F811
    console: Console,
) -> None:
    ticket = _email_ticket(desk)
    page = console.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "Public reply to <b>dana@acme-dental.example</b>" in page
    assert 'Internal note <span class="muted">(the client does not see this)</span>' in page
    assert 'value="reply" checked' in page
    assert '<option value="waiting"' in page and '<option value="resolved"' in page
    console.post(f"/tickets/{ticket.number}/compose", {"mode": "note", "text": "asked", "then": "waiting"})
    waiting = console.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert '<option value="waiting"' not in waiting and "keep (waiting on client)" in waiting


def test_assign_offers_the_console_users_and_refuses_a_stranger(desk: Desk, console: Console) -> None:  # noqa: F811
    ticket = _email_ticket(desk)
    page = console.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert '<option value="eli" >Eli Novak · engineer</option>' in page
    assert 'name="assignee" list=' not in page  # no free text
    before = _state(desk, ticket.number)
    for stranger in ("Blake Chen", "eli\r\nX-Injected: 1", "' OR 1=1 --"):
        refused = console.post(f"/tickets/{ticket.number}/assign", {"assignee": stranger})
        assert refused.status_code == 400 and "is not a console user: choose someone from the list" in (
            refused.get_data(as_text=True)
        )
        assert _state(desk, ticket.number) == before
    assigned = console.post(f"/tickets/{ticket.number}/assign", {"assignee": "eli"})
    assert assigned.status_code == 303 and assigned.headers["Location"].endswith("#act-assign")
    status, assignee, actions, _ = _state(desk, ticket.number)
    assert assignee == "Eli Novak" and actions[-1] == "assigned"
    taken = console.post(f"/tickets/{ticket.number}/take")
    assert taken.status_code == 303 and taken.headers["Location"].endswith("#act-assign")
    assert _state(desk, ticket.number)[1] == "Dana Reyes"
    with desk.runtime.sessions() as s:
        last = s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
        assert last is not None and last.detail == {"from": "Eli Novak", "to": "Dana Reyes"}
    page = console.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "Take it" not in page  # already mine
    assert console.post(f"/tickets/{ticket.number}/assign", {"assignee": ""}).status_code == 303
    assert _state(desk, ticket.number)[1] is None


def test_a_disabled_account_cannot_be_assigned(desk: Desk, console: Console) -> None:  # noqa: F811
    ticket = _email_ticket(desk)
    with transaction(desk.runtime.sessions) as s:
        s.scalars(select(User).where(User.username == "ada")).one().active = False
    assert "Ada Brooks" not in console.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    refused = console.post(f"/tickets/{ticket.number}/assign", {"assignee": "ada"})
    assert refused.status_code == 400 and _state(desk, ticket.number)[1] is None


def test_notices_fold_to_one_line_and_an_email_ticket_names_its_sender(
    desk: Desk,  # noqa: F811
    console: Console,
) -> None:
    ticket = _email_ticket(desk)
    console.post(f"/tickets/{ticket.number}/compose", {"mode": "reply", "text": "On our way."})
    desk.run_jobs()
    page = console.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    notices = re.findall(r'<li class="msg msg-notice[^"]*">\s*<details>\s*<summary>(.*?)</summary>', page, re.S)
    assert len(notices) == 1 and "created notice → dana@acme-dental.example" in notices[0]
    assert re.search(r'<li class="msg msg-out msg-sent">\s*<div class="msg-head">', page)  # the person's reply open
    assert re.search(r'<li class="msg msg-in msg-received">', page)
    assert "Dana Whitfield &lt;dana@acme-dental.example&gt;" in page
    head = page[page.index('class="th-meta"') : page.index('class="quick"')]
    assert "withheld" not in head and "Dana Whitfield · &lt;dana@acme-dental.example&gt;" in head


def test_the_mail_page_lists_sender_subject_and_what_became_of_each_message(
    desk: Desk,  # noqa: F811
    console: Console,
) -> None:
    desk.receive(fixtures.multipart_alternative())
    desk.receive(fixtures.latin1_subject())
    (first, _) = desk.tickets()
    desk.receive(
        fixtures.plain(
            sender="Dana Whitfield <dana@acme-dental.example>",
            subject=f"Re: [#{first.number}] Printer in reception is offline",
            body="Still offline.",
            mid="<again-1@acme-dental.example>",
        )
    )
    desk.receive(b"\r\n\r\n\x00garbage")
    page = console.get("/mail").get_data(as_text=True)
    latest = page[page.index('id="latest-mail"') :]
    rows = re.findall(r'<tr class="mail-(\w+)">(.*?)</tr>', latest, re.S)
    assert [state for state, _ in rows] == ["quarantined", "threaded", "ticketed", "ticketed"]
    assert "(no sender)" in rows[0][1] and "quarantined" in rows[0][1] and "unparsable" in rows[0][1]
    assert f"joined #{first.number}</a>" in rows[1][1] and "Still offline" not in rows[1][1]
    assert (
        "José Muñoz &lt;jose@acme-dental.example&gt;" in rows[2][1]
        and "Problème de réseau à l&#39;accueil" in rows[2][1]
    )
    assert f"new ticket #{first.number}</a>" in rows[3][1]
    assert "Printer in reception is offline" in rows[3][1]


def test_an_envelope_is_read_on_one_line_from_the_first_bytes_only() -> None:
    folded = b"From: =?utf-8?Q?Eve_=0D=0AEvil?=\r\n <Eve@Example.org>\r\nSubject: Line\r\n one\r\n\r\nFrom: body@x.example\r\n"
    e = envelope(folded)
    assert (e.name, e.address, e.subject) == ("Eve Evil", "eve@example.org", "Line one")
    assert e.sender == "Eve Evil <eve@example.org>"
    assert envelope(b"").sender == "" and envelope(b"Subject: \r\n\r\n").subject == ""
    assert envelope(b"From: undisclosed\r\n\r\n").sender == "undisclosed"
    broken = envelope(b"From: =?x-unknown?Q?abc?= <a@b.example>\r\nSubject: =?utf-8?B?!!!?=\r\n\r\n")
    assert broken.address == "a@b.example" and broken.subject
    huge = envelope(b"Subject: " + b"=?utf-8?Q?a?= " * 50000 + b"\r\n\r\n")
    assert len(huge.subject) <= 200
    assert fate("threaded", 400127) == "joined #400127" and fate("ignored", None) == "ignored"
    assert fate("ticketed", 7) == "new ticket #7" and fate("stored", None) == "waiting for the worker"


def test_only_the_console_user_who_replies_is_named_on_the_message(desk: Desk, console: Console) -> None:  # noqa: F811
    ticket = _email_ticket(desk)
    console.post(f"/tickets/{ticket.number}/compose", {"mode": "reply", "text": "Hello", "then": "keep"})
    with desk.runtime.sessions() as s:
        reply = s.scalars(select(TicketMessage).where(TicketMessage.event == "reply")).one()
        assert (reply.author, reply.automatic, reply.to_address) == ("Dana Reyes", False, "dana@acme-dental.example")


def test_a_hostile_header_is_listed_cut_short_and_costs_the_mail_page_nothing(
    desk: Desk,  # noqa: F811
    console: Console,
) -> None:
    subject = b"Subject: " + b" ".join([b"=?utf-8?Q?caf=C3=A9?="] * 40000)
    raw = b"From: =?utf-8?Q?Mallory_=0D=0ABcc=3A_x?= <m@evil.example>\r\n" + subject + b"\r\n\r\nbody\r\n"
    desk.receive(raw)
    page = console.get("/mail").get_data(as_text=True)
    quarantined = page[page.index("Quarantined messages") : page.index('id="refused-sign-in-links"')]
    (row,) = re.findall(r"<tr><td>\d+</td>(.*?)</tr>", quarantined, re.S)
    assert "over a limit on hostile mail" in row
    assert "Mallory Bcc: x &lt;m@evil.example&gt;" in row  # one line: the encoded CR/LF is a space
    shown = re.search(r'<td class="mail-subject">(.*?)</td>', row, re.S)
    # Adjacent encoded words join without the space between them (RFC 2047); cut short, never mid-word.
    assert shown is not None and re.fullmatch("(café){10,50}", shown.group(1))

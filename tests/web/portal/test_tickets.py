"""Submitting with the triage questions, the priority preview, P1 paging, attachments, the list, the public
timeline, replies and "resolved" / "still broken"; and how the console shows it all."""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

import runtime as rt
from runtime import Runtime
from tests.conftest import FixedClock
from tests.web.conftest import Console
from tests.web.portal.conftest import EMAILS, PortalClient, mails
from ticketing import conversation, lifecycle, outbox, paging, voicemail
from ticketing.audit import audit
from ticketing.db import transaction
from ticketing.models import MailAttachment, OutboxMessage, Status, Ticket, TicketAttachment, TranscriptionState
from workers.mail import notify_ticket_event

Make = Callable[[str | None], PortalClient]
OUTAGE = {
    "summary": "Nobody can open the patient records",
    "affected": "everyone",
    "workaround": "no",
    "deadline": "no",
}


def only_ticket(runtime: Runtime) -> Ticket:
    with runtime.sessions() as s:
        t = s.scalars(select(Ticket)).one()
        _ = list(t.audit), list(t.milestones), t.contact, t.client
        return t


def test_the_preview_shows_priority_and_targets_without_javascript_and_submits_nothing(
    portal_client: Make, portal_runtime: Runtime
) -> None:
    dana = portal_client("dana")
    page = dana.post("/portal/tickets/new", {**OUTAGE, "step": "preview"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "P1 - Critical" in html
    assert "by 10:12" in html  # 12 minutes (0.2 h) from 10:00
    assert "by 10:30" in html and "by 14:00" in html  # plan 0.5 h, resolved 4 h, on the wall clock
    assert "pages our on-call emergency response team at once, exactly as pressing 2" in html
    assert 'value="Nobody can open the patient records"' in html  # the answers stay filled in
    with portal_runtime.sessions() as s:
        assert s.scalars(select(Ticket)).all() == []
    # A medium request: business-hours targets.
    page = dana.post(
        "/portal/tickets/new",
        {"summary": "Slow laptop", "affected": "me", "workaround": "no", "deadline": "no", "step": "preview"},
    ).get_data(as_text=True)
    assert "P3 - Medium" in page and "20 business hours" in page and "24 business hours" in page
    assert "pages our on-call" not in page
    # The JSON preview the script uses says the same.
    data = dana.get("/portal/triage?affected=several&workaround=no&deadline=no").get_json()
    assert data["priority"] == "P2" and data["notice"] is None
    assert [t["due"] for t in data["targets"]][0] == "by 10:12"
    assert dana.get("/portal/triage?affected=several").status_code == 400


def test_after_hours_a_p1_says_the_after_hours_team_is_notified(portal_client: Make, clock: FixedClock) -> None:
    clock.set("2026-11-21 23:10")  # Saturday night
    dana = portal_client("dana")
    html = dana.post("/portal/tickets/new", {"summary": "Ransomware note", "risk": "yes", "step": "preview"}).get_data(
        as_text=True
    )
    assert "P1 - Critical" in html and "Our office is closed now" in html and "after-hours support team" in html
    assert dana.get("/portal/triage?risk=yes").get_json()["after_hours"] is True


def test_a_portal_p1_pages_on_call_exactly_like_press_2(portal_client: Make, portal_runtime: Runtime) -> None:
    response = portal_client("luis").post("/portal/tickets/new", {**OUTAGE, "step": "submit"})
    assert response.status_code == 303
    t = only_ticket(portal_runtime)
    assert response.headers["Location"].endswith(f"/portal/tickets/{t.number}?done=submitted")
    assert (t.source, t.priority, t.critical_requested) == ("portal", "P1", True)
    assert (t.contact.name, t.client.name) == ("Luis Ortega", "Acme Dental")
    assert t.caller_number == "+18055550143"
    actions = [a.action for a in t.audit]
    assert actions[:3] == ["created", "portal triage", "paging requested"]
    triage_entry = t.audit[1]
    assert triage_entry.detail == {
        "affected": "everyone",
        "workaround": False,
        "deadline": False,
        "risk": False,
        "request": False,
        "priority": "P1",
        "reason": "impact high, urgency high",
    }
    # Press 2 on a call writes the same outbox message, which the same paging job takes.
    with transaction(portal_runtime.sessions) as s:
        call = voicemail.reach_voicemail(
            s,
            policy=portal_runtime.policy,
            now=portal_runtime.now(),
            call_sid="CA" + "1" * 32,
            caller="+18055550142",
            critical=True,
        )
        call_number = call.number
    with portal_runtime.sessions() as s:
        pages = {m.key: (m.kind, m.payload) for m in s.scalars(select(OutboxMessage))}
    assert pages[f"page:{t.number}"] == ("page", {"ticket": t.number})
    assert pages[f"page:{call_number}"] == ("page", {"ticket": call_number})


def test_a_p1_portal_ticket_starts_paging_through_the_paging_job(portal_client: Make, portal_runtime: Runtime) -> None:
    portal_client("dana").post("/portal/tickets/new", {"summary": "Data deleted", "risk": "yes", "step": "submit"})
    t = only_ticket(portal_runtime)
    oncall = paging.oncall_from(portal_runtime.settings.oncall_file)
    from ticketing.sla import calendar_for

    with transaction(portal_runtime.sessions) as s:
        ticket = lifecycle.get_ticket(s, t.number)
        esc = paging.start_escalation(
            s, ticket, oncall=oncall, calendar=calendar_for(portal_runtime.policy), now=portal_runtime.now()
        )
        claim = paging.claim_step(s, ticket, esc, 0, oncall=oncall, now=portal_runtime.now())
    assert claim is not None  # pageable: P1 and open, like a press-2 ticket


def test_a_request_is_p5_with_best_effort_targets(portal_client: Make, portal_runtime: Runtime) -> None:
    dana = portal_client("dana")
    html = dana.post(
        "/portal/tickets/new", {"summary": "New starter Monday", "request": "yes", "step": "preview"}
    ).get_data(as_text=True)
    assert "P5 - No SLA" in html and "best effort" in html
    dana.post("/portal/tickets/new", {"summary": "New starter Monday", "request": "yes", "step": "submit"})
    t = only_ticket(portal_runtime)
    assert t.priority == "P5" and t.milestone("resolved").due_at is None
    with portal_runtime.sessions() as s:
        assert s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "page")).all() == []


def test_unanswered_questions_and_a_missing_summary_are_refused_with_the_answers_kept(
    portal_client: Make, portal_runtime: Runtime
) -> None:
    dana = portal_client("dana")
    page = dana.post("/portal/tickets/new", {"summary": "Printer", "affected": "me", "step": "submit"})
    assert page.status_code == 400 and "keep working" in page.get_data(as_text=True)
    page = dana.post(
        "/portal/tickets/new",
        {"summary": "", "affected": "me", "workaround": "yes", "deadline": "no", "step": "submit"},
    )
    assert page.status_code == 400 and "few words" in page.get_data(as_text=True)
    with portal_runtime.sessions() as s:
        assert s.scalars(select(Ticket)).all() == []


def test_attachments_are_stored_beside_recordings_capped_and_served_to_the_contact_and_the_console(
    portal_client: Make, portal_runtime: Runtime, console: Console
) -> None:
    portal_runtime.settings = portal_runtime.settings.with_overrides(portal_attachment_max_bytes=2048)
    dana = portal_client("dana")
    png = b"\x89PNG\r\n\x1a\n" + b"x" * 100
    too_big = dana.post(
        "/portal/tickets/new",
        {
            "summary": "Error on screen",
            "affected": "me",
            "workaround": "yes",
            "deadline": "no",
            "step": "submit",
            "attachments": (io.BytesIO(b"y" * 4096), "huge.log"),
        },
        content_type="multipart/form-data",
    )
    assert too_big.status_code == 400 and "larger than" in too_big.get_data(as_text=True)
    with portal_runtime.sessions() as s:
        assert s.scalars(select(Ticket)).all() == []
    response = dana.post(
        "/portal/tickets/new",
        {
            "summary": "Error on screen",
            "affected": "me",
            "workaround": "yes",
            "deadline": "no",
            "step": "submit",
            "attachments": [(io.BytesIO(png), "../../etc/screen shot.png"), (io.BytesIO(b"line 1\n"), "app.log")],
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    t = only_ticket(portal_runtime)
    with portal_runtime.sessions() as s:
        files = s.scalars(select(TicketAttachment).order_by(TicketAttachment.id)).all()
    assert [f.filename for f in files] == ["screen shot.png", "app.log"]
    root = portal_runtime.settings.recordings_dir
    for f in files:
        stored = (root / f.path).resolve()
        assert stored.is_relative_to((root / "attachments" / str(t.number)).resolve())
        assert stored.read_bytes() in (png, b"line 1\n")
    image = dana.get(f"/portal/tickets/{t.number}/attachments/{files[0].id}")
    assert image.data == png and image.mimetype == "image/png"
    image.close()
    log = dana.get(f"/portal/tickets/{t.number}/attachments/{files[1].id}")
    assert log.mimetype == "application/octet-stream" and "attachment" in log.headers["Content-Disposition"]
    assert log.headers["X-Content-Type-Options"] == "nosniff"
    log.close()
    # The console shows and serves them; without a console session they are refused.
    page = console.get(f"/tickets/{t.number}").get_data(as_text=True)
    assert "screen shot.png" in page and "Invite to the portal" in page
    served = console.get(f"/tickets/{t.number}/attachments/{files[0].id}")
    assert served.data == png
    served.close()
    assert portal_client(None).client.get(f"/tickets/{t.number}/attachments/{files[0].id}").status_code == 302


def test_the_list_shows_the_next_commitment_in_pacific_time(
    portal_client: Make, client_ticket: Callable[..., int], portal_runtime: Runtime
) -> None:
    p1 = client_ticket("luis", "Phones down", priority="P1")
    waiting = client_ticket("luis", "Need your VPN details", priority="P4")
    done = client_ticket("luis", "Old printer", priority="P4")
    with transaction(portal_runtime.sessions) as s:
        lifecycle.pause_sla(s, lifecycle.get_ticket(s, waiting), actor="tests", now=portal_runtime.now())
        lifecycle.set_status(
            s,
            lifecycle.get_ticket(s, done),
            Status.RESOLVED,
            actor="t",
            now=portal_runtime.now(),
            policy=portal_runtime.policy,
        )
    html = portal_client("luis").get("/portal/").get_data(as_text=True)
    for number in (p1, waiting, done):
        assert f"#{number}" in html
    assert "first response by 10:12" in html
    assert "waiting for your reply" in html
    assert "P1 - Critical" in html and "Resolved" in html
    assert html.index(f"#{p1}") < html.index(f"#{done}")  # open tickets first


def test_the_public_timeline_shows_the_clients_story_and_never_internal_notes_paging_or_other_numbers(
    portal_client: Make, client_ticket: Callable[..., int], portal_runtime: Runtime
) -> None:
    number = client_ticket("dana", "Voicemail from Dana", priority="P1", source="voicemail", call_sid="CA" + "2" * 32)
    with transaction(portal_runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        now = portal_runtime.now()
        voicemail.log_call_event(s, t.call_sid, "incoming", now - timedelta(minutes=2), business_hours=True)
        audit(s, t, actor="support line", action="recording attached", now=now, detail={"recording_sid": "RE1"})
        t.transcript = "Hi, this is Dana. The server is down, call me at 805 555 0142."
        t.transcription_state = TranscriptionState.DONE.value
        audit(s, t, actor="transcription worker", action="transcribed", now=now, detail={"confidence": 0.9})
        lifecycle.add_note(s, t, "INTERNAL: client owes us two invoices", actor="Dana Reyes", now=now)
        audit(s, t, actor="on-call", action="paged", now=now, detail={"people": ["Alex Rivera"], "to": "+18055550999"})
        other = lifecycle.open_ticket(
            s,
            policy=portal_runtime.policy,
            now=now,
            priority="P3",
            source="voicemail",
            actor="t",
            caller_number="+18055557777",
            summary="repeat",
        )
        lifecycle.merge_ticket(s, other, t, actor="Dana Reyes", now=now, reason="same outage, caller +18055557777")
        lifecycle.meet_milestone(
            s, t, "resolution_plan", actor="Alex Rivera", now=now, estimate=now + timedelta(hours=2)
        )
        lifecycle.set_status(s, t, Status.WAITING_ON_CLIENT, actor="Alex Rivera", now=now, policy=portal_runtime.policy)
    html = portal_client("dana").get(f"/portal/tickets/{number}").get_data(as_text=True)
    assert "Call to the support line" in html and "Voicemail left" in html
    assert "The server is down" in html  # the transcript of her own voicemail
    assert "Resolution plan ready" in html and "Estimated resolution: Wed Nov 18, 12:00" in html
    assert "A related request was combined" in html
    assert "Waiting for your reply" in html
    for secret in (
        "INTERNAL",
        "invoices",
        "Alex Rivera",
        "paged",
        "+18055550999",
        "+18055557777",
        "555-7777",
        "same outage",
    ):
        assert secret not in html, secret


def test_a_reply_lands_on_the_ticket_and_resumes_a_waiting_clock(
    portal_client: Make, client_ticket: Callable[..., int], portal_runtime: Runtime, clock: FixedClock, console: Console
) -> None:
    number = client_ticket("luis", "VPN", priority="P3")
    with transaction(portal_runtime.sessions) as s:
        lifecycle.pause_sla(s, lifecycle.get_ticket(s, number), actor="Dana Reyes", now=portal_runtime.now())
    clock.advance(hours=1)
    luis = portal_client("luis")
    assert luis.post(f"/portal/tickets/{number}/reply", {"text": ""}).status_code == 400
    response = luis.post(f"/portal/tickets/{number}/reply", {"text": "The VPN server is vpn.acme.example"})
    assert response.status_code == 303
    with portal_runtime.sessions() as s:
        t = lifecycle.get_ticket(s, number)
        assert t.status == Status.IN_PROGRESS.value and t.paused_at is None
        (message,) = conversation.conversation(s, t)  # the same conversation an email reply joins
        assert (message.direction, message.channel, message.body) == (
            "in",
            "portal",
            "The VPN server is vpn.acme.example",
        )
        assert message.author == "Luis Ortega (portal)" and message.from_address == EMAILS["luis"]
        assert next(a for a in t.audit if a.action == "client message").detail["channel"] == "portal"
        assert t.pauses[0].ended_at == portal_runtime.now()
    page = luis.get(f"/portal/tickets/{number}?done=reply").get_data(as_text=True)
    assert "vpn.acme.example" in page and "Your reply was added" in page
    console.login()  # the console session went idle during the hour
    console_page = console.get(f"/tickets/{number}").get_data(as_text=True)
    assert "The VPN server is vpn.acme.example" in console_page.split('aria-label="Conversation with the client"')[1]


def test_a_console_public_reply_shows_in_the_portal_and_an_internal_note_does_not(
    portal_client: Make, client_ticket: Callable[..., int], portal_runtime: Runtime
) -> None:
    number = client_ticket("luis", "VPN", priority="P3")
    with transaction(portal_runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        now = portal_runtime.now()
        conversation.reply_to_client(s, t, "Please restart the VPN client.", actor="Alex Rivera", now=now)
        lifecycle.add_note(s, t, "INTERNAL: check the firewall logs", actor="Alex Rivera", now=now)
    html = portal_client("luis").get(f"/portal/tickets/{number}").get_data(as_text=True)
    assert "Please restart the VPN client." in html and "Reply by email" in html
    assert "INTERNAL" not in html and "firewall" not in html and "Alex Rivera" not in html


def test_a_portal_ticket_gets_the_new_ticket_email(portal_client: Make, portal_runtime: Runtime) -> None:
    dana = portal_client("dana")
    before = len(mails(portal_runtime))
    response = dana.post(
        "/portal/tickets/new",
        {"summary": "Scanner offline", "description": "The scanner at reception is offline.", "step": "submit"}
        | {"affected": "me", "workaround": "yes", "deadline": "no"},
    )
    assert response.status_code in (302, 303), response.get_data(as_text=True)
    with portal_runtime.sessions() as s:
        (t,) = [t for t in s.scalars(select(Ticket)) if t.summary == "Scanner offline"]
        number = int(t.number or 0)
        assert t.contact is not None and t.contact.name == "Dana Whitfield"
        keys = [o.key for o in s.scalars(select(OutboxMessage).where(OutboxMessage.kind == outbox.NOTIFY))]
    assert keys == [f"notify:{number}:created:1"]
    rt.install(portal_runtime)
    try:
        assert notify_ticket_event(number, "created", keys[0]) == "sent"
    finally:
        rt.install(None)
    new = [m for m in mails(portal_runtime) if f"#{number}" in str(m["Subject"])]
    assert len(mails(portal_runtime)) == before + 1 and len(new) == 1
    assert "dana@acme-dental.example" in str(new[0]["To"]).lower()


def test_resolved_then_still_broken_reopens_and_this_is_resolved_closes(
    portal_client: Make, client_ticket: Callable[..., int], portal_runtime: Runtime
) -> None:
    number = client_ticket("dana", "Scanner", priority="P3")
    with transaction(portal_runtime.sessions) as s:
        lifecycle.set_status(
            s,
            lifecycle.get_ticket(s, number),
            Status.RESOLVED,
            actor="t",
            now=portal_runtime.now(),
            policy=portal_runtime.policy,
        )
    dana = portal_client("dana")
    page = dana.get(f"/portal/tickets/{number}").get_data(as_text=True)
    assert "Yes, this is resolved" in page and "It is still broken" in page
    assert dana.post(f"/portal/tickets/{number}/still-broken", {"text": "It jams again"}).status_code == 303
    with portal_runtime.sessions() as s:
        t = lifecycle.get_ticket(s, number)
        assert t.status == Status.IN_PROGRESS.value and t.milestone("resolved").met_at is None
        assert [a.action for a in t.audit][-2:] == ["status changed", "client message"]
    assert dana.post(f"/portal/tickets/{number}/resolved").status_code == 400  # not resolved now
    with transaction(portal_runtime.sessions) as s:
        lifecycle.set_status(
            s,
            lifecycle.get_ticket(s, number),
            Status.RESOLVED,
            actor="t",
            now=portal_runtime.now(),
            policy=portal_runtime.policy,
        )
    assert dana.post(f"/portal/tickets/{number}/resolved").status_code == 303
    with portal_runtime.sessions() as s:
        t = lifecycle.get_ticket(s, number)
        assert t.status == Status.CLOSED.value
        assert t.audit[-1].reason == "client confirmed it is resolved"
    page = dana.get(f"/portal/tickets/{number}").get_data(as_text=True)
    assert "This ticket is closed" in page and "Send reply" not in page
    assert dana.post(f"/portal/tickets/{number}/reply", {"text": "hello"}).status_code == 400


def test_the_console_queue_shows_portal_submissions_like_other_sources(
    portal_client: Make, portal_runtime: Runtime, console: Console
) -> None:
    portal_client("dana").post("/portal/tickets/new", {**OUTAGE, "affected": "several", "step": "submit"})
    t = only_ticket(portal_runtime)
    queue = console.get("/queue").get_data(as_text=True)
    assert f'data-number="{t.number}"' in queue and "Nobody can open the patient records" in queue
    page = console.get(f"/tickets/{t.number}").get_data(as_text=True)
    assert "portal triage" in page and "portal" in page
    # The coordinator re-triages as today, audited.
    assert (
        console.post(f"/tickets/{t.number}/priority", {"priority": "P3", "reason": "one printer only"}).status_code
        == 303
    )


def test_a_request_body_beyond_every_file_cap_is_refused_before_it_is_read(
    portal_client: Make, portal_runtime: Runtime
) -> None:
    portal_runtime.settings = portal_runtime.settings.with_overrides(
        portal_attachment_max_bytes=2048, portal_attachment_max_files=1
    )
    dana = portal_client("dana")
    response = dana.post(
        "/portal/tickets/new",
        {
            "summary": "x",
            "risk": "yes",
            "step": "submit",
            "attachments": (io.BytesIO(b"z" * 300 * 1024), "big.bin"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 413 and "File too large" in response.get_data(as_text=True)
    with portal_runtime.sessions() as s:
        assert s.scalars(select(Ticket)).all() == []


def test_the_clients_email_attachments_are_listed_with_portal_files_and_served_only_to_who_may_see_the_ticket(
    portal_client: Make, client_ticket: Callable[..., int], portal_runtime: Runtime
) -> None:
    number = client_ticket("dana", "Printer", priority="P3")
    folder = Path(portal_runtime.settings.recordings_dir) / "mail" / "1"
    folder.mkdir(parents=True)
    (folder / "printer.log").write_bytes(b"paper jam at tray 2\n")
    with transaction(portal_runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        landing = conversation.add_client_message(
            s,
            t,
            body="Log attached.",
            author="Dana Whitfield",
            now=portal_runtime.now(),
            policy=portal_runtime.policy,
            from_address=EMAILS["dana"],
        )
        s.add_all(
            [
                MailAttachment(
                    message=landing.message,
                    filename="printer.log",
                    content_type="text/plain",
                    size=20,
                    path=str(folder / "printer.log"),
                ),
                MailAttachment(
                    message=landing.message, filename="scan.tiff", content_type="image/tiff", size=9_000_000,
                    path=None, note="not stored: over the cap",
                ),
            ]
        )  # fmt: skip
        s.flush()
        stored_id = s.scalars(select(MailAttachment.id).where(MailAttachment.path.is_not(None))).one()
    dana = portal_client("dana")
    html = dana.get(f"/portal/tickets/{number}").get_data(as_text=True)
    files = html.split("<h3>Files</h3>")[1]
    assert "printer.log" in files and "sent by email" in files and "scan.tiff" in files and "over the cap" in files
    assert "Log attached." in html  # her email, in the public conversation
    download = dana.get(f"/portal/tickets/{number}/email-files/{stored_id}")
    assert download.status_code == 200 and download.data == b"paper jam at tray 2\n"
    assert download.headers["Content-Type"] == "application/octet-stream"
    download.close()
    assert portal_client("luis").get(f"/portal/tickets/{number}/email-files/{stored_id}").status_code == 404
    assert portal_client("priya").get(f"/portal/tickets/{number}/email-files/{stored_id}").status_code == 404


def test_a_reply_on_a_merged_ticket_goes_to_the_ticket_it_went_into(
    portal_client: Make, client_ticket: Callable[..., int], portal_runtime: Runtime
) -> None:
    kept = client_ticket("dana", "Server down")
    repeat = client_ticket("dana", "Server down again")
    with transaction(portal_runtime.sessions) as s:
        lifecycle.merge_ticket(
            s, lifecycle.get_ticket(s, repeat), lifecycle.get_ticket(s, kept), actor="Sam", now=portal_runtime.now()
        )
    response = portal_client("dana").post(f"/portal/tickets/{repeat}/reply", {"text": "Still down here."})
    assert response.status_code == 303 and response.headers["Location"].startswith(f"/portal/tickets/{kept}")
    with portal_runtime.sessions() as s:
        bodies = {n: [m.body for m in conversation.conversation(s, lifecycle.get_ticket(s, n))] for n in (kept, repeat)}
    assert bodies == {kept: ["Still down here."], repeat: []}


def test_an_emailed_file_whose_stored_name_has_a_line_break_downloads_from_the_portal(
    portal_client: Make, client_ticket: Callable[..., int], portal_runtime: Runtime
) -> None:
    number = client_ticket("dana", "Printer", priority="P3")
    folder = Path(portal_runtime.settings.recordings_dir) / "mail" / "1"
    folder.mkdir(parents=True)
    (folder / "printer.log").write_bytes(b"paper jam at tray 2\n")
    with transaction(portal_runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        landing = conversation.add_client_message(
            s, t, body="Log attached.", author="Dana Whitfield", now=portal_runtime.now(),
            policy=portal_runtime.policy, from_address=EMAILS["dana"],
        )  # fmt: skip
        # A name stored before names were cleaned at intake (RFC 2231 lets a sender encode CR and LF).
        row = MailAttachment(
            message=landing.message, filename="printer\r\nX-Injected: 1\r\n\u00e9t\u00e9.log", content_type="text/plain",
            size=20, path=str(folder / "printer.log"),
        )  # fmt: skip
        s.add(row)
        s.flush()
        stored_id = row.id
    download = portal_client("dana").get(f"/portal/tickets/{number}/email-files/{stored_id}")
    assert download.status_code == 200 and download.data == b"paper jam at tray 2\n"
    assert "X-Injected" not in download.headers
    assert download.headers["Content-Disposition"] == (
        "attachment; filename=\"printer X-Injected: 1 ete.log\"; filename*=UTF-8''printer%20X-Injected%3A%201%20%C3%A9t%C3%A9.log"
    )
    download.close()


def test_a_summary_submitted_with_line_breaks_is_stored_as_one_line(
    portal_client: Make, portal_runtime: Runtime
) -> None:
    response = portal_client("dana").post(
        "/portal/tickets/new", {**OUTAGE, "summary": "Records down\r\nBcc: all@example.com\tnow", "step": "submit"}
    )
    assert response.status_code == 303
    assert only_ticket(portal_runtime).summary == "Records down Bcc: all@example.com now"


def test_a_strangers_mail_naming_a_clients_ticket_never_shows_in_her_portal(
    portal_client: Make, client_ticket: Callable[..., int], portal_runtime: Runtime
) -> None:
    from tests.inbox import fixtures
    from tests.inbox.test_webhooks import KEY
    from workers.mail import ingest_mail

    number = client_ticket("dana", "Printer jammed")
    dana = portal_client("dana")
    portal_runtime.settings = portal_runtime.settings.with_overrides(mailgun_signing_key=KEY)
    raw = fixtures.with_executable(
        sender="attacker@evil.example",
        subject=f"RE: [#{number}] Printer jammed",
        body="Run the attached invoice to fix the printer.",
        mid="<mallory-portal@evil.example>",
    )
    ts, token = str(int(portal_runtime.now().timestamp())), secrets.token_hex(25)
    signature = hmac.new(KEY.encode(), (ts + token).encode(), hashlib.sha256).hexdigest()
    form = {"timestamp": ts, "token": token, "signature": signature, "body-mime": raw.decode()}
    response = dana.client.post("/mail/inbound/mailgun/mime", data=form)
    assert response.status_code == 200, response.get_data(as_text=True)
    rt.install(portal_runtime)
    try:
        outcome = ingest_mail(response.json["stored"])
    finally:
        rt.install(None)
    html = dana.get(f"/portal/tickets/{number}").get_data(as_text=True)
    assert "Printer jammed" in html
    assert "Run the attached invoice" not in html and "invoice.exe" not in html
    assert outcome == "ticketed"  # a ticket of the stranger's own, which Dana's portal does not list
    listing = dana.get("/portal/").get_data(as_text=True)
    assert "Run the attached invoice" not in listing and "invoice" not in listing

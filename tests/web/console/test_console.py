"""The console's pages and actions: each audited, each refused with a clear message and no change on bad input."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from runtime import Runtime
from tests.conftest import pacific
from tests.web.conftest import Console, attach_voicemail, due_times, ticket
from ticketing import lifecycle, paging
from ticketing.db import transaction
from ticketing.models import Client, Escalation, ExceptionalEvent, OutboxMessage, TranscriptionState
from ticketing.sla import calendar_for


def _rows(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'data-number="(\d+)"', html)]


def test_the_queue_lists_open_tickets_next_due_first_or_by_priority_then_first_come_first_served(
    console: Console, open_ticket: Callable[..., int]
) -> None:
    late_p3 = open_ticket("2026-11-18 09:30", priority="P3")
    early_p3 = open_ticket("2026-11-18 08:30", priority="P3")
    p1 = open_ticket("2026-11-18 09:55", priority="P1")
    p4 = open_ticket("2026-11-18 07:00", priority="P4")  # before opening: first response due 08:12
    # The default answers "what breaches next": first responses due 08:12, 08:42, 09:42, 10:07.
    html = console.get("/queue").get_data(as_text=True)
    assert _rows(html) == [p4, early_p3, late_p3, p1]
    assert 'option value="due" selected' in html
    # The policy's order, and the oldest first; the sort stays in the URL of the self-refreshing fragment.
    html = console.get("/queue?sort=priority").get_data(as_text=True)
    assert _rows(html) == [p1, early_p3, late_p3, p4]
    assert 'data-src="/queue/rows?sort=priority"' in html
    assert _rows(console.get("/queue?sort=age").get_data(as_text=True)) == [p4, early_p3, late_p3, p1]
    assert _rows(console.get("/queue/rows?sort=priority").get_data(as_text=True)) == [p1, early_p3, late_p3, p4]
    bad = console.get("/queue?sort=sideways").get_data(as_text=True)
    assert "Filter ignored: unknown sort &#39;sideways&#39;" in bad and _rows(bad) == [p4, early_p3, late_p3, p1]
    html = console.get("/queue?sort=priority").get_data(as_text=True)
    # Countdowns carry their due time for the script, and breached tickets are marked.
    assert re.search(rf'data-number="{early_p3}"[^>]*class|class="row w-breached" data-number="{early_p3}"', html)
    assert 'data-due="2026-11-18T' in html
    fragment = console.get("/queue/rows?sort=priority").get_data(as_text=True)
    assert "<html" not in fragment and _rows(fragment) == [p1, early_p3, late_p3, p4]


def test_the_queue_filters_by_priority_status_client_assignee_and_breach(
    console: Console, runtime: Runtime, open_ticket: Callable[..., int]
) -> None:
    with transaction(runtime.sessions) as s:
        s.add(Client(name="Acme Dental", main_number="+18055550100"))
    acme = open_ticket("2026-11-18 09:58", priority="P2", caller_number="+18055550100")
    breached = open_ticket("2026-11-18 09:00", priority="P3")
    assigned = open_ticket("2026-11-18 09:59", priority="P3")
    with transaction(runtime.sessions) as s:
        lifecycle.assign(s, lifecycle.get_ticket(s, assigned), "Blake Chen", actor="tests", now=runtime.now())
        client_id = s.scalars(select(Client.id)).one()
    assert _rows(console.get("/queue?priority=P2").get_data(as_text=True)) == [acme]
    assert _rows(console.get(f"/queue?client={client_id}").get_data(as_text=True)) == [acme]
    assert _rows(console.get("/queue?assignee=Blake+Chen").get_data(as_text=True)) == [assigned]
    assert _rows(console.get("/queue?assignee=(unassigned)").get_data(as_text=True)) == [breached, acme]
    assert _rows(console.get("/queue?breached=1").get_data(as_text=True)) == [breached]
    assert _rows(console.get("/queue/rows?status=new&priority=P3").get_data(as_text=True)) == [breached, assigned]
    bad = console.get("/queue?priority=P9").get_data(as_text=True)
    assert "Filter ignored: unknown priority" in bad and len(_rows(bad)) == 3


def test_changing_priority_needs_a_reason_and_recomputes_the_due_times(
    console: Console, runtime: Runtime, open_ticket: Callable[..., int]
) -> None:
    number = open_ticket("2026-11-18 09:00", priority="P3")
    before = due_times(runtime, number)
    refused = console.post(f"/tickets/{number}/priority", {"priority": "P1", "reason": "  "})
    assert refused.status_code == 400
    assert "A priority change needs a reason." in refused.get_data(as_text=True)
    assert due_times(runtime, number) == before and ticket(runtime, number).priority == "P3"
    bad = console.post(f"/tickets/{number}/priority", {"priority": "P7", "reason": "x"})
    assert bad.status_code == 400 and "Unknown priority" in bad.get_data(as_text=True)
    done = console.post(f"/tickets/{number}/priority", {"priority": "P1", "reason": "whole office down"})
    assert done.status_code == 303
    after = due_times(runtime, number)
    assert after["resolved"] == pacific("2026-11-18 13:00")  # P1: 4 h on the wall clock from 09:00
    entry = ticket(runtime, number).audit[-1]
    assert (entry.action, entry.actor, entry.reason) == ("priority changed", "Dana Reyes", "whole office down")
    page = console.get(f"/tickets/{number}").get_data(as_text=True)
    assert "Priority changed to P1 - Critical" in page


def test_assign_and_the_milestones_through_resolution(
    console: Console, runtime: Runtime, open_ticket: Callable[..., int], clock
) -> None:
    number = open_ticket("2026-11-18 09:55", priority="P3")
    assert console.post(f"/tickets/{number}/assign", {"assignee": "eli"}).status_code == 303
    assert console.post(f"/tickets/{number}/first-response").status_code == 303
    t = ticket(runtime, number)
    assert t.assignee == "Eli Novak" and t.status == "in progress"
    assert t.milestone("first_response").met_at == runtime.now()
    again = console.post(f"/tickets/{number}/first-response")
    assert again.status_code == 400 and "already recorded" in again.get_data(as_text=True)
    no_estimate = console.post(f"/tickets/{number}/resolution-plan", {"estimate": ""})
    assert no_estimate.status_code == 400 and "estimated resolution time" in no_estimate.get_data(as_text=True)
    past = console.post(f"/tickets/{number}/resolution-plan", {"estimate": "2026-11-18T09:00"})
    assert past.status_code == 400 and "must not be in the past" in past.get_data(as_text=True)
    plan = console.post(
        f"/tickets/{number}/resolution-plan", {"estimate": "2026-11-18T15:30", "note": "replace the switch"}
    )
    assert plan.status_code == 303
    assert ticket(runtime, number).milestone("resolution_plan").estimate == pacific("2026-11-18 15:30")
    clock.advance(minutes=20)
    assert console.post(f"/tickets/{number}/resolve", {"note": "switch replaced"}).status_code == 303
    t = ticket(runtime, number)
    assert t.status == "resolved" and t.milestone("resolved").met_in_time
    assert [a.action for a in t.audit][-1] == "status changed"
    assert console.post(f"/tickets/{number}/reopen", {"reason": "back again"}).status_code == 303
    assert ticket(runtime, number).status == "in progress"


def test_waiting_on_client_pauses_the_clocks_and_resuming_pushes_them_out(
    console: Console, runtime: Runtime, open_ticket: Callable[..., int], clock
) -> None:
    number = open_ticket("2026-11-18 09:58", priority="P1")  # 24x7 clock: the push is plain hours
    before = due_times(runtime, number)
    assert console.post(f"/tickets/{number}/pause", {"reason": "asked for the error message"}).status_code == 303
    assert ticket(runtime, number).status == "waiting on client"
    twice = console.post(f"/tickets/{number}/pause")
    assert twice.status_code == 400 and "already waiting on client" in twice.get_data(as_text=True)
    clock.advance(hours=2)
    console.login()  # the idle timeout signed dana out meanwhile
    assert console.post(f"/tickets/{number}/resume").status_code == 303
    after = due_times(runtime, number)
    assert after["resolved"] == before["resolved"] + timedelta(hours=2)


def test_notes_and_a_corrected_transcript_keep_the_original_in_the_audit_log(
    console: Console, runtime: Runtime, open_ticket: Callable[..., int], voicemail_wav: Path
) -> None:
    number = open_ticket(source="voicemail")
    attach_voicemail(runtime, number, voicemail_wav, transcript="Hi this is Donna from Acne Dental")
    empty = console.post(f"/tickets/{number}/note", {"text": "   "})
    assert empty.status_code == 400 and "A note needs some text." in empty.get_data(as_text=True)
    assert console.post(f"/tickets/{number}/note", {"text": "Left a voicemail for Dana"}).status_code == 303
    fixed = console.post(
        f"/tickets/{number}/transcript", {"transcript": "Hi, this is Dana from Acme Dental", "reason": "names"}
    )
    assert fixed.status_code == 303
    t = ticket(runtime, number)
    assert t.transcript == "Hi, this is Dana from Acme Dental"
    entry = t.audit[-1]
    assert entry.action == "transcript corrected" and entry.detail["original"] == "Hi this is Donna from Acne Dental"
    page = console.get(f"/tickets/{number}").get_data(as_text=True)
    assert "Hi this is Donna from Acne Dental" in page and "Left a voicemail for Dana" in page


def test_a_failed_transcription_is_queued_again(
    console: Console, runtime: Runtime, open_ticket: Callable[..., int], voicemail_wav: Path
) -> None:
    number = open_ticket(source="voicemail")
    attach_voicemail(runtime, number, voicemail_wav)
    sid = ticket(runtime, number).recording_sid
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        t.transcription_state = TranscriptionState.FAILED.value
        t.transcription_error = "ModelError: out of memory"
        s.add(
            OutboxMessage(
                kind="transcribe",
                key=f"transcribe:{sid}",
                payload={"recording_sid": sid},
                created_at=runtime.now(),
                dispatched_at=runtime.now(),
                completed_at=runtime.now(),
                attempts=1,
            )
        )
    page = console.get(f"/tickets/{number}").get_data(as_text=True)
    assert "Transcription failed" in page and "out of memory" in page and "Retry transcription" in page
    assert console.post(f"/tickets/{number}/retry-transcription").status_code == 303
    t = ticket(runtime, number)
    assert t.transcription_state == "pending" and t.audit[-1].action == "transcription retried"
    with runtime.sessions() as s:
        message = s.scalars(select(OutboxMessage).where(OutboxMessage.key == f"transcribe:{sid}")).one()
        assert message.dispatched_at is None and message.completed_at is None
    again = console.post(f"/tickets/{number}/retry-transcription")
    assert again.status_code == 400 and "is pending, not failed" in again.get_data(as_text=True)


def test_no_speech_and_low_confidence_are_shown_plainly(
    console: Console, runtime: Runtime, open_ticket: Callable[..., int], voicemail_wav: Path
) -> None:
    silent = open_ticket(source="voicemail")
    attach_voicemail(runtime, silent, voicemail_wav, transcription_state="no speech")
    unsure = open_ticket(source="voicemail")
    attach_voicemail(
        runtime,
        unsure,
        voicemail_wav,
        transcript="the server is down maybe",
        transcript_low_confidence=True,
        transcript_confidence=0.41,
    )
    assert "No speech detected" in console.get(f"/tickets/{silent}").get_data(as_text=True)
    page = console.get(f"/tickets/{unsure}").get_data(as_text=True)
    assert "Low confidence" in page and "41%" in page
    queue = console.get("/queue").get_data(as_text=True)
    assert "no speech" in queue and "low confidence" in queue


def test_speech_missing_from_the_transcript_is_shown_with_the_span_to_listen_to(
    console: Console, runtime: Runtime, open_ticket: Callable[..., int], voicemail_wav: Path
) -> None:
    number = open_ticket(source="voicemail")
    attach_voicemail(
        runtime,
        number,
        voicemail_wav,
        transcript="This is Dana from Acme Dental. Our server is down. We open up",
        transcript_missing=[[8.3, 15.6]],
        transcript_pass="first",
    )
    page = console.get(f"/tickets/{number}").get_data(as_text=True)
    assert "Incomplete transcript" in page and "part of the message may be missing: listen to 0:08–0:16" in page
    assert "first pass" in page


def test_a_number_two_readings_heard_differently_is_shown_to_check_on_the_page_hint_and_api(
    console: Console, runtime: Runtime, open_ticket: Callable[..., int], voicemail_wav: Path, api_token: str
) -> None:
    number = open_ticket(source="voicemail")
    shown = "Hi, this is Priya. Please call me back at 805 555 5018, thanks."
    attach_voicemail(
        runtime,
        number,
        voicemail_wav,
        transcript=shown,
        transcript_pass="first",
        transcript_passes=[
            {"pass": "first", "text": shown},
            {"pass": "numbers", "text": "Hi, this is Priya. Please call me back at 805 555 0188. Thanks."},
        ],
        hints={"callback_number": "+18055555018"},
    )
    page = console.get(f"/tickets/{number}").get_data(as_text=True)
    assert "Numbers to check" in page
    assert "check 805 555 5018 (another reading heard 805 555 0188) against the recording" in page
    assert "check against the recording</span>" in page  # beside the callback number
    assert ">numbers to check</span>" in console.get("/queue").get_data(as_text=True)
    body = console.client.get(f"/api/tickets/{number}", headers={"Authorization": f"Bearer {api_token}"}).get_json()
    assert body["transcript"]["numbers_to_check"] == {
        "note": "check 805 555 5018 (another reading heard 805 555 0188) against the recording",
        "unsure": [{"number": "805 555 5018", "why": "another reading heard 805 555 0188", "said_at": None}],
        "heard_by_other_reading": ["805 555 0188"],
        "callback_number_unsure": True,
    }
    # Once the coordinator corrects the transcript, their text is what the ticket says.
    console.post(f"/tickets/{number}/transcript", {"transcript": "Call me back at 805 555 0188.", "reason": ""})
    page = console.get(f"/tickets/{number}").get_data(as_text=True)
    assert "Numbers to check" not in page


def test_a_repeat_callers_ticket_is_merged_into_the_open_one(
    console: Console, runtime: Runtime, open_ticket: Callable[..., int]
) -> None:
    first = open_ticket("2026-11-18 09:00", caller_number="+18055550142", summary="Printer offline")
    repeat = open_ticket("2026-11-18 09:50", caller_number="+18055550142", summary="Voicemail: printer still offline")
    page = console.get(f"/tickets/{repeat}").get_data(as_text=True)
    assert f'<option value="{first}">' in page  # offered as the likely target
    itself = console.post(f"/tickets/{repeat}/merge", {"into": str(repeat)})
    assert itself.status_code == 400 and "cannot be merged into itself" in itself.get_data(as_text=True)
    missing = console.post(f"/tickets/{repeat}/merge", {"into": "999999"})
    assert missing.status_code == 400 and "No ticket 999999" in missing.get_data(as_text=True)
    assert console.post(f"/tickets/{repeat}/merge", {"into": f"#{first}", "reason": "same printer"}).status_code == 303
    merged, kept = ticket(runtime, repeat), ticket(runtime, first)
    assert merged.status == "closed" and merged.merged_into_id == kept.id
    assert merged.audit[-1].action == "merged" and kept.audit[-1].action == "merged in"
    assert _rows(console.get("/queue").get_data(as_text=True)) == [first]


def test_a_page_is_acknowledged_from_the_console(
    console: Console, runtime: Runtime, open_ticket: Callable[..., int]
) -> None:
    number = open_ticket("2026-11-18 09:58", priority="P1", source="voicemail")
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        oncall = paging.oncall_from(runtime.settings.oncall_file)
        esc = paging.start_escalation(s, t, oncall=oncall, calendar=calendar_for(runtime.policy), now=runtime.now())
        paging.claim_step(s, t, esc, 0, oncall=oncall, now=runtime.now())
    queue = console.get("/queue").get_data(as_text=True)
    assert "pg-paging" in queue and "Alex Rivera" in queue
    assert console.post(f"/tickets/{number}/acknowledge").status_code == 303
    with runtime.sessions() as s:
        esc = s.scalars(select(Escalation)).one()
        assert (esc.state, esc.acknowledged_by, esc.acknowledged_via) == ("acknowledged", "Dana Reyes", "console")
    t = ticket(runtime, number)
    assert t.milestone("first_response").met_at == runtime.now()
    assert "✓ Dana Reyes" in console.get("/queue").get_data(as_text=True)
    not_p1 = open_ticket(priority="P3")
    refused = console.post(f"/tickets/{not_p1}/acknowledge")
    assert refused.status_code == 400 and "is not being paged" in refused.get_data(as_text=True)


def test_a_ticket_is_opened_by_hand_for_an_answered_call(console: Console, runtime: Runtime) -> None:
    bad = console.post("/tickets/new", {"summary": "Printer", "caller_number": "not a number"})
    assert bad.status_code == 400 and "is not a phone number" in bad.get_data(as_text=True)
    missing = console.post("/tickets/new", {"summary": " "})
    assert missing.status_code == 400 and "A ticket needs a summary." in missing.get_data(as_text=True)
    response = console.post(
        "/tickets/new",
        {
            "summary": "Printer jams on every job",
            "priority": "P4",
            "caller_number": "(805) 555-0142",
            "description": "Called in, tried a restart",
            "assignee": "Blake Chen",
        },
    )
    assert response.status_code == 303
    number = int(response.headers["Location"].rsplit("/", 1)[1])
    t = ticket(runtime, number)
    assert (t.source, t.priority, t.caller_number, t.assignee) == ("phone", "P4", "+18055550142", "Blake Chen")
    assert t.audit[0].actor == "Dana Reyes"


def test_an_exceptional_event_extends_open_and_new_tickets_until_it_ends(
    console: Console, runtime: Runtime, open_ticket: Callable[..., int], clock
) -> None:
    number = open_ticket("2026-11-18 09:00", priority="P1")
    before = due_times(runtime, number)
    refused = console.post("/events", {"reason": "", "hours": "4"})
    assert refused.status_code == 400 and "needs a reason" in refused.get_data(as_text=True)
    assert console.post("/events", {"reason": "storm", "hours": "lots"}).status_code == 400
    assert console.post("/events", {"reason": "storm", "hours": "500"}).status_code == 400
    with runtime.sessions() as s:
        assert s.scalars(select(ExceptionalEvent)).all() == []
    assert console.post("/events", {"reason": "Regional power outage", "hours": "4"}).status_code == 303
    after = due_times(runtime, number)
    assert all(after[k] == before[k] + timedelta(hours=4) for k in before if before[k] is not None)
    t = ticket(runtime, number)
    assert t.audit[-1].action == "exceptional event" and t.audit[-1].reason == "Regional power outage"
    page = console.get(f"/tickets/{number}").get_data(as_text=True)
    assert "SLA extended by" in page and "Regional power outage" in page and "Exceptional event in force" in page
    during = open_ticket(priority="P1")
    assert ticket(runtime, during).sla_extension_seconds == 4 * 3600
    assert due_times(runtime, during)["resolved"] == runtime.now() + timedelta(hours=8)
    with runtime.sessions() as s:
        event_id = s.scalars(select(ExceptionalEvent.id)).one()
    clock.advance(minutes=20)
    assert console.post(f"/events/{event_id}/end").status_code == 303
    assert ticket(runtime, open_ticket(priority="P1")).sla_extension_seconds == 0
    assert "Exceptional event in force" not in console.get("/queue").get_data(as_text=True)


def test_the_on_call_page_shows_who_is_on_call_now_and_next(console: Console) -> None:
    page = console.get("/oncall").get_data(as_text=True)
    assert "Business hours" in page and "Emergency response team" in page
    assert "After-hours on-call" in page and "Morgan Lee" in page


def test_resolved_and_closed_tickets_are_listed_and_searched(
    console: Console, runtime: Runtime, open_ticket: Callable[..., int]
) -> None:
    with transaction(runtime.sessions) as s:
        s.add(Client(name="Harbor Logistics", main_number="+18055550200"))
    done = open_ticket("2026-11-18 08:30", priority="P3", caller_number="+18055550200", summary="Printer offline")
    other = open_ticket("2026-11-18 08:40", priority="P2", caller_number="+18055550377", summary="VPN drops")
    still_open = open_ticket("2026-11-18 09:00", priority="P3", summary="Outlook asks for the password")
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, done)
        lifecycle.add_note(s, t, "Replaced the fuser unit", actor="tests", now=runtime.now())
        for number in (done, other):
            lifecycle.set_status(
                s, lifecycle.get_ticket(s, number), "resolved", actor="tests", now=runtime.now(), policy=runtime.policy
            )
    assert _rows(console.get("/queue").get_data(as_text=True)) == [still_open]
    assert sorted(_rows(console.get("/queue?status=resolved").get_data(as_text=True))) == [done, other]
    assert sorted(_rows(console.get("/queue?status=all").get_data(as_text=True))) == [done, other, still_open]
    # Number, caller (as typed), client, words of a note.
    for q in (str(done), f"%23{done}", "805 555 0200", "(805) 555-0200", "harbor", "fuser"):
        assert _rows(console.get(f"/queue?status=ended&q={q}").get_data(as_text=True)) == [done], q
    assert _rows(console.get("/queue?q=outlook").get_data(as_text=True)) == [still_open]
    assert _rows(console.get("/queue?status=ended&q=100%25").get_data(as_text=True)) == []  # % is a character
    # An unknown status is named, not quietly replaced by the open queue.
    bogus = console.get("/queue?status=bogus").get_data(as_text=True)
    assert "Filter ignored: unknown status &#39;bogus&#39;" in bogus


def test_a_resolved_ticket_shows_final_milestone_states_and_no_countdown(
    console: Console, runtime: Runtime, open_ticket: Callable[..., int]
) -> None:
    number = open_ticket("2026-11-18 08:00", priority="P3")  # first response due 08:12: long past at 10:00
    with transaction(runtime.sessions) as s:
        lifecycle.set_status(
            s, lifecycle.get_ticket(s, number), "resolved", actor="tests", now=runtime.now(), policy=runtime.policy
        )
    html = console.get(f"/tickets/{number}").get_data(as_text=True)
    assert "data-due=" not in html
    assert re.search(r'data-milestone="first_response".*?pill st-met-late">met late', html, re.S)
    assert re.search(r'data-milestone="resolution_plan".*?pill st-(late|not-needed)">', html, re.S)
    assert re.search(r'data-milestone="resolved".*?pill st-met">met', html, re.S)


def test_one_timeline_with_a_filter_and_a_clear_page_for_an_unknown_ticket(
    console: Console, runtime: Runtime, open_ticket: Callable[..., int]
) -> None:
    number = open_ticket("2026-11-18 09:50", priority="P3")
    console.post(f"/tickets/{number}/note", {"text": "Called the client back"})
    html = console.get(f"/tickets/{number}").get_data(as_text=True)
    assert "Audit log" not in html and html.count("Called the client back") == 1
    people = console.get(f"/tickets/{number}?show=people").get_data(as_text=True)
    assert "Called the client back" in people and ">created<" not in people
    sla = console.get(f"/tickets/{number}?show=sla").get_data(as_text=True)
    assert ">created<" in sla and "Called the client back" not in sla
    assert "Unknown timeline filter" in console.get(f"/tickets/{number}?show=bogus").get_data(as_text=True)
    missing = console.get("/tickets/499999")
    assert missing.status_code == 404 and "No ticket 499999" in missing.get_data(as_text=True)
    icon = console.get("/favicon.ico")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    icon.close()

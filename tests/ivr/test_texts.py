"""Texts to the support number, through the real /twilio/sms webhook signed as Twilio signs it, on both databases:
tickets from texts, threading, keywords (STOP, START, HELP), replies back by SMS, MMS pictures, hostile input."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from sqlalchemy import func, select

import runtime as rt
from ivr.simulate import new_sid
from settings import ConfigError, load_settings
from tests.conftest import FixedClock
from tests.ivr.conftest import CAT, DANA, Desk
from ticketing import conversation, lifecycle, outbox, texts
from ticketing.db import transaction
from ticketing.models import (
    AuditEntry,
    Client,
    Contact,
    MailAttachment,
    SmsOptOut,
    Status,
    Ticket,
    TicketMessage,
)
from workers.texts import fetch_text_media

SUPPORT = "+18055922500"
ERIN = "+18055550188"  # not in the directory
AFTER_HOURS = "2026-11-18 22:00"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 600
JPEG = b"\xff\xd8\xff\xe0" + b"\x01" * 900


def small_caps(desk: Desk) -> None:
    """Small attachment caps, so the caps are reached by small pictures."""
    desk.runtime.settings = desk.runtime.settings.with_overrides(
        mail_attachment_max_bytes=2048, mail_attachment_max_count=3
    )


@pytest.fixture
def acme(desk: Desk) -> None:
    """Dana is a known contact of Acme Dental, with an email address."""
    with transaction(desk.runtime.sessions) as s:
        client = Client(name="Acme Dental", main_number="+18055550100")
        s.add(Contact(client=client, name="Dana Whitfield", phone=DANA, email="dana@acme-dental.example"))


def post(desk: Desk, params: dict[str, str]) -> tuple[int, str]:
    """POST /twilio/sms signed as Twilio signs it; the status and the body."""
    public = desk.sim.public + "/twilio/sms"
    signature = desk.sim.validator.compute_signature(public, params)
    response = desk.sim.http.post(
        desk.sim.server + "/twilio/sms", data=params, headers={"X-Twilio-Signature": signature}, timeout=10
    )
    return response.status_code, response.text


def text(desk: Desk, sender: str, body: str | None, *, sid: str | None = None, **extra: str) -> tuple[str, list[str]]:
    """One text (SMS, or MMS with ``extra`` media fields) to the support number: its sid and the replies."""
    sid = sid or new_sid("MM" if "NumMedia" in extra else "SM")
    params = {"MessageSid": sid, "AccountSid": desk.twilio.account_sid, "From": sender, "To": SUPPORT, **extra}
    if body is not None:
        params["Body"] = body
    status, doc = post(desk, params)
    assert status == 200, doc
    root = ET.fromstring(doc)
    assert root.tag == "Response"
    return sid, [m.text or "" for m in root.iter("Message")]


def tickets_of(desk: Desk, number: str) -> list[Ticket]:
    with desk.runtime.sessions() as s:
        return list(s.scalars(select(Ticket).where(Ticket.caller_number == number).order_by(Ticket.id)))


def messages_of(desk: Desk, ticket_number: int) -> list[TicketMessage]:
    with desk.runtime.sessions() as s:
        ticket = s.scalars(select(Ticket).where(Ticket.number == ticket_number)).one()
        return list(conversation.conversation(s, ticket))


def ticket_count(desk: Desk) -> int:
    with desk.runtime.sessions() as s:
        return int(s.scalar(select(func.count(Ticket.id))) or 0)


def reply(desk: Desk, ticket_number: int, body: str) -> TicketMessage:
    """A coordinator's reply from the console's box (the domain function it calls)."""
    with transaction(desk.runtime.sessions) as s:
        ticket = s.scalars(select(Ticket).where(Ticket.number == ticket_number)).one()
        return conversation.reply_to_client(s, ticket, body, actor="coordinator", now=desk.runtime.now())


def actions(desk: Desk, ticket_number: int) -> list[AuditEntry]:
    with desk.runtime.sessions() as s:
        return list(
            s.scalars(select(AuditEntry).join(Ticket).where(Ticket.number == ticket_number).order_by(AuditEntry.id))
        )


# --- a text opens a ticket, later ones join it ----------------------------------------------------------


def test_a_text_from_a_known_contact_opens_a_p3_ticket_and_answers_with_its_number(desk: Desk, acme: None) -> None:
    _sid, answer = text(desk, DANA, "The printer on the 2nd floor\r\nshows error 49.")

    (ticket,) = tickets_of(desk, DANA)
    assert answer == [
        f"ITECH Solutions support: thank you, we opened ticket #{ticket.number} for your message. "
        "Reply to this number to add to it."
    ]
    assert (ticket.priority, ticket.source, ticket.status, ticket.language) == ("P3", "sms", "new", "en")
    assert ticket.contact_id is not None and ticket.client_id is not None
    assert ticket.summary == "The printer on the 2nd floor shows error 49."
    (message,) = messages_of(desk, ticket.number)
    assert (message.direction, message.channel, message.from_address) == ("in", "sms", DANA)
    assert message.body == "The printer on the 2nd floor\nshows error 49."
    assert message.author == "Dana Whitfield"
    desk.work()
    assert desk.twilio.messages() == []  # the answer was the TwiML; no notice by mail or SMS on top


def test_texts_join_the_open_ticket_opened_by_text_within_the_window_and_not_after(
    desk: Desk, clock: FixedClock
) -> None:
    text(desk, ERIN, "Outlook keeps asking for my password")
    (first,) = tickets_of(desk, ERIN)
    clock.advance(hours=71)
    _sid, answer = text(desk, ERIN, "Still happening")
    assert answer == [f"ITECH Solutions support: your message is on ticket #{first.number}."]
    assert [m.body for m in messages_of(desk, first.number)] == [
        "Outlook keeps asking for my password",
        "Still happening",
    ]

    clock.advance(hours=2)  # 73 hours after the ticket was opened: SMS_THREAD_HOURS (72) is over
    text(desk, ERIN, "Hello again")
    assert len(tickets_of(desk, ERIN)) == 2

    # A resolved ticket is never joined, however recent.
    latest = tickets_of(desk, ERIN)[-1]
    with transaction(desk.runtime.sessions) as s:
        ticket = s.get(Ticket, latest.id)
        assert ticket is not None
        lifecycle.set_status(
            s, ticket, Status.RESOLVED, actor="coordinator", now=desk.runtime.now(), policy=desk.runtime.policy
        )
    _sid, answer = text(desk, ERIN, "It broke again")
    third = tickets_of(desk, ERIN)[-1]
    assert len(tickets_of(desk, ERIN)) == 3 and f"opened ticket #{third.number}" in answer[0]


def test_a_text_never_joins_a_ticket_the_caller_opened_by_phone(desk: Desk, clock: FixedClock) -> None:
    clock.set(AFTER_HOURS)
    call_ticket = desk.ticket_of(desk.p1_call(ERIN))
    _sid, answer = text(desk, ERIN, "I left a voicemail about the server")
    numbers = [t.number for t in tickets_of(desk, ERIN)]
    assert len(numbers) == 2 and call_ticket in numbers
    assert f"opened ticket #{numbers[-1]}" in answer[0]


def test_the_thread_window_is_a_setting(desk: Desk, clock: FixedClock) -> None:
    desk.runtime.settings = desk.runtime.settings.with_overrides(sms_thread_hours=1)
    text(desk, ERIN, "VPN down")
    clock.advance(minutes=61)
    text(desk, ERIN, "VPN still down")
    assert len(tickets_of(desk, ERIN)) == 2


def test_sms_thread_hours_is_validated_like_the_other_settings() -> None:
    assert load_settings({}).sms_thread_hours == 72
    assert load_settings({"SMS_THREAD_HOURS": "24"}).sms_thread_hours == 24
    for bad in ("0", "-5", "a day", "1.5"):
        with pytest.raises(ConfigError, match="SMS_THREAD_HOURS"):
            load_settings({"SMS_THREAD_HOURS": bad})


# --- the answer's language -------------------------------------------------------------------------------


def test_a_spanish_text_is_answered_in_spanish(desk: Desk) -> None:
    _sid, answer = text(desk, ERIN, "Hola, la impresora de la oficina no funciona")
    (ticket,) = tickets_of(desk, ERIN)
    assert ticket.language == "es"
    assert answer == [
        f"Soporte de ITECH Solutions: gracias, abrimos el ticket #{ticket.number} con su mensaje. "
        "Responda a este número para añadir algo."
    ]


def test_a_contact_whose_language_is_spanish_is_answered_in_spanish(desk: Desk, acme: None) -> None:
    with transaction(desk.runtime.sessions) as s:
        earlier = lifecycle.open_ticket(
            s,
            policy=desk.runtime.policy,
            now=desk.runtime.now(),
            priority="P3",
            source="phone",
            actor="coordinator",
            caller_number=DANA,
            notify=False,
        )
        earlier.language = "es"
    _sid, answer = text(desk, DANA, "printer down")
    assert answer[0].startswith("Soporte de ITECH Solutions: gracias, abrimos el ticket #")


# --- the coordinator's reply goes back by SMS --------------------------------------------------------------


def test_a_reply_to_a_text_goes_back_by_sms_though_the_contact_has_an_email_address(desk: Desk, acme: None) -> None:
    text(desk, DANA, "Can you reset my password?")
    (ticket,) = tickets_of(desk, DANA)

    sent = reply(desk, ticket.number, "Done: check your phone for the new one.")
    assert (sent.channel, sent.to_address) == ("sms", DANA)
    desk.work()

    (sms,) = desk.twilio.messages(to=DANA)
    assert "Done: check your phone for the new one." in (sms.param("Body") or "")
    assert sms.param("From") == SUPPORT and sms.status == 201
    assert [m.state for m in messages_of(desk, ticket.number) if m.direction == "out"] == ["sent"]
    assert "sms sent" in [a.action for a in actions(desk, ticket.number)]


def test_the_reply_follows_the_channel_the_client_used_last(desk: Desk, acme: None) -> None:
    text(desk, DANA, "Laptop will not boot")
    (ticket,) = tickets_of(desk, DANA)
    with transaction(desk.runtime.sessions) as s:
        t = s.get(Ticket, ticket.id)
        assert t is not None
        assert conversation.reply_route(s, t) == ("sms", DANA)
        conversation.add_client_message(
            s, t, body="Photos attached by mail", author="Dana", now=desk.runtime.now(), policy=desk.runtime.policy
        )
        s.flush()
        assert conversation.reply_route(s, t) == ("email", "dana@acme-dental.example")


# --- STOP, START, HELP -------------------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["STOP", "stop", " Stop ", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"])
def test_an_opt_out_keyword_opens_no_ticket_gets_no_reply_and_opts_the_number_out(desk: Desk, word: str) -> None:
    _sid, answer = text(desk, ERIN, word)
    assert answer == []
    assert ticket_count(desk) == 0
    with desk.runtime.sessions() as s:
        assert texts.opt_out_of(s, ERIN) is not None


def test_after_stop_no_sms_goes_out_and_the_reason_is_on_the_ticket_until_start(desk: Desk, acme: None) -> None:
    text(desk, DANA, "Monitor flickers")
    (ticket,) = tickets_of(desk, DANA)
    assert text(desk, DANA, "STOP")[1] == []

    refused = reply(desk, ticket.number, "Try another cable, please.")
    desk.work()
    assert desk.twilio.messages(to=DANA) == []
    out = [m for m in messages_of(desk, ticket.number) if m.id == refused.id][0]
    assert out.state == "suppressed" and (out.error or "").startswith("opted out:")
    assert "texted STOP" in (out.error or "") and DANA not in (out.error or "")  # the number is masked
    (entry,) = [a for a in actions(desk, ticket.number) if a.action == "sms not sent"]
    assert (entry.reason or "").startswith("opted out:")

    # A text after STOP still reaches the ticket, but gets no answer; HELP gets none either.
    assert text(desk, DANA, "Cable did not help")[1] == []
    assert len([m for m in messages_of(desk, ticket.number) if m.direction == "in"]) == 2
    assert text(desk, DANA, "HELP")[1] == []

    assert text(desk, DANA, "start")[1] == []  # Twilio sends the carrier's confirmation itself
    reply(desk, ticket.number, "Back in touch: a technician comes tomorrow.")
    desk.work()
    (sms,) = desk.twilio.messages(to=DANA)
    assert "a technician comes tomorrow" in (sms.param("Body") or "")


@pytest.mark.parametrize("word", ["START", "yes", "UNSTOP"])
def test_an_opt_in_keyword_lifts_the_opt_out_and_opens_no_ticket(desk: Desk, word: str) -> None:
    text(desk, ERIN, "QUIT")
    assert text(desk, ERIN, word)[1] == []
    assert ticket_count(desk) == 0
    with desk.runtime.sessions() as s:
        assert texts.opt_out_of(s, ERIN) is None
        row = s.scalars(select(SmsOptOut).where(SmsOptOut.number == ERIN)).one()
        assert row.keyword == word.upper()


def test_twilio_advanced_opt_out_type_wins_over_the_words(desk: Desk) -> None:
    assert text(desk, ERIN, "ARRET", OptOutType="STOP")[1] == []
    with desk.runtime.sessions() as s:
        assert texts.opt_out_of(s, ERIN) is not None
    assert ticket_count(desk) == 0


@pytest.mark.parametrize("word", ["HELP", "info"])
def test_help_answers_with_the_support_lines_name_and_number(desk: Desk, word: str) -> None:
    _sid, answer = text(desk, ERIN, word)
    assert len(answer) == 1 and answer[0].startswith("ITECH Solutions support line: call 805-592-2500")
    assert ticket_count(desk) == 0


def test_a_sentence_with_a_keyword_in_it_is_a_request_not_a_keyword(desk: Desk) -> None:
    text(desk, ERIN, "Please stop the backup job, it is slowing everything")
    assert len(tickets_of(desk, ERIN)) == 1
    with desk.runtime.sessions() as s:
        assert texts.opt_out_of(s, ERIN) is None


def test_a_stop_also_stops_the_voicemail_confirmation_sms(desk: Desk, clock: FixedClock) -> None:
    text(desk, ERIN, "STOP")
    clock.set(AFTER_HOURS)
    number = desk.ticket_of(desk.p1_call(ERIN))
    with transaction(desk.runtime.sessions) as s:  # what a recorded voicemail queues (ticketing.voicemail)
        outbox.post(s, outbox.CONFIRM, f"confirm:{number}", {"ticket": number}, desk.runtime.now())
    desk.work()
    assert desk.twilio.messages(to=ERIN) == []
    failed = [a for a in actions(desk, number) if a.action == "confirmation failed"]
    assert len(failed) == 1 and failed[0].detail["error"].startswith("opted out:")


# --- acknowledgements from on-call numbers come first ------------------------------------------------------


def test_an_ack_from_a_paged_engineer_still_acknowledges_and_opens_no_ticket(desk: Desk, clock: FixedClock) -> None:
    clock.set(AFTER_HOURS)
    number = desk.ticket_of(desk.p1_call())
    desk.work()
    _sid, answer = text(desk, CAT, "1")
    assert answer[0].startswith(f"Acknowledged ticket #{number}")
    assert desk.escalation(number).acknowledged_via == "sms"
    assert tickets_of(desk, CAT) == []
    _sid, answer = text(desk, ERIN, "ack")  # nobody paged this number
    assert "no page to acknowledge" in answer[0] and tickets_of(desk, ERIN) == []


def test_an_on_call_engineer_who_texted_stop_is_paged_by_call_but_not_by_sms(desk: Desk, clock: FixedClock) -> None:
    assert text(desk, CAT, "STOP")[1] == []  # no page to acknowledge: the keyword counts
    clock.set(AFTER_HOURS)
    number = desk.ticket_of(desk.p1_call())
    desk.work()
    assert desk.twilio.messages(to=CAT) == [] and len(desk.twilio.calls(to=CAT)) == 1
    pages = {p.channel: p for p in desk.pages(number)}
    assert (pages["sms"].error or "").startswith("opted out:") and pages["call"].state == "sent"


# --- signed, once per MessageSid ---------------------------------------------------------------------------


def test_forged_and_unsigned_texts_are_refused_and_change_nothing(desk: Desk) -> None:
    params = {"MessageSid": new_sid("SM"), "AccountSid": desk.twilio.account_sid, "From": ERIN, "Body": "hi"}
    unsigned = desk.sim.http.post(desk.sim.server + "/twilio/sms", data=params, timeout=10)
    assert unsigned.status_code == 403
    signature = desk.sim.validator.compute_signature(desk.sim.public + "/twilio/sms", params)
    tampered = desk.sim.http.post(
        desk.sim.server + "/twilio/sms",
        data={**params, "Body": "STOP"},
        headers={"X-Twilio-Signature": signature},
        timeout=10,
    )
    assert tampered.status_code == 403
    wrong_key = desk.sim.http.post(
        desk.sim.server + "/twilio/sms", data=params, headers={"X-Twilio-Signature": "A" * 28}, timeout=10
    )
    assert wrong_key.status_code == 403
    assert ticket_count(desk) == 0
    with desk.runtime.sessions() as s:
        assert s.scalar(select(func.count(SmsOptOut.id))) == 0


def test_the_same_message_sid_twice_makes_one_ticket_and_one_message(desk: Desk) -> None:
    sid, first = text(desk, ERIN, "Scanner offline")
    _sid, again = text(desk, ERIN, "Scanner offline", sid=sid)
    (ticket,) = tickets_of(desk, ERIN)
    assert len(messages_of(desk, ticket.number)) == 1
    assert f"#{ticket.number}" in first[0] and f"#{ticket.number}" in again[0]


def test_the_same_message_delivered_twice_at_once_makes_one_message(desk: Desk) -> None:
    sid = new_sid("SM")
    params = {"MessageSid": sid, "AccountSid": desk.twilio.account_sid, "From": ERIN, "To": SUPPORT, "Body": "Wi-Fi"}
    start = threading.Barrier(2)
    answers: list[tuple[int, str]] = []

    def deliver() -> None:
        start.wait()
        answers.append(post(desk, params))

    workers = [threading.Thread(target=deliver) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=30)
    assert [status for status, _doc in answers] == [200, 200]
    with desk.runtime.sessions() as s:
        assert s.scalar(select(func.count(TicketMessage.id)).where(TicketMessage.key == f"sms:{sid}")) == 1
    tickets = tickets_of(desk, ERIN)
    assert len(tickets) == 1
    assert all(f"#{tickets[0].number}" in doc for _status, doc in answers)


# --- MMS pictures ------------------------------------------------------------------------------------------


def media_fields(urls: list[tuple[str, str]]) -> dict[str, str]:
    fields = {"NumMedia": str(len(urls))}
    for i, (url, content_type) in enumerate(urls):
        fields[f"MediaUrl{i}"] = url
        fields[f"MediaContentType{i}"] = content_type
    return fields


def attachments_of(desk: Desk, ticket_number: int) -> list[MailAttachment]:
    with desk.runtime.sessions() as s:
        return list(
            s.scalars(
                select(MailAttachment)
                .join(TicketMessage)
                .join(Ticket)
                .where(Ticket.number == ticket_number)
                .order_by(MailAttachment.id)
            )
        )


def test_mms_pictures_are_fetched_from_twilio_with_the_credentials_and_stored(desk: Desk) -> None:
    small_caps(desk)
    sid = new_sid("MM")
    png = desk.twilio.add_message_media(sid, PNG, "image/png")
    jpeg = desk.twilio.add_message_media(sid, JPEG, "image/jpeg")
    text(desk, ERIN, "Error on screen", sid=sid, **media_fields([(png, "image/png"), (jpeg, "image/jpeg")]))
    (ticket,) = tickets_of(desk, ERIN)
    assert attachments_of(desk, ticket.number) == []  # fetched after the answer, by a job

    desk.work()
    stored = attachments_of(desk, ticket.number)
    assert [(a.content_type, a.size, a.note) for a in stored] == [
        ("image/png", len(PNG), None),
        ("image/jpeg", len(JPEG), None),
    ]
    assert Path(stored[0].path or "").read_bytes() == PNG and Path(stored[1].path or "").read_bytes() == JPEG
    assert stored[0].filename.endswith(".png")
    fetches = [r for r in desk.twilio.requests if "/Media/" in r.path]
    assert len(fetches) == 2 and all(r.auth_user == desk.twilio.account_sid and r.status == 200 for r in fetches)
    assert "sms media stored" in [a.action for a in actions(desk, ticket.number)]

    desk.work()  # the job again (Twilio's retry of the webhook, a worker's retry): nothing twice
    _sid, answer = text(desk, ERIN, "Error on screen", sid=sid, **media_fields([(png, "image/png")]))
    desk.work()
    assert len(attachments_of(desk, ticket.number)) == 2 and f"#{ticket.number}" in answer[0]


def test_media_off_twilios_origin_over_the_caps_or_missing_are_listed_with_the_reason(desk: Desk) -> None:
    small_caps(desk)
    sid = new_sid("MM")
    good = desk.twilio.add_message_media(sid, PNG, "image/png")
    big = desk.twilio.add_message_media(sid, b"\xff\xd8" + b"\x00" * 5000, "image/jpeg")  # over the 2048-byte cap
    missing = desk.twilio.add_message_media(sid, b"", "image/png").rsplit("/", 1)[0] + "/ME" + "0" * 32
    elsewhere = "https://media.attacker.example/steal.png"
    urls = [(elsewhere, "image/png"), (big, "image/jpeg"), (missing, "image/png"), (good, "image/png")]
    text(desk, ERIN, "", sid=sid, **media_fields(urls))
    (ticket,) = tickets_of(desk, ERIN)
    assert ticket.summary == "Picture by text message"

    desk.work()
    found = attachments_of(desk, ticket.number)
    notes = [a.note or "" for a in found]
    assert "not one of Twilio's media hosts" in notes[0] and "MediaUrl" in notes[0]
    assert "over the 2048-byte cap" in notes[1] and found[1].path is None
    assert "HTTP 404" in notes[2]
    assert "over MAIL_ATTACHMENT_MAX_COUNT (3 per message)" in notes[3] and found[3].filename == "1 more pictures"
    assert all(a.path is None for a in found)
    assert not any("attacker" in r.path for r in desk.twilio.requests)
    (entry,) = [a for a in actions(desk, ticket.number) if a.action == "sms media not stored"]
    assert "HTTP 404" in (entry.reason or "") and entry.detail == {"files": 4}


# --- hostile and odd input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sender", ["", "anonymous", "Restricted", "+266696687", "12345", "not a number", "sip:x@y"])
def test_withheld_or_invalid_senders_open_nothing_and_get_no_answer(desk: Desk, sender: str) -> None:
    _sid, answer = text(desk, sender, "Help, the server is down")
    assert answer == [] and ticket_count(desk) == 0


@pytest.mark.parametrize("body", [None, "", "   ", "\r\n\r\n", "\x00\x07"])
def test_an_empty_text_opens_nothing_and_asks_for_words(desk: Desk, body: str | None) -> None:
    _sid, answer = text(desk, ERIN, body)
    assert answer == ["ITECH Solutions support: please text a few words about the problem, or call 805-592-2500."]
    assert ticket_count(desk) == 0


def test_a_huge_body_with_control_characters_is_stored_cut_and_clean(desk: Desk) -> None:
    body = "Line one\r\nLine two\rLine\x00three\x1b[31m " + "x" * 60000
    text(desk, ERIN, body)
    (ticket,) = tickets_of(desk, ERIN)
    (message,) = messages_of(desk, ticket.number)
    assert message.body.startswith("Line one\nLine two\nLine three [31m x")
    assert "\r" not in message.body and "\x00" not in message.body and "\x1b" not in message.body
    assert message.body.endswith("more characters not kept]") and len(message.body) < texts.MAX_BODY_CHARS + 100
    assert "\n" not in ticket.summary and len(ticket.summary) <= texts.SUMMARY_CHARS


@pytest.mark.parametrize("count", ["9999999999", "-1", "many", ""])
def test_nonsense_media_counts_are_no_media(desk: Desk, count: str) -> None:
    _sid, answer = text(desk, ERIN, "Keyboard broken", NumMedia=count, MediaUrl0="https://api.twilio.com/x")
    assert "opened ticket" in answer[0]
    desk.work()
    (ticket,) = tickets_of(desk, ERIN)
    assert attachments_of(desk, ticket.number) == []


def test_a_text_without_a_message_sid_opens_nothing(desk: Desk) -> None:
    status, doc = post(desk, {"AccountSid": desk.twilio.account_sid, "From": ERIN, "To": SUPPORT, "Body": "hi"})
    assert status == 200 and "<Message>" not in doc
    assert ticket_count(desk) == 0


# --- the pure rules ----------------------------------------------------------------------------------------


def test_keywords_are_whole_messages_in_any_case() -> None:
    assert [texts.keyword(w) for w in ("STOP", " optout ", "Revoke", "YES", "unstop", "INFO", "help")] == [
        "stop",
        "stop",
        "stop",
        "start",
        "start",
        "help",
        "help",
    ]
    assert [texts.keyword(w) for w in ("stop it", "STOP.", "", None, "yes please")] == [None] * 5
    assert texts.keyword("anything", "HELP") == "help" and texts.keyword("STOP", "bogus") == "stop"


def test_spanish_is_recognised_without_taking_english_for_it() -> None:
    assert texts.looks_spanish("¿Pueden llamarme?")
    assert texts.looks_spanish("hola, el correo no funciona desde ayer")
    assert not texts.looks_spanish("the email is not working since yesterday")
    assert not texts.looks_spanish("no")
    assert not texts.looks_spanish("")


def test_a_fetch_twilio_keeps_failing_is_shown_on_the_message_after_the_last_try(desk: Desk) -> None:
    sid = new_sid("MM")
    url = desk.twilio.add_message_media(sid, PNG, "image/png")
    desk.twilio.fail_next(url.rsplit("/", 1)[1], status=503, count=1)
    text(desk, ERIN, "Screenshot", sid=sid, **media_fields([(url, "image/png")]))
    (ticket,) = tickets_of(desk, ERIN)
    (message,) = messages_of(desk, ticket.number)

    rt.install(desk.runtime)
    try:  # outside RQ: this is the job's last try
        assert fetch_text_media(message.id, sid, [[url, "image/png"]]) == "0 stored, 1 not"
    finally:
        rt.install(None)

    (attachment,) = attachments_of(desk, ticket.number)
    assert attachment.path is None and attachment.note == "not fetched: HTTP 503"
    (entry,) = [a for a in actions(desk, ticket.number) if a.action == "sms media not stored"]
    assert "HTTP 503" in (entry.reason or "")

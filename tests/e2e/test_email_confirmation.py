"""A voicemail caller whose contact has an email address gets the "new ticket created" email too."""

from __future__ import annotations

import mailbox
from email.parser import BytesParser
from email.policy import default

from ivr.simulate import CallPlan, TwilioSimulator
from tests.e2e.conftest import Service
from ticketing.db import transaction
from ticketing.models import Client, Contact, Ticket, TicketMessage

DANA = "+18055550142"


def test_a_voicemail_from_a_contact_with_email_sends_the_confirmation_email(
    sim: TwilioSimulator, live: Service
) -> None:
    with transaction(live.runtime.sessions) as s:
        client = Client(name="Acme Dental", main_number="+18055550100")
        s.add(Contact(client=client, name="Dana Whitfield", phone=DANA, email="dana@acme-dental.example"))
    result = sim.call(DANA, CallPlan(keys=[], coordinator="busy"))  # hangs up at the beep: still a ticket
    status = {"CallSid": result.call_sid, "AccountSid": sim.account_sid, "From": DANA, "To": sim.to}
    sim.post("/twilio/voice/status", {**status, "CallStatus": "completed"})
    live.work()
    with live.runtime.sessions() as s:
        number = s.query(Ticket).one().number
    box = mailbox.Maildir(live.runtime.settings.dev_mailbox_dir, create=False)
    (raw,) = [box.get_bytes(k) for k in box.keys()]
    message = BytesParser(policy=default).parsebytes(raw)
    assert message["To"] == "dana@acme-dental.example"
    assert message["Subject"].startswith(f"[#{number}] New ticket created")
    assert f"Ticket number:   {number}" in message.get_content()
    assert "call 805-592-2500 to adjust" not in message.get_content()  # that line is for email tickets only
    with live.runtime.sessions() as s:
        ticket = s.query(Ticket).one()
        (sent,) = s.query(TicketMessage).filter_by(ticket_id=ticket.id).all()
        assert sent.state == "sent" and sent.message_id == message["Message-ID"]


def test_a_caller_who_chose_spanish_gets_the_confirmation_email_in_spanish(sim: TwilioSimulator, live: Service) -> None:
    with transaction(live.runtime.sessions) as s:
        client = Client(name="Panadería Sol", main_number="+18055550100")
        s.add(Contact(client=client, name="Lucía Gómez", phone=DANA, email="lucia@panaderia-sol.example"))
    result = sim.call(DANA, CallPlan(keys=["9", ""], coordinator="busy"))
    status = {"CallSid": result.call_sid, "AccountSid": sim.account_sid, "From": DANA, "To": sim.to}
    sim.post("/twilio/voice/status", {**status, "CallStatus": "completed"})
    live.work()
    with live.runtime.sessions() as s:
        ticket = s.query(Ticket).one()
        number, language = ticket.number, ticket.language
    assert language == "es"
    box = mailbox.Maildir(live.runtime.settings.dev_mailbox_dir, create=False)
    (raw,) = [box.get_bytes(k) for k in box.keys()]
    message = BytesParser(policy=default).parsebytes(raw)
    assert message["Subject"].startswith(f"[#{number}] Ticket nuevo creado")
    body = message.get_content()
    assert body.startswith("Hola Lucía:") and f"Número de ticket:   {number}" in body
    assert "Prioridad:          P3 - Media" in body and "Soporte de ITECH Solutions" in body

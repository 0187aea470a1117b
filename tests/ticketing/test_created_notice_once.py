"""A ticket is created once, so its client gets one "new ticket created" email however many paths confirm it
(a caller who keeps a place in line is confirmed at once, and again when the message arrives)."""

from __future__ import annotations

from sqlalchemy import select

from runtime import Runtime
from tests.conftest import FixedClock
from ticketing import lifecycle, voicemail
from ticketing.db import transaction
from ticketing.models import Client, Contact, OutboxMessage


def _notices(runtime: Runtime, number: int, event: str) -> list[str]:
    with runtime.sessions() as s:
        keys = s.scalars(select(OutboxMessage.key).where(OutboxMessage.key.like(f"notify:{number}:{event}:%")))
        return sorted(keys)


def _voicemail(runtime: Runtime) -> int:
    """A P3 voicemail ticket of a contact with an email address, opened without its notices; its number."""
    with transaction(runtime.sessions) as s:
        acme = Client(name="Acme Dental", main_number="+18055550100")
        s.add(Contact(client=acme, name="Dana Whitfield", phone="+18055550142", email="dana@acme.example"))
        s.flush()
        t = lifecycle.open_ticket(
            s,
            policy=runtime.policy,
            now=runtime.now(),
            priority="P3",
            source="voicemail",
            actor="support line",
            caller_number="+18055550142",
            summary="Printer offline",
            notify=False,
        )
        return int(t.number or 0)


def test_confirming_a_voicemail_twice_queues_one_created_email(runtime: Runtime, clock: FixedClock) -> None:
    number = _voicemail(runtime)
    with transaction(runtime.sessions) as s:
        voicemail.request_confirmation(s, lifecycle.get_ticket(s, number), runtime.now())  # the place in line, at once
    clock.advance(minutes=1)
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        voicemail.request_confirmation(s, t, runtime.now())  # its message, a minute later
        voicemail.request_confirmation(s, t, runtime.now())  # and a webhook delivered twice
    assert _notices(runtime, number, "created") == [f"notify:{number}:created:1"]


def test_other_events_are_each_told_every_time_they_happen(runtime: Runtime) -> None:
    number = _voicemail(runtime)
    with transaction(runtime.sessions) as s:
        lifecycle.notify_client(s, lifecycle.get_ticket(s, number), "waiting", runtime.now())
    with transaction(runtime.sessions) as s:
        lifecycle.notify_client(s, lifecycle.get_ticket(s, number), "waiting", runtime.now())
    assert _notices(runtime, number, "waiting") == [f"notify:{number}:waiting:1", f"notify:{number}:waiting:2"]

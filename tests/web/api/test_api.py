"""The JSON API: bearer tokens, the ticket representation, all-or-nothing updates, and its OpenAPI document."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
import yaml
from flask import Flask
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from schemathesis.checks import negative_data_rejection
from schemathesis.generation import GenerationMode
from sqlalchemy import select

from runtime import Runtime
from tests.web.conftest import due_times, ticket
from ticketing import accounts, lifecycle
from ticketing.db import transaction
from ticketing.models import ApiToken, Client
from ticketing.queue import QueuePosition
from ticketing.transcripts import READINGS
from transcription.engine import Segment, Transcript
from web.api import MAX_ID, OPENAPI_FILE, PRIORITIES, encode_cursor
from workers.jobs import NUMBER_PASS, TRANSLATION_PASS, _pass_record


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of a token."""
    return {"Authorization": f"Bearer {token}"}


def test_every_api_call_needs_a_token(app: Flask, open_ticket: Callable[..., int]) -> None:
    number = open_ticket()
    client = app.test_client()
    for method, path in (
        ("get", "/api/tickets"),
        ("get", f"/api/tickets/{number}"),
        ("post", "/api/tickets"),
        ("patch", f"/api/tickets/{number}"),
    ):
        response = getattr(client, method)(path, json={"summary": "x"})
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "API token" in response.get_json()["error"]


def test_a_wrong_or_revoked_token_is_refused(app: Flask, runtime: Runtime, api_token: str) -> None:
    client = app.test_client()
    assert client.get("/api/tickets", headers=bearer(api_token)).status_code == 200
    assert client.get("/api/tickets", headers=bearer(api_token[:-2] + "xx")).status_code == 401
    assert client.get("/api/tickets", headers=bearer("not-even-a-token")).status_code == 401
    assert client.get("/api/tickets", headers={"Authorization": f"Basic {api_token}"}).status_code == 401
    with transaction(runtime.sessions) as s:
        accounts.revoke_api_token(s, "psa", now=runtime.now())
    assert client.get("/api/tickets", headers=bearer(api_token)).status_code == 401


def test_tokens_are_stored_only_as_hashes(runtime: Runtime, api_token: str) -> None:
    with runtime.sessions() as s:
        row = s.scalars(select(ApiToken)).one()
    assert api_token not in (row.token_hash, row.prefix) and len(row.token_hash) == 64


def test_a_console_session_is_no_key_to_the_api(app: Flask, users: dict[str, str]) -> None:
    from tests.web.conftest import Console

    c = Console(app.test_client())
    c.login()
    assert c.get("/api/tickets").status_code == 401


def test_tickets_list_in_queue_order_with_filters(
    app: Flask, runtime: Runtime, api_token: str, open_ticket: Callable[..., int]
) -> None:
    p3 = open_ticket("2026-11-18 08:00", priority="P3")
    p1 = open_ticket("2026-11-18 09:59", priority="P1")
    client = app.test_client()
    body = client.get("/api/tickets", headers=bearer(api_token)).get_json()
    assert [t["number"] for t in body["tickets"]] == [p1, p3] and body["count"] == 2
    assert [
        t["number"] for t in client.get("/api/tickets?priority=P1", headers=bearer(api_token)).get_json()["tickets"]
    ] == [p1]
    breached = client.get("/api/tickets?breached=true", headers=bearer(api_token)).get_json()["tickets"]
    assert [t["number"] for t in breached] == [p3]
    bad = client.get("/api/tickets?priority=urgent", headers=bearer(api_token))
    assert bad.status_code == 400 and "priority must be one of" in bad.get_json()["error"]


def test_a_ticket_as_json(app: Flask, runtime: Runtime, api_token: str, open_ticket: Callable[..., int]) -> None:
    number = open_ticket("2026-11-18 09:00", priority="P3", caller_number="+18055550142", source="voicemail")
    body = app.test_client().get(f"/api/tickets/{number}", headers=bearer(api_token)).get_json()
    assert body["number"] == number and body["priority"] == "P3" and body["status"] == "new"
    assert body["source"] == "voicemail" and body["caller_number"] == "+18055550142"
    assert body["created_at"] == "2026-11-18T17:00:00+00:00"
    assert body["transcript"] == {
        "state": "none",
        "text": None,
        "confidence": None,
        "low_confidence": False,
        "language": None,
        "translation": None,
        "translation_state": None,
        "translation_error": None,
        "missing": [],
        "missing_note": None,
        "numbers_to_check": None,
        "pass": None,
        "passes": [],
    }
    assert body["language"] == "en"
    assert body["audio"] == {"available": False, "duration_seconds": None}
    first = body["sla"]["milestones"][0]
    assert first["name"] == "first_response" and first["due_at"] == "2026-11-18T17:12:00+00:00"
    assert first["breached"] is True and first["state"] == "breached" and first["met_at"] is None
    assert body["paging"]["state"] == "none"
    missing = app.test_client().get("/api/tickets/999999", headers=bearer(api_token))
    assert missing.status_code == 404 and missing.get_json() == {"error": "no ticket 999999"}


def test_a_ticket_is_opened_through_the_api(app: Flask, runtime: Runtime, api_token: str) -> None:
    with transaction(runtime.sessions) as s:
        s.add(Client(name="Acme Dental", main_number="+18055550100"))
    client = app.test_client()
    response = client.post(
        "/api/tickets",
        headers=bearer(api_token),
        json={"summary": "Printer offline", "priority": "P2", "caller_number": "805-555-0100", "source": "portal"},
    )
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == f"/api/tickets/{body['number']}"
    assert body["client"]["name"] == "Acme Dental" and body["caller_number"] == "+18055550100"
    assert ticket(runtime, body["number"]).audit[0].actor == "api:psa"
    for bad, message in (
        ({"priority": "P2"}, "summary is required"),
        ({"summary": "x", "priority": "urgent"}, "priority must be one of"),
        ({"summary": "x", "color": "red"}, "unknown field 'color'"),
        ({"summary": "x", "client_id": 999}, "no client 999"),
    ):
        refused = client.post("/api/tickets", headers=bearer(api_token), json=bad)
        assert refused.status_code in (400, 404) and message in refused.get_json()["error"]


def test_an_invalid_patch_is_refused_with_a_message_and_changes_nothing(
    app: Flask, runtime: Runtime, api_token: str, open_ticket: Callable[..., int]
) -> None:
    number = open_ticket("2026-11-18 09:00", priority="P3")
    before, audit_before = due_times(runtime, number), len(ticket(runtime, number).audit)
    client = app.test_client()
    for bad, message in (
        ({"priority": "P9", "reason": "x"}, "priority must be one of"),
        ({"priority": "P1"}, "a priority change needs a reason"),
        ({"assignee": 42}, "assignee must be a string"),
        ({"reason": "nothing else"}, "nothing to change"),
        ({"note": "   "}, "note must not be empty"),
        ({"status": "escalated"}, "status must be one of"),
    ):
        response = client.patch(f"/api/tickets/{number}", headers=bearer(api_token), json=bad)
        assert response.status_code == 400, bad
        assert message in response.get_json()["error"], bad
    not_json = client.patch(f"/api/tickets/{number}", headers=bearer(api_token), data="priority=P1")
    assert not_json.status_code == 400
    # A valid priority with an impossible status: all or nothing, so the priority stays too.
    conflict = client.patch(
        f"/api/tickets/{number}", headers=bearer(api_token), json={"priority": "P1", "reason": "down", "status": "new"}
    )
    assert conflict.status_code == 409 and "already new" in conflict.get_json()["error"]
    t = ticket(runtime, number)
    assert t.priority == "P3" and due_times(runtime, number) == before and len(t.audit) == audit_before


def test_a_patch_changes_priority_assignee_status_and_adds_a_note(
    app: Flask, runtime: Runtime, api_token: str, open_ticket: Callable[..., int]
) -> None:
    number = open_ticket("2026-11-18 09:00", priority="P3")
    response = app.test_client().patch(
        f"/api/tickets/{number}",
        headers=bearer(api_token),
        json={
            "priority": "P1",
            "reason": "synced from PSA",
            "assignee": "Blake Chen",
            "status": "in progress",
            "note": "Engineer on site",
        },
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["priority"], body["assignee"], body["status"]) == ("P1", "Blake Chen", "in progress")
    assert body["sla"]["milestones"][2]["due_at"] == "2026-11-18T21:00:00+00:00"
    actions = [(a.action, a.actor) for a in ticket(runtime, number).audit]
    assert ("priority changed", "api:psa") in actions and ("note", "api:psa") in actions


def test_the_openapi_document_is_served(app: Flask) -> None:
    response = app.test_client().get("/api/openapi.yaml")
    assert response.status_code == 200 and response.mimetype == "application/yaml"
    assert b"openapi: 3.0.3" in response.get_data()


def reading(text: str, *, language: str = "en", no_speech: bool = False) -> Transcript:
    """A transcript as an engine returns it: one segment, the number said in it."""
    segment = Segment(0.5, 8.0, text, avg_logprob=-0.3, no_speech_prob=0.01, compression_ratio=1.2)
    return Transcript(
        text=text,
        segments=() if no_speech else (segment,),
        language=language,
        audio_seconds=9.0,
        engine="faster-whisper",
        model="tiny.en",
        confidence=0.1 if no_speech else 0.82,
        no_speech=no_speech,
        low_confidence=no_speech,
        missing=((8.0, 9.0),) if no_speech else (),
    )


FIRST = "Hi this is Dana, the file server is down, call me back at 805 555 5018."
SECOND = "Hi this is Dana, the file server is down, call me back at 805 555 0188."


def transcribed(runtime: Runtime, number: int, state: str, **fields: Any) -> None:
    """Put a ticket's transcript in ``state`` as the transcription worker leaves it."""
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        t.recording_sid = f"RE{number:032x}"
        t.recording_url = f"https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/{t.recording_sid}"
        t.recording_duration = 9
        t.transcription_state = state
        t.transcription_requested_at = runtime.now()
        for key, value in fields.items():
            setattr(t, key, value)


@pytest.fixture
def transcript_states(runtime: Runtime, open_ticket: Callable[..., int]) -> dict[str, int]:
    """One open ticket in every transcript state the worker leaves, by name: the ticket numbers."""
    first, second = reading(FIRST), reading(SECOND)
    spanish = reading("Hola, el servidor no funciona, llámenme al 805 555 0142.", language="es")
    translation = reading("Hello, the server is not working, call me at 805 555 0142.")
    silent = reading("", no_speech=True)
    numbers: dict[str, int] = {"none": open_ticket(priority="P2")}
    numbers["pending"] = open_ticket(priority="P3", source="voicemail")
    transcribed(runtime, numbers["pending"], "pending")
    numbers["first"] = open_ticket(priority="P3", source="voicemail")
    transcribed(
        runtime, numbers["first"], "done", transcript=FIRST, transcript_confidence=0.82, transcript_language="en",
        transcript_pass="first", transcript_passes=[_pass_record("first", first, language="en")],
    )  # fmt: skip
    numbers["numbers"] = open_ticket(priority="P1", source="voicemail")
    transcribed(
        runtime, numbers["numbers"], "done", transcript=SECOND, transcript_confidence=0.9, transcript_language="en",
        transcript_pass=NUMBER_PASS, hints={"callback_number": "+18055550188"},
        transcript_passes=[_pass_record("first", first, language="en"), _pass_record(NUMBER_PASS, second)],
    )  # fmt: skip
    numbers["translated"] = open_ticket(priority="P3", source="voicemail")
    transcribed(
        runtime, numbers["translated"], "done", language="es", transcript=spanish.text, transcript_language="es",
        transcript_translation=translation.text, transcript_pass="first",
        transcript_passes=[
            _pass_record("first", spanish, language="es"),
            _pass_record(TRANSLATION_PASS, translation, language="en", source="es"),
        ],
    )  # fmt: skip
    numbers["no speech"] = open_ticket(priority="P4", source="voicemail")
    transcribed(
        runtime, numbers["no speech"], "no speech", transcript="", transcript_low_confidence=True,
        transcript_missing=[[8.0, 9.0]], transcript_pass="first",
        transcript_passes=[_pass_record("first", silent, language="en")],
    )  # fmt: skip
    numbers["failed"] = open_ticket(priority="P5", source="voicemail")
    transcribed(runtime, numbers["failed"], "failed", transcription_error="DownloadError: gone")
    return numbers


def test_tickets_in_every_transcript_state_conform_to_the_openapi_document(
    app: Flask, api_token: str, transcript_states: dict[str, int]
) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/openapi.yaml", app)
    one = schema["/api/tickets/{number}"]["GET"]
    for state, number in transcript_states.items():
        case = one.Case(path_parameters={"number": number})
        response = case.call_and_validate(headers=bearer(api_token))
        assert response.status_code == 200, state
    body = app.test_client().get(f"/api/tickets/{transcript_states['numbers']}", headers=bearer(api_token)).get_json()
    assert body["transcript"]["pass"] == "numbers" and body["transcript"]["text"] == SECOND
    assert [p["pass"] for p in body["transcript"]["passes"]] == ["first", "numbers"]
    assert body["transcript"]["numbers_to_check"]["heard_by_other_reading"] == ["805 555 5018"]
    every = schema["/api/tickets"]["GET"].Case()
    listed = every.call_and_validate(headers=bearer(api_token)).json()["tickets"]
    assert sorted(t["number"] for t in listed) == sorted(transcript_states.values())


def test_the_openapi_document_names_every_transcript_pass_the_worker_writes() -> None:
    document = yaml.safe_load(OPENAPI_FILE.read_text())
    transcript = document["components"]["schemas"]["Ticket"]["properties"]["transcript"]["properties"]
    assert set(transcript["pass"]["enum"]) == {*READINGS, None} == {"first", NUMBER_PASS, None}
    assert set(transcript["passes"]["items"]["properties"]["pass"]["enum"]) == {*READINGS, TRANSLATION_PASS}


@pytest.fixture
def api_schema(
    app: Flask, runtime: Runtime, api_token: str, open_ticket: Callable[..., int], transcript_states: dict[str, int]
) -> Any:
    """The API's own OpenAPI document, loaded in-process from the WSGI app, with tickets in every transcript
    state to find (the list's answers are validated against the document, so each state's shape is checked)."""
    for priority in ("P1", "P3"):
        open_ticket(priority=priority)
    # The generated requests are many more than a token may make, or an address may fail, in a minute.
    runtime.settings = runtime.settings.with_overrides(
        api_rate_limit="100000/minute", api_auth_failure_limit="100000/minute"
    )
    schema = schemathesis.openapi.from_wsgi("/api/openapi.yaml", app)
    return schema


# A cursor is opaque: only those the API gave are valid, so the generated ones are cursors of real places in
# the queue's order (any priority, time and id, whether a ticket is there or not).
schemathesis.openapi.format(
    "cursor",
    st.builds(
        encode_cursor,
        st.builds(
            QueuePosition,
            st.sampled_from(PRIORITIES),
            st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)),
            st.integers(1, MAX_ID),
        ),
    ),
)
schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_the_api_conforms_to_its_openapi_document(case: Any, api_token: str) -> None:
    headers: dict[str, str] | None = bearer(api_token)
    negative = case.meta is not None and case.meta.generation.mode == GenerationMode.NEGATIVE
    if negative and "Authorization" not in (case.headers or {}):
        # The invalid case left the required token out: adding ours back would make it valid (a 200 the
        # negative check then counts as bad data accepted). Sent without it, the answer must be a 401.
        headers = None
    response = case.call(headers=headers)
    # A body over MAX_REQUEST_BYTES is refused with 413 before it is read (documented): a rejection of bad
    # data, though not one of the statuses the negative-data check knows. Every other check still runs.
    excluded = [negative_data_rejection] if negative and response.status_code == 413 else []
    case.validate_response(response, headers=headers, excluded_checks=excluded)

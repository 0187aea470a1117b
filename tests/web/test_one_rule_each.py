"""One rule each: the console, the API, /metrics and the CLI agree on what is breached and what may be retried."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from flask import Flask

from runtime import Runtime
from tests.conftest import pacific
from tests.web.conftest import Console, ticket
from ticketing import lifecycle
from ticketing.db import transaction
from ticketing.models import OutboxMessage, TranscriptionState

# --- breached ----------------------------------------------------------------------------------------------


def _breach_cases(runtime: Runtime, open_ticket: Callable[..., int]) -> dict[str, int]:
    """P3 tickets seen at 10:00 on Wednesday 2026-11-18 (first response due 12 business minutes after opening)."""
    numbers = {
        "met late": open_ticket("2026-11-18 08:00"),
        "unmet and overdue": open_ticket("2026-11-18 09:00"),
        "paused after it fell due": open_ticket("2026-11-18 08:30"),
        "paused before it fell due": open_ticket("2026-11-18 09:30"),
        "met in time": open_ticket("2026-11-18 09:40"),
    }
    steps = [
        ("met late", "2026-11-18 09:00", "meet"),
        ("paused after it fell due", "2026-11-18 09:00", "pause"),
        ("paused before it fell due", "2026-11-18 09:35", "pause"),
        ("met in time", "2026-11-18 09:45", "meet"),
    ]
    for case, at, step in steps:
        with transaction(runtime.sessions) as s:
            t = lifecycle.get_ticket(s, numbers[case])
            if step == "meet":
                lifecycle.meet_milestone(s, t, "first_response", actor="eli", now=pacific(at))
            else:
                lifecycle.pause_sla(s, t, actor="eli", now=pacific(at), reason="asked for the error message")
    return numbers


def test_the_console_the_api_metrics_and_the_cli_name_the_same_breached_tickets(
    app: Flask, runtime: Runtime, console: Console, api_token: str, open_ticket: Callable[..., int]
) -> None:
    numbers = _breach_cases(runtime, open_ticket)
    # Met late, or overdue while the clock ran; waiting on the client after a breach does not undo it,
    # and a clock paused before its due time is not breached by the wait.
    expected = {numbers[c] for c in ("met late", "unmet and overdue", "paused after it fell due")}

    html = console.get("/queue?breached=1").get_data(as_text=True)
    in_console = {int(n) for n in re.findall(r'data-number="(\d+)"', html)}
    whole_queue = console.get("/queue").get_data(as_text=True)
    banner = re.search(r"<b>(\d+)</b> breached", whole_queue)
    api = (
        app.test_client().get("/api/tickets?breached=true", headers={"Authorization": f"Bearer {api_token}"}).get_json()
    )
    in_api = {t["number"] for t in api["tickets"]}
    metrics = app.test_client().get("/metrics").get_data(as_text=True)
    counted = re.search(r"^supportline_breached_tickets (\S+)$", metrics, re.M)
    cli = app.test_cli_runner().invoke(args=["sla", "breaching", "--within", "0"])
    assert cli.exit_code == 0, cli.output
    in_cli = {int(line.split()[0]) for line in cli.output.splitlines() if line.strip()}

    assert in_console == expected
    assert banner is not None and int(banner.group(1)) == len(expected)
    assert in_api == expected
    assert in_cli == expected
    assert counted is not None and float(counted.group(1)) == len(expected)


# --- retrying a transcription -------------------------------------------------------------------------------


def _voicemail(
    runtime: Runtime, open_ticket: Callable[..., int], state: str, requested_ago: timedelta, *, job_gone: bool = False
) -> int:
    """A voicemail ticket whose transcription is in ``state``, requested ``requested_ago``, with its outbox job."""
    number = open_ticket(source="voicemail")
    sid = f"RE{number:032x}"
    now = runtime.now()
    failed = state == TranscriptionState.FAILED.value
    ended = failed or job_gone
    with transaction(runtime.sessions) as s:
        t = lifecycle.get_ticket(s, number)
        t.recording_sid = sid
        t.recording_url = f"https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/{sid}"
        t.transcription_state = state
        t.transcription_requested_at = now - requested_ago
        t.transcription_error = "ModelError: out of memory" if failed else None
        s.add(
            OutboxMessage(
                kind="transcribe",
                key=f"transcribe:{sid}",
                payload={"recording_sid": sid},
                created_at=now - requested_ago,
                dispatched_at=now - requested_ago,
                completed_at=now if ended else None,  # a pending transcription's job is still in the queue
                failed_at=now if ended else None,
                attempts=1,
            )
        )
    return number


def _retry_cases(runtime: Runtime, open_ticket: Callable[..., int]) -> dict[str, int]:
    stale = timedelta(minutes=runtime.settings.transcription_pending_minutes + 1)
    return {
        "pending and fresh": _voicemail(runtime, open_ticket, TranscriptionState.PENDING.value, timedelta(seconds=30)),
        "pending and stale": _voicemail(runtime, open_ticket, TranscriptionState.PENDING.value, stale),
        "failed": _voicemail(runtime, open_ticket, TranscriptionState.FAILED.value, stale),
        "pending and its job gone": _voicemail(
            runtime, open_ticket, TranscriptionState.PENDING.value, timedelta(seconds=30), job_gone=True
        ),
    }


def test_the_console_and_the_cli_retry_the_same_transcriptions(
    app: Flask, runtime: Runtime, console: Console, open_ticket: Callable[..., int]
) -> None:
    # No pending transcription is queued twice while it may still be running; a stuck or failed one is.
    expected = {"pending and fresh": False, "pending and stale": True, "failed": True, "pending and its job gone": True}

    offered: dict[str, bool] = {}
    by_console: dict[str, bool] = {}
    for case, number in _retry_cases(runtime, open_ticket).items():
        offered[case] = "Retry transcription" in console.get(f"/tickets/{number}").get_data(as_text=True)
        response = console.post(f"/tickets/{number}/retry-transcription")
        assert response.status_code in (303, 400), response.status_code
        by_console[case] = response.status_code == 303
        retried = ticket(runtime, number).audit[-1].action == "transcription retried"
        assert retried == by_console[case]

    by_cli: dict[str, bool] = {}
    cli = app.test_cli_runner()
    for case, number in _retry_cases(runtime, open_ticket).items():
        result = cli.invoke(args=["ticket", "retry-transcription", str(number)])
        by_cli[case] = result.exit_code == 0
        assert (ticket(runtime, number).audit[-1].action == "transcription retried") == by_cli[case], result.output

    assert offered == expected
    assert by_console == expected
    assert by_cli == expected

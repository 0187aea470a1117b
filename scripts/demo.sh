#!/usr/bin/env bash
# make demo: two simulated calls through supportline, then the tickets and the pages they caused.
#
#   make demo                      # starts `make run` in the background when nothing answers on PORT
#
# To watch the service's own output, start it yourself first, with the settings the demo
# signs with and the local Twilio test server it points the service at:
#
#   TWILIO_ACCOUNT_SID=AC00000000000000000000000000000000 TWILIO_AUTH_TOKEN=devtoken \
#   TWILIO_API_BASE_URL=http://127.0.0.1:8011 ALLOW_SIMULATED_TIME=true make run     # terminal 1
#   make demo                                                                        # terminal 2
#
# Call 1: a caller in business hours, the coordinator busy, leaves a voicemail (P3).
# Call 2: a caller after hours presses 2 and leaves a message: a P1, the on-call engineer is paged.
# Nothing leaves this machine: Twilio's REST API is `python -m tests.twilio_server`'s stand-in
# (validated by Prism when tools/prism is installed), which shows every SMS and call requested.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in espeak-ng sox; do
  command -v "$tool" >/dev/null || { echo "demo: $tool is missing (make test installs it; or apt-get install $tool)" >&2; exit 1; }
done

export PORT="${PORT:-8000}"
export DEMO_TWILIO_PORT="${DEMO_TWILIO_PORT:-8011}"
export TWILIO_ACCOUNT_SID="${TWILIO_ACCOUNT_SID:-AC00000000000000000000000000000000}"
export TWILIO_AUTH_TOKEN="${TWILIO_AUTH_TOKEN:-devtoken}"
export TWILIO_API_BASE_URL="${TWILIO_API_BASE_URL:-http://127.0.0.1:$DEMO_TWILIO_PORT}"
export ALLOW_SIMULATED_TIME=true
export PUBLIC_BASE_URL="${PUBLIC_BASE_URL:-http://127.0.0.1:$PORT}"
mkdir -p var/demo

exec .venv/bin/python - <<'PY'
"""The demo driver (see scripts/demo.sh)."""

import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from sqlalchemy import select

from ivr.simulate import CallPlan, MediaServer, TwilioSimulator
from settings import load_settings
from tests.faults.stack import make_voicemail
from tests.twilio_server import PrismMock, PrismUnavailable, TwilioTestServer
from ticketing.models import Client, Ticket
from ticketing.sla import calendar_for
from workers.runtime import build_runtime

PORT = int(os.environ["PORT"])
BASE = f"http://127.0.0.1:{PORT}"
DEMO = Path("var/demo")


def up() -> bool:
    try:
        return requests.get(BASE + "/healthz", timeout=1).ok
    except requests.RequestException:
        return False


start_service = not up()
if start_service and not os.environ.get("DATABASE_URL"):
    # A service of our own gets a fresh database of its own, so the demo shows only its own tickets.
    (DEMO / "supportline.db").unlink(missing_ok=True)
    os.environ["DATABASE_URL"] = f"sqlite:///{(DEMO / 'supportline.db').resolve()}"
settings = load_settings()
runtime = build_runtime(settings)
cal = calendar_for(runtime.policy)


def business_time(now: datetime) -> datetime:
    """Now when the office is open, else two hours after the next opening."""
    return now if cal.is_business_hours(now) else cal.next_opening(now) + timedelta(hours=2)


def after_hours_time(now: datetime) -> datetime:
    """Now when the office is closed, else two hours after today's closing."""
    if not cal.is_business_hours(now):
        return now
    window = cal.window(cal.local(now).date())
    assert window is not None
    return window[1] + timedelta(hours=2)


# Twilio's REST API, locally: every SMS and call the service requests lands here.
prism = None
try:
    prism = PrismMock().start()
except PrismUnavailable as error:
    print(f"(Prism unavailable, Twilio requests are not validated against Twilio's spec: {error})")
twilio = TwilioTestServer(
    prism_url=prism.url if prism else None,
    account_sid=settings.twilio_account_sid,
    auth_token=settings.twilio_auth_token,
    port=int(os.environ["DEMO_TWILIO_PORT"]),
).start()
media = MediaServer(settings.twilio_account_sid, settings.twilio_auth_token)
service = None
try:
    if not start_service:
        print(f"Using the supportline already answering on {BASE} (database: {settings.database_url}).")
    else:
        print(f"Nothing answers on {BASE}: starting `make run` in the background (log: {DEMO}/run.log) ...")
        log = (DEMO / "run.log").open("wb")
        service = subprocess.Popen(["make", "run"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 180
        while not up():
            if service.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"`make run` did not come up; see {DEMO}/run.log")
            time.sleep(0.5)
        time.sleep(3)  # the worker loads the Whisper model once at start-up

    with runtime.sessions() as s:
        known = s.scalars(select(Client).where(Client.name == "Acme Dental")).first() is not None
    if not known:
        print("Importing the example client directory (flask --app wsgi directory import config/directory.example.toml)")
        subprocess.run([".venv/bin/flask", "--app", "wsgi", "directory", "import", "config/directory.example.toml"],
                       check=True)
    print("Recording two voicemails with espeak-ng ...")
    printer = make_voicemail(
        "Hi, this is Priya Raman at Pismo Title Company. The printer in the back office says offline and we need to print "
        "closing documents this afternoon. Please call me at 805 555 0188. Thanks.",
        DEMO / "business-hours.wav",
    )
    outage = make_voicemail(
        "This is Dana Whitfield from Acme Dental. Our file server is down and nobody in the office can open patient "
        "charts. We open at seven tomorrow. Please call me back at 805 555 0142.",
        DEMO / "after-hours.wav",
    )
    sim = TwilioSimulator(
        settings.public_base_url,
        server_base_url=BASE,
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token,
        media=media,
        to=settings.support_number,
    )
    now = datetime.now(UTC)
    calls = [
        ("Call 1: business hours, coordinator busy, voicemail", "+18055550211",
         CallPlan(keys=[""], coordinator="busy", audio=printer, at=business_time(now))),
        ("Call 2: after hours, presses 2 (critical), voicemail", "+18055550142",
         CallPlan(keys=["2"], audio=outage, at=after_hours_time(now))),
    ]
    results = []
    for title, caller, plan in calls:
        local = cal.local(plan.at)
        print(f"\n=== {title} ({local:%a %b %-d %-I:%M %p %Z}) from {caller}")
        try:
            result = sim.call(caller, plan)
        except RuntimeError as error:
            if " 403" in str(error):
                sys.exit(
                    "The service refused the signature: start it with TWILIO_AUTH_TOKEN="
                    f"{settings.twilio_auth_token} (see scripts/demo.sh), or stop it and let the demo start one."
                )
            raise
        for line in result.lines:
            print("  " + line)
        results.append(result)

    print("\nWaiting for the transcripts and the page (the worker transcribes each voicemail) ...")
    sids = [r.call_sid for r in results]
    deadline = time.monotonic() + 90
    while True:
        with runtime.sessions() as s:
            tickets = s.scalars(select(Ticket).where(Ticket.call_sid.in_(sids)).order_by(Ticket.id)).all()
        done = len(tickets) == 2 and all(t.transcription_state in ("done", "no_speech", "failed") for t in tickets)
        bodies = [m.param("Body") or "" for m in twilio.messages() if m.status in (200, 201)]
        p1 = [f"#{t.number}" for t in tickets if t.priority == "P1"]
        paged = any("P1 CRITICAL" in b and any(n in b for n in p1) for b in bodies)
        # The transcript reaches the engineer in the page itself or in a follow-up SMS right after it.
        told = any(any(n in b for n in p1) and ("Message:" in b or " transcript" in b) for b in bodies)
        if (done and paged and told) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    time.sleep(1)

    print("\n=== The tickets (flask --app wsgi ticket list)")
    subprocess.run([".venv/bin/flask", "--app", "wsgi", "ticket", "list"], check=False)
    for t in tickets:
        print(f"\n  #{t.number} {t.priority} from {t.caller_number}, transcription {t.transcription_state}")
        print(f"  transcript: {t.transcript or '-'}")
    print("\n=== What the service asked Twilio to send (the local Twilio test server's log)")
    for r in twilio.requests:
        if r.method != "POST":
            continue
        kind = "SMS " if r.path.endswith("/Messages.json") else "CALL" if r.path.endswith("/Calls.json") else r.path
        what = r.param("Body") if kind == "SMS " else f"voice page, TwiML from {r.param('Url')}"
        print(f"  {kind} to {r.param('To')} -> HTTP {r.status}: {what}")
    print("  (+1805555016x are the on-call engineers of config/oncall.toml; the others are the callers)")

    # The "new ticket created" emails of the demo's calls (callers whose contact has an email address).
    import mailbox
    from email.parser import BytesParser
    from email.policy import default as email_policy

    where = settings.smtp_url.split("@")[-1] if settings.smtp_url else f"the development mailbox {settings.dev_mailbox_dir}"
    print(f"\n=== Confirmation emails ({where})")
    tags = {f"[{settings.mail_tag_prefix}{t.number}]" for t in tickets}
    if not settings.smtp_url:
        box = mailbox.Maildir(settings.dev_mailbox_dir, create=True)
        for key in sorted(box.keys()):
            mail = BytesParser(policy=email_policy).parsebytes(box.get_bytes(key))
            if any(tag in str(mail["Subject"]) for tag in tags):
                print(f"  to {mail['To']}: {mail['Subject']}  ({settings.dev_mailbox_dir}/new/{key})")

    page = next((m for m in twilio.messages() if p1 and "P1 CRITICAL" in (m.param("Body") or "")
                 and p1[0] in (m.param("Body") or "")), None)
    if page is not None:
        engineer = page.param("To") or ""
        reply = sim.post(
            "/twilio/sms",
            {"MessageSid": "SM" + "0" * 31 + "1", "AccountSid": settings.twilio_account_sid, "From": engineer,
             "To": settings.support_number, "Body": "1"},
        )
        answer = ET.fromstring(reply).findtext("Message") or reply
        print(f"\n=== The on-call engineer ({engineer}) replies 1 to the page; supportline answers:\n  {answer}")
    else:
        print("\n(no P1 page arrived within 90 s: is the worker running? see the service's log)")
finally:
    if service is not None:
        print(f"\nStopping the `make run` the demo started. Its tickets stay in {settings.database_url}:")
        print(f"  DATABASE_URL={settings.database_url} .venv/bin/flask --app wsgi ticket list")
        try:
            os.killpg(service.pid, signal.SIGTERM)
            service.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(service.pid, signal.SIGKILL)
    media.close()
    twilio.stop()
    if prism is not None:
        prism.stop()
    runtime.close()
PY

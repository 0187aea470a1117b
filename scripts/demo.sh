#!/usr/bin/env bash
# make demo: three simulated calls through supportline, then the tickets and the pages they caused.
#
#   make run     # terminal 1: the service (development mode when no Twilio credentials are set)
#   make demo    # terminal 2: the calls; then look at the tickets in the console make run printed
#
# When nothing answers on PORT, the demo starts `make run` itself in the background (log: var/demo/run.log)
# and stops it at the end. Either way it drives a service in development mode: its SMS and calls go to the
# local Twilio stand-in, never to Twilio. A service started with real Twilio credentials is refused before
# anything is written.
#
# Call 1: a caller in business hours, the coordinator busy, presses 1 to keep a place in line for a call back and
#         leaves a short message (P3, in the console's Callbacks list).
# Call 2: a caller after hours presses 2 and leaves a message: a P1, the after-hours engineer is paged.
# Then the coordinator declares a known incident for one client ("the Pismo Title office's internet is down"):
# Call 3: a caller of that client hears it after the greeting and presses 1: a short message, a ticket joined to
#         the incident's parent ticket (the console's Exceptional events page counts the callers; /status shows it).
# Call 4: a caller after hours presses 9 (Spanish), leaves a message in Spanish and keys another number to be
#         called back on: the "new ticket created" SMS in Spanish comes first, then the Spanish transcript, then
#         its English translation; the ticket keeps the keyed callback number. It is the last call, so the times
#         the demo prints after its hang-up are on one clock (each simulated call moves the service's clock).
set -euo pipefail
cd "$(dirname "$0")/.."
export PORT="${PORT:-8000}"
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

from ivr.simulate import CallPlan, MediaServer, TwilioSimulator, dev_environment
from settings import ROOT, load_settings
from ticketing import outages
from ticketing.db import transaction
from ticketing.models import AuditEntry, Client, Ticket
from ticketing.phone import callback_of
from ticketing.sla import calendar_for
from runtime import build_runtime

PORT = int(os.environ["PORT"])
BASE = f"http://127.0.0.1:{PORT}"
DEMO = ROOT / "var" / "demo"
SAMPLES = ROOT / "samples"
CALLBACK_KEYED = "8055550188#"  # the number the Spanish caller (call 4) keys after the message
OUTAGE = "the Pismo Title office's internet connection is down"  # the known incident the demo declares


# The steps of a voicemail after the hang-up, as the ticket's history records them.
WATCHED = ("recording attached", "confirmation sent", "confirmation failed", "transcribed", "transcript translated",
           "translation failed", "callback number")


def up() -> bool:
    try:
        return requests.get(BASE + "/healthz", timeout=1).ok
    except requests.RequestException:
        return False


def standin_info(env: dict[str, str]) -> dict | None:
    port = env.get("DEV_TWILIO_PORT")
    if not port:
        return None
    try:
        return requests.get(f"http://127.0.0.1:{port}/dev/info", timeout=1).json()
    except (requests.RequestException, ValueError):
        return None


service = None
if up():
    env = dev_environment()
    if env.get("PORT") != str(PORT) or standin_info(env) is None:
        sys.exit(
            f"demo: the supportline on {BASE} is not in development mode (started with Twilio credentials, or not by "
            "`make run`). The demo sends SMS and page calls, so it only drives `make run`'s development mode: stop that "
            "service, then `make run` without TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN (or just `make demo`). Nothing was changed."
        )
    print(f"Using the supportline already answering on {BASE} (development mode).")
else:
    print(f"Nothing answers on {BASE}: starting `make run` in the background (log: {DEMO / 'run.log'}) ...")
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")}  # always development mode
    log = (DEMO / "run.log").open("wb")
    service = subprocess.Popen(["make", "run"], stdout=log, stderr=subprocess.STDOUT, env=child_env,
                               start_new_session=True)
    deadline = time.monotonic() + 240
    env = {}
    while not (up() and (env := dev_environment()) and standin_info(env) is not None):
        if service.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"`make run` did not come up; see {DEMO / 'run.log'}")
        time.sleep(0.5)

# The demo works on the service's own database, Redis and development account.
for key, value in env.items():
    if value and key not in ("PORT",):
        os.environ[key] = value
settings = load_settings()
runtime = build_runtime(settings)
cal = calendar_for(runtime.policy)
standin = f"http://127.0.0.1:{env['DEV_TWILIO_PORT']}"


def sent() -> list[dict]:
    """What the service asked the local Twilio stand-in to send."""
    try:
        return requests.get(standin + "/dev/requests.json", timeout=2).json()
    except (requests.RequestException, ValueError):
        return []


def demo_times(now: datetime) -> tuple[datetime, datetime]:
    """A business-hours time and a later after-hours time, the later one as close to now as it can be.

    The business-hours call comes in five minutes before closing, so its 12-minute first response is due at the
    next opening: the after-hours call moves every process's clock to its time, and the P3 must not show as
    breached in the console seconds after it was opened.
    """
    if cal.is_business_hours(now):
        window = cal.window(cal.local(now).date())
        assert window is not None
        return max(now, window[1] - timedelta(minutes=5)), window[1] + timedelta(hours=2)
    # After hours now: the business-hours call five minutes before the last closing before now.
    day = cal.local(now).date()
    while True:
        window = cal.window(day)
        if window is not None and window[1] - timedelta(minutes=5) < now:
            return window[1] - timedelta(minutes=5), now
        day -= timedelta(days=1)


media = MediaServer(settings.twilio_account_sid, settings.twilio_auth_token)
numbers = "-"
try:
    before = len(sent())
    with runtime.sessions() as s:
        known = s.scalars(select(Client).where(Client.name == "Acme Dental")).first() is not None
    if not known:
        print("Importing the example client directory (bin/supportline directory import config/directory.example.toml)")
        subprocess.run(["bin/supportline", "directory", "import", "config/directory.example.toml"],
                       check=True)
    sim = TwilioSimulator(
        settings.public_base_url,
        server_base_url=BASE,
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token,
        media=media,
        to=settings.support_number,
    )
    business, after_hours = demo_times(datetime.now(UTC))
    calls = [
        # No key at the menu: the coordinator is rung and is busy; 1 at the offer keeps a place in line.
        ("Call 1: business hours, coordinator busy, keeps a place in line (1) and leaves a message", "+18055550211",
         CallPlan(keys=["", "1"], coordinator="busy", audio=(SAMPLES / "printer.wav").read_bytes(), at=business)),
        ("Call 2: after hours, presses 2 (critical), voicemail", "+18055550142",
         CallPlan(keys=["2"], audio=(SAMPLES / "voicemail.wav").read_bytes(), at=after_hours)),
    ]
    results = []

    def place(title: str, caller: str, plan: CallPlan) -> None:
        local = cal.local(plan.at)
        print(f"\n=== {title} ({local:%a %b %-d %-I:%M %p %Z}) from {caller}")
        result = sim.call(caller, plan)
        for line in result.lines:
            print("  " + line)
        results.append(result)

    for title, caller, plan in calls:
        place(title, caller, plan)

    # The coordinator declares a known incident for Pismo Title (as on the console's Exceptional events page);
    # a second `make demo` finds it still in force and keeps it.
    with transaction(runtime.sessions) as s:
        pismo = s.scalars(select(Client).where(Client.name == "Pismo Title Company")).one()
        incident = next((i for i in outages.active_known_incidents(s, runtime.now()) if i.message == OUTAGE), None)
        if incident is None:
            incident = outages.declare_known_incident(
                s, message=OUTAGE, actor="demo coordinator", now=runtime.now(), policy=runtime.policy,
                client_ids=[pismo.id],
            )
        incident_id, parent_number = incident.id, incident.parent.number
    print(f"\n=== The coordinator declares a known incident for Pismo Title Company: \"{OUTAGE}\" "
          f"(parent ticket #{parent_number})")
    place("Call 3: after hours, a Pismo Title caller hears the known incident and presses 1", "+18055550211",
          CallPlan(keys=["1"], audio=(SAMPLES / "voicemail.wav").read_bytes(), at=after_hours + timedelta(minutes=2)))
    for title, caller, plan in [
        # 9: Spanish; no key at the Spanish menu or during the voicemail prompt; after the message, another
        # number to call back (python -m ivr.simulate --press '9,,,8055550188#' does the same).
        ("Call 4: after hours, presses 9 (Spanish), voicemail, keys another callback number", "+18055550177",
         CallPlan(keys=["9", "", "", CALLBACK_KEYED], audio=(SAMPLES / "punto-de-venta.wav").read_bytes(),
                  at=after_hours + timedelta(minutes=4))),
    ]:
        place(title, caller, plan)

    print("\nWaiting for the transcripts, the translation and the page (the worker transcribes each voicemail) ...")
    sids = [r.call_sid for r in results]
    deadline = time.monotonic() + 240
    while True:
        with runtime.sessions() as s:
            tickets = s.scalars(select(Ticket).where(Ticket.call_sid.in_(sids)).order_by(Ticket.id)).all()
        done = len(tickets) == len(sids) and all(
            t.transcription_state in ("done", "no speech", "failed")
            and (t.transcript_language in (None, "en") or t.transcript_translation or t.transcription_state != "done")
            for t in tickets
        )
        bodies = [e.get("body") or "" for e in sent()[before:] if e.get("kind") == "sms"]
        p1 = [f"#{t.number}" for t in tickets if t.priority == "P1"]
        paged = any("P1 CRITICAL" in b and any(n in b for n in p1) for b in bodies)
        # The transcript reaches the engineer in the page itself or in a follow-up SMS right after it.
        told = any(any(n in b for n in p1) and ("Message:" in b or " transcript" in b) for b in bodies)
        if (done and paged and told) or time.monotonic() > deadline:
            break
        time.sleep(0.5)

    print("\n=== The tickets (bin/supportline ticket list)")
    subprocess.run(["bin/supportline", "ticket", "list"], check=False)
    for t in tickets:
        print(f"\n  #{t.number} {t.priority} from {t.caller_number}, transcription {t.transcription_state}")
        number, origin = callback_of(t.callback_number, t.callback_origin, t.caller_number,
                                     (t.hints or {}).get("callback_number"))
        print(f"  callback number: {number or '-'} ({origin or 'none'})")
        print(f"  transcript: {t.transcript or '-'}")
        if t.transcript_translation:
            print(f"  English translation: {t.transcript_translation}")
    spanish = next((t for t in tickets if t.call_sid == results[3].call_sid), None)
    if spanish is not None:
        with runtime.sessions() as s:
            order = s.scalars(select(AuditEntry).where(AuditEntry.ticket_id == spanish.id,
                                                       AuditEntry.action.in_(WATCHED)).order_by(AuditEntry.id)).all()
        hung_up = next((a.at for a in order if a.action == "recording attached"), None)
        print(f"\n=== Call 4, the Spanish caller: what happened after the hang-up, in order (ticket #{spanish.number})")
        for a in order:
            after = f"+{(a.at - hung_up).total_seconds():.1f} s" if hung_up is not None else ""
            print(f"  {after:>9}  {a.action}")
        keyed = CALLBACK_KEYED.rstrip("#")
        print(f"  callback number {spanish.callback_number} ({spanish.callback_origin}): keyed {keyed} "
              f"after the message, caller ID {spanish.caller_number}")
    with runtime.sessions() as s:
        joined = outages.callers(s, incident_id)
        line = s.scalars(select(Ticket).where(Ticket.call_sid == results[0].call_sid)).first()
    print(f"\n=== The known incident (parent #{parent_number}): {joined} caller(s) joined; "
          f"{settings.public_base_url}/status shows it, the console's Exceptional events page ends it")
    if line is not None:
        print(f"=== Call 1 is in the console's Callbacks list (ticket #{line.number}): Call back now rings the coordinator")
    print("\n=== What the service asked Twilio to send (the local Twilio stand-in's log)")
    ours = sent()[before:]
    for e in ours:
        what = e.get("body") if e["kind"] == "sms" else f"voice page, TwiML from {e.get('url')}"
        print(f"  {e['kind'].upper():4} to {e.get('to')}: {what}")
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

    page = next((e for e in ours if e["kind"] == "sms" and p1 and "P1 CRITICAL" in (e.get("body") or "")
                 and p1[0] in (e.get("body") or "")), None)
    if page is not None:
        engineer = page.get("to") or ""
        reply = sim.post(
            "/twilio/sms",
            {"MessageSid": "SM" + os.urandom(16).hex(), "AccountSid": settings.twilio_account_sid, "From": engineer,
             "To": settings.support_number, "Body": f"ACK {p1[0].lstrip('#')}"},
        )
        answer = ET.fromstring(reply).findtext("Message") or reply
        print(f"\n=== The on-call engineer ({engineer}) replies 'ACK {p1[0].lstrip('#')}' to the page; supportline answers:\n  {answer}")
    else:
        print("\n(no P1 page arrived within 120 s: is the worker running? see the service's log)")
    numbers = ", ".join(f"#{t.number}" for t in tickets)
    if service is None:
        print(f"\nThe tickets ({numbers}) are in the console: {settings.public_base_url}/queue "
              f"(sign in with the login `make run` printed; SMS and calls sent: {settings.public_base_url}/dev/outbox)")
finally:
    if service is not None:
        login = settings.dev_state_dir / "console-login"
        who = " (development admin: " + " / ".join(login.read_text().split()) + ")" if login.exists() else ""
        print(f"\nStopping the `make run` the demo started. Its tickets ({numbers}) stay in its database: "
              f"`make run` again and open {settings.public_base_url}/queue{who}.")
        try:
            os.killpg(service.pid, signal.SIGTERM)
            service.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(service.pid, signal.SIGKILL)
    media.close()
    runtime.close()
PY

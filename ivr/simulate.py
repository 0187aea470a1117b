"""Call simulator: plays Twilio's part against a running supportline.

It places a call, follows the TwiML (Say, Play, Pause, Gather, Dial, Record,
Redirect, Hangup) by posting requests signed exactly as Twilio signs them,
presses the keys it is told, answers or ignores the coordinator's leg, serves a
WAV file as the recording (over HTTP with Basic auth, like Twilio's media URLs)
and prints what the caller heard::

    python -m ivr.simulate --from +18055550142 --press 2 --audio message.wav

The end-to-end tests drive the same ``TwilioSimulator`` class.
"""

from __future__ import annotations

import argparse
import base64
import io
import re
import secrets
import sys
import threading
import wave
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, urlsplit

import requests
from twilio.request_validator import RequestValidator

SIMULATED_TIME_HEADER = "X-Supportline-Simulated-Time"
COORDINATOR_CHOICES = ("accept", "voicemail", "busy", "no-answer", "failed")


def new_sid(prefix: str) -> str:
    """A Twilio-shaped SID: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


class MediaHost(Protocol):
    """Somewhere recordings can be fetched from, as from Twilio's media URLs."""

    def add_recording(self, recording_sid: str, wav_bytes: bytes) -> None: ...
    def recording_url(self, recording_sid: str) -> str: ...


class MediaServer:
    """A tiny Twilio-like media host: GET <RecordingUrl>.wav with Basic auth."""

    def __init__(self, account_sid: str, auth_token: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.account_sid, self.auth_token = account_sid, auth_token
        self.recordings: dict[str, bytes] = {}
        self.fetched: set[str] = set()  # recordings downloaded in full (by the worker)
        expected = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        media = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                sid = self.path.rsplit("/", 1)[-1].removesuffix(".wav")
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.end_headers()
                    return
                body = media.recordings.get(sid)
                if body is None or not self.path.endswith(".wav"):
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "audio/x-wav")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                media.fetched.add(sid)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.base_url = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add_recording(self, recording_sid: str, wav_bytes: bytes) -> None:
        """Serve ``wav_bytes`` as this recording."""
        self.recordings[recording_sid] = wav_bytes

    def recording_url(self, recording_sid: str) -> str:
        """The extensionless RecordingUrl Twilio would send."""
        return f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Recordings/{recording_sid}"

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


@dataclass
class CallPlan:
    """What the simulated caller (and coordinator) will do."""

    keys: list[str] = field(default_factory=list)  # one entry per <Gather>, '' for no input
    coordinator: str = "busy"  # accept | voicemail | busy | no-answer | failed
    audio: bytes | None = None  # the message; None hangs up at the beep
    end_recording_with: str = "#"  # '#', '2' or 'hangup'
    duplicate_callbacks: bool = False  # deliver the recording callbacks twice, as Twilio may
    at: datetime | None = None  # simulated time (server must allow it)


@dataclass
class CallResult:
    """What happened on the call."""

    call_sid: str
    lines: list[str] = field(default_factory=list)
    recording_sid: str | None = None
    said: list[tuple[str, str]] = field(default_factory=list)  # (Say language, text) of what the caller heard
    statuses: list[int] = field(default_factory=list)

    @property
    def heard(self) -> str:
        """Everything the caller heard, one sentence after another."""
        return " ".join(line.removeprefix("caller hears: ") for line in self.lines if line.startswith("caller hears: "))

    @property
    def ticket_number(self) -> int | None:
        """The ticket number read back to the caller, if any."""
        m = re.search(r"(?:ticket number is|número de ticket es) ((?:\d ){5,}\d)", self.heard)
        return int(m.group(1).replace(" ", "")) if m else None


class TwilioSimulator:
    """Plays Twilio's side of calls against a supportline server."""

    def __init__(
        self,
        public_base_url: str,
        *,
        account_sid: str,
        auth_token: str,
        media: MediaHost,
        server_base_url: str | None = None,
        to: str = "+18055922500",
        http: requests.Session | None = None,
    ) -> None:
        self.public = public_base_url.rstrip("/")
        self.server = (server_base_url or public_base_url).rstrip("/")
        self.account_sid, self.auth_token = account_sid, auth_token
        self.validator = RequestValidator(auth_token)
        self.media = media
        self.to = to
        self.http = http or requests.Session()

    def post(
        self,
        url: str,
        params: Mapping[str, str],
        *,
        at: datetime | None = None,
        result: CallResult | None = None,
        callback: bool = False,
    ) -> str:
        """POST as Twilio: sign the public URL, send to the server; returns the body.

        A status ``callback`` that fails is not an error of the call: Twilio delivers it again later.
        """
        public = url if url.startswith("http") else self.public + url
        target = self.server + public[len(self.public) :] if public.startswith(self.public) else public
        headers = {"X-Twilio-Signature": self.validator.compute_signature(public, dict(params))}
        if at is not None:
            headers[SIMULATED_TIME_HEADER] = at.isoformat()
        response = self.send(public, target, dict(params), headers)
        if result is not None:
            result.statuses.append(response.status_code)
        if response.status_code >= 400:
            if callback and response.status_code >= 500:
                if result is not None:
                    result.lines.append(f"callback answered {response.status_code}: Twilio would deliver it again")
                return ""
            raise RuntimeError(f"{public} answered {response.status_code}: {response.text[:200]}")
        return response.text

    def send(self, public: str, target: str, params: dict[str, str], headers: dict[str, str]) -> requests.Response:
        """Deliver one signed request (``public`` is the URL Twilio signed); tests may observe or interrupt it."""
        return self.http.post(target, data=params, headers=headers, timeout=15)

    def call(self, caller: str, plan: CallPlan) -> CallResult:
        """Place one call and follow it to the end."""
        result = CallResult(call_sid=new_sid("CA"))
        base = {
            "CallSid": result.call_sid,
            "AccountSid": self.account_sid,
            "From": caller,
            "To": self.to,
            "Caller": caller,
            "Called": self.to,
            "CallStatus": "ringing",
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
        }
        keys = list(plan.keys)
        doc = self.post("/twilio/voice", base, at=plan.at, result=result)
        base["CallStatus"] = "in-progress"
        for _ in range(50):  # every call ends long before; a loop in the TwiML must not hang a test
            nxt = self._run(doc, base, keys, plan, result)
            if nxt is None:
                break
            url, extra = nxt
            doc = self.post(url, {**base, **extra}, at=plan.at, result=result)
        result.lines.append("call ended")
        return result

    def _run(
        self, doc: str, base: dict[str, str], keys: list[str], plan: CallPlan, result: CallResult
    ) -> tuple[str, dict[str, str]] | None:
        root = ET.fromstring(doc)
        for verb in root:
            if verb.tag == "Say":
                result.lines.append(f"caller hears: {verb.text or ''}")
                result.said.append((verb.get("language", ""), verb.text or ""))
            elif verb.tag in ("Play", "Pause"):
                result.lines.append(f"caller hears: <{verb.tag.lower()}>")
            elif verb.tag == "Gather":
                for say in verb.iter("Say"):
                    result.lines.append(f"caller hears: {say.text or ''}")
                    result.said.append((say.get("language", ""), say.text or ""))
                key = keys.pop(0) if keys else ""
                finish = verb.get("finishOnKey", "#")
                digits = key[:-1] if key and finish and key.endswith(finish) else key
                if digits:
                    result.lines.append(f"caller presses: {key}")
                    return verb.get("action", ""), {"Digits": digits}
                if verb.get("actionOnEmptyResult") == "true":
                    return verb.get("action", ""), {"Digits": ""}
            elif verb.tag == "Dial":
                return self._dial(verb, base, plan, result)
            elif verb.tag == "Record":
                return self._record(verb, base, plan, result)
            elif verb.tag == "Redirect":
                return verb.text or "", dict(parse_qsl(urlsplit(verb.text or "").query))
            elif verb.tag == "Hangup":
                return None
        return None

    def _dial(
        self, verb: ET.Element, base: dict[str, str], plan: CallPlan, result: CallResult
    ) -> tuple[str, dict[str, str]]:
        status, duration = plan.coordinator, "0"
        result.lines.append(f"coordinator: {plan.coordinator}")
        if plan.coordinator in ("accept", "voicemail"):
            status = "completed"
            for leg in verb:
                leg_params = {
                    **base,
                    "CallSid": new_sid("CA"),
                    "ParentCallSid": base["CallSid"],
                    "To": leg.text or "",
                    "Direction": "outbound-dial",
                    "CallStatus": "in-progress",
                }
                screen = ET.fromstring(self.post(leg.get("url", ""), leg_params, at=plan.at, result=result))
                gather = screen.find("Gather")
                for say in screen.iter("Say"):
                    result.lines.append(f"coordinator hears: {say.text or ''}")
                if plan.coordinator == "accept" and gather is not None:
                    self.post(gather.get("action", ""), {**leg_params, "Digits": "1"}, at=plan.at, result=result)
                    duration = "95"
                break  # one coordinator answers; the others stop ringing
        return verb.get("action", ""), {
            "DialCallStatus": status,
            "DialCallSid": new_sid("CA"),
            "DialCallDuration": duration,
        }

    def _record(
        self, verb: ET.Element, base: dict[str, str], plan: CallPlan, result: CallResult
    ) -> tuple[str, dict[str, str]] | None:
        result.lines.append("caller hears: <beep>")
        if plan.audio is None:
            result.lines.append("caller hangs up")
            return None
        sid = new_sid("RE")
        result.recording_sid = sid
        self.media.add_recording(sid, plan.audio)
        duration = str(_wav_seconds(plan.audio))
        result.lines.append(f"caller leaves a {duration} s message, ends with {plan.end_recording_with}")
        recording = {"RecordingSid": sid, "RecordingUrl": self.media.recording_url(sid), "RecordingDuration": duration}
        callback = verb.get("recordingStatusCallback")
        status = {
            **recording,
            "RecordingStatus": "completed",
            "RecordingChannels": "1",
            "RecordingSource": "RecordVerb",
        }
        if plan.end_recording_with == "hangup":
            # Twilio still requests the action on hang-up, but nobody hears the answer.
            self.post(verb.get("action", ""), {**base, **recording, "Digits": "hangup"}, at=plan.at, result=result)
            if callback:
                self.post(callback, {**base, **status}, at=plan.at, result=result, callback=True)
            return None
        if callback:
            for _ in range(2 if plan.duplicate_callbacks else 1):
                self.post(callback, {**base, **status}, at=plan.at, result=result, callback=True)
        if plan.duplicate_callbacks:
            self.post(
                verb.get("action", ""),
                {**base, **recording, "Digits": plan.end_recording_with},
                at=plan.at,
                result=result,
            )
        return verb.get("action", ""), {**recording, "Digits": plan.end_recording_with}


def _wav_seconds(data: bytes) -> int:
    try:
        with wave.open(io.BytesIO(data)) as w:
            return max(1, round(w.getnframes() / w.getframerate()))
    except (wave.Error, EOFError):
        return 1


def dev_environment(path: Path | None = None) -> dict[str, str]:
    """The settings `make run` wrote for its development mode, DEV_STATE_DIR/run.env (empty when none runs)."""
    if path is None:
        from settings import load_settings

        path = load_settings().dev_state_dir / "run.env"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def read_wav(path: Path) -> bytes:
    """The bytes of a WAV file, or SystemExit with a sentence saying what is wrong with it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SystemExit(f"simulate: no such file: {path} (try samples/voicemail.wav)") from None
    except OSError as error:
        raise SystemExit(f"simulate: cannot read {path}: {error.strerror}") from None
    try:
        with wave.open(io.BytesIO(data)) as w:
            w.getnframes()
    except (wave.Error, EOFError) as error:
        raise SystemExit(f"simulate: {path} is not a WAV file ({error}); convert it with sox") from None
    return data


def _environment() -> tuple[dict[str, str], dict[str, str]]:
    """The environment to load settings from, and `make run`'s development values when it took them ({} if not)."""
    import os

    from settings import load_settings

    environ = dict(os.environ)
    dev = dev_environment(load_settings(environ).dev_state_dir / "run.env")
    from_dev = not environ.get("TWILIO_AUTH_TOKEN") and bool(dev)
    if from_dev:
        # `make run` in development mode: sign with its known local token, call its address.
        for key in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "PUBLIC_BASE_URL", "SUPPORT_NUMBER"):
            if key in dev and not environ.get(key):
                environ[key] = dev[key]
    return environ, dev if from_dev else {}


def _parser(public_base_url: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ivr.simulate", description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default=public_base_url, help="where the service listens (default PUBLIC_BASE_URL)")
    p.add_argument("--from", dest="caller", default="+18055550142", help="the caller's number")
    p.add_argument("--press", default="", help="keys for each menu, comma separated, e.g. '2' or '3,400001#'")
    p.add_argument("--coordinator", choices=COORDINATOR_CHOICES, default="busy")
    p.add_argument("--audio", type=Path, help="WAV file left as the message (omit to hang up at the beep)")
    p.add_argument("--end-with", default="#", choices=["#", "2", "hangup"], help="how the message ends")
    p.add_argument(
        "--at",
        help="simulated time: 'tomorrow 19:00', 'wed 19:00' (policy time zone, ahead of the service's clock) or "
        "ISO 8601 with offset (server needs ALLOW_SIMULATED_TIME=true)",
    )
    p.add_argument("--wait", type=float, default=120, help="seconds to wait for the worker to fetch the recording")
    return p


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RELATIVE = re.compile(r"^(?P<day>today|tomorrow|mon|tue|wed|thu|fri|sat|sun)[a-z]*\s+(?P<h>\d{1,2}):(?P<m>\d{2})$")


def _simulated_time(text: str | None, present: datetime | None = None, tz: tzinfo | None = None) -> datetime | None:
    """The --at time; ValueError with the message to print when it is not one.

    An ISO 8601 time with its offset, or a day and a time of day in the support policy's time zone, counted from
    the service's present (``present``: its simulated time when a simulated call moved it): ``today 19:00``,
    ``tomorrow 19:00``, ``wed 19:00`` (the next Wednesday after today). A relative time always lies ahead of the
    service's clock, so the README's examples work after ``make demo`` and after each other.
    """
    if not text:
        return None
    relative = _RELATIVE.match(text.strip().lower())
    if relative is not None:
        hour, minute = int(relative["h"]), int(relative["m"])
        if hour > 23 or minute > 59:
            raise ValueError(f"--at {text!r}: no such time of day")
        local = (present or datetime.now(UTC)).astimezone(tz or UTC)
        day = relative["day"]
        if day == "today":
            ahead = 0
        elif day == "tomorrow":
            ahead = 1
        else:
            ahead = (_DAYS.index(day[:3]) - local.weekday() - 1) % 7 + 1
        return (local + timedelta(days=ahead)).replace(hour=hour, minute=minute, second=0, microsecond=0)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--at {text!r} is not a time: give 'tomorrow 19:00', 'wed 19:00' or ISO 8601 (2026-11-18T19:00:00-08:00)"
        ) from None
    if at.tzinfo is None:
        raise ValueError("--at needs a UTC offset, e.g. 2026-11-18T19:00:00-08:00")
    return at


def _service_present(environ: Mapping[str, str], dev: Mapping[str, str]) -> tuple[datetime, tzinfo]:
    """The development service's present (its simulated time when one is set) and the policy's time zone."""
    from runtime import system_clock
    from settings import load_settings
    from ticketing.policy import load_policy

    settings = load_settings(environ)
    try:
        tz: tzinfo = load_policy(settings.policy_file).timezone
    except (OSError, ValueError):
        tz = UTC
    redis_url = dev.get("REDIS_URL")
    if not redis_url:
        return system_clock(), tz
    from runtime.devclock import SharedOffsetClock

    return SharedOffsetClock(system_clock, redis_url)(), tz


def main(argv: list[str] | None = None) -> int:
    """Command line: place one simulated call and print what happened."""
    from settings import load_settings

    environ, dev = _environment()
    from_dev = bool(dev)
    settings = load_settings(environ)
    args = _parser(settings.public_base_url).parse_args(argv)
    if not settings.twilio_auth_token:
        print(
            "simulate: no TWILIO_AUTH_TOKEN, and no `make run` in development mode (DEV_STATE_DIR/run.env) to take it "
            "from. "
            "Start the service with `make run`, or set TWILIO_AUTH_TOKEN to the server's.",
            file=sys.stderr,
        )
        return 2
    audio = read_wav(args.audio) if args.audio else None
    try:
        present, tz = _service_present(environ, dev) if args.at else (None, None)
        at = _simulated_time(args.at, present, tz)
    except ValueError as error:
        print(f"simulate: {error}", file=sys.stderr)
        return 2
    if from_dev:
        print(f"(development mode of `make run`: signing as {settings.twilio_account_sid}, calling {args.url})")
    if at is not None:
        print(f"(simulated time of the call: {at.astimezone(tz or at.tzinfo):%a %Y-%m-%d %H:%M %Z})")
    media = MediaServer(settings.twilio_account_sid or "AC" + "0" * 32, settings.twilio_auth_token)
    sim = TwilioSimulator(
        settings.public_base_url,
        server_base_url=args.url,
        account_sid=media.account_sid,
        auth_token=settings.twilio_auth_token,
        media=media,
        to=settings.support_number,
    )
    plan = CallPlan(
        keys=[k for k in args.press.split(",")] if args.press else [],
        coordinator=args.coordinator,
        audio=audio,
        end_recording_with=args.end_with,
        at=at,
    )
    try:
        return _call(sim, args.caller, plan, media, args)
    finally:
        media.close()


def _call(sim: TwilioSimulator, caller: str, plan: CallPlan, media: MediaServer, args: argparse.Namespace) -> int:
    """Place the call, print what happened, and serve the recording until the worker has it."""
    try:
        result = sim.call(caller, plan)
    except requests.ConnectionError:
        print(f"simulate: nothing answers at {args.url}: is the service running (`make run`)?", file=sys.stderr)
        return 1
    except RuntimeError as error:
        if " 403" in str(error):
            print(
                "simulate: the service refused the signature: its TWILIO_AUTH_TOKEN differs from the one used here.",
                file=sys.stderr,
            )
            return 1
        raise
    for line in result.lines:
        print(line)
    if args.coordinator != "busy" and not any(line.startswith("coordinator: ") for line in result.lines):
        print(
            f"(--coordinator {args.coordinator}: no coordinator was rung: outside business hours, a menu key other "
            "than 1, or no COORDINATOR_NUMBERS on the service; `make run` sets a stand-in one)"
        )
    if result.ticket_number:
        print(f"ticket: {result.ticket_number}")
    if result.recording_sid:
        # The worker downloads the recording before transcribing it: serve it until then, no longer.
        print("waiting for the worker to fetch the recording (Ctrl-C to stop) ...", flush=True)
        try:
            stop = threading.Event()
            waited = 0.0
            while result.recording_sid not in media.fetched and waited < args.wait:
                stop.wait(0.2)
                waited += 0.2
        except KeyboardInterrupt:
            return 130
        if result.recording_sid in media.fetched:
            print("the worker has the recording; the transcript follows on the ticket in the console.")
        else:
            print(f"the worker did not fetch the recording within {args.wait:.0f} s: is it running?", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

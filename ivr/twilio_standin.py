"""The local Twilio stand-in of development mode: Twilio's REST API for SMS and calls, on this machine.

``make run`` starts it beside the service when no Twilio credentials are set::

    python -m ivr.twilio_standin --port 8011

It accepts what the service asks Twilio to send (``Messages.json``, ``Calls.json``, recording deletions) when
signed in with the development account, answers as Twilio does (201 with a fresh SID, ``queued``), prints each
SMS and call, and appends it to a JSON-lines file (``DEV_TWILIO_LOG``) that the console's development page
lists. Nothing leaves the machine: there is no phone network behind it, so it reports every SMS "delivered" a
second later to the message's StatusCallback, signed as Twilio signs it (a page then counts as delivered). ``GET /dev/requests.json`` returns
what it received (the demo reads it); ``GET /dev/info`` the account it accepts.

The tests use the fuller ``testing/twilio_server.py`` (Prism validation, injected faults); this one is for people.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

DEV_ACCOUNT_SID = "AC" + "0" * 32
DEV_AUTH_TOKEN = "devtoken"  # noqa: S105 - the published development token, accepted by nothing but this stand-in
_RESOURCE = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>AC[0-9a-fA-F]{32})/(?P<what>[A-Za-z]+)(?P<rest>/[^?]*?)?(?:\.json)?$"
)


def read_log(path: Path, limit: int = 200) -> list[dict[str, Any]]:
    """The newest ``limit`` entries of a stand-in log, newest first (unreadable lines skipped)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out = []
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            out.append(entry)
        if len(out) >= limit:
            break
    return out


class TwilioStandIn:
    """A threaded HTTP server answering the REST calls supportline makes, recording each."""

    def __init__(
        self,
        *,
        account_sid: str = DEV_ACCOUNT_SID,
        auth_token: str = DEV_AUTH_TOKEN,
        host: str = "127.0.0.1",
        port: int = 0,
        log_path: Path | None = None,
        echo: bool = True,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.account_sid, self.auth_token = account_sid, auth_token
        # The service's clock: in development mode the simulated one, so /dev/outbox reads as the console does.
        self.clock = clock or (lambda: datetime.now(UTC))
        self.log_path, self.echo = log_path, echo
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """Where it listens, e.g. http://127.0.0.1:8011."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> TwilioStandIn:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def authorised(self, header: str | None) -> bool:
        """Basic auth with the development account."""
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return header == expected

    def record(self, entry: dict[str, Any]) -> None:
        """Keep, print and append one request."""
        with self._lock:
            self.received.append(entry)
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                with self.log_path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(entry) + "\n")
        if self.echo:
            if entry["kind"] == "sms":
                what = entry.get("body")
            elif entry["kind"] == "call":
                what = f"voice call, TwiML from {entry.get('url')}"
            else:
                what = entry.get("path")
            print(f"[twilio stand-in] {entry['kind'].upper()} to {entry.get('to')}: {what}", flush=True)


def _handler_for(standin: TwilioStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _json(self, status: int, payload: Mapping[str, Any] | list[Any] | None) -> None:
            body = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            if payload is not None:
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if payload is not None:
                self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = urlsplit(self.path).path
            if path == "/dev/info":
                self._json(200, {"account_sid": standin.account_sid, "auth_token": standin.auth_token})
            elif path == "/dev/requests.json":
                with standin._lock:
                    self._json(200, list(standin.received))
            else:
                self._resource("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._resource("POST")

        def do_DELETE(self) -> None:  # noqa: N802
            self._resource("DELETE")

        def _resource(self, method: str) -> None:
            split = urlsplit(self.path)
            match = _RESOURCE.match(split.path)
            if match is None:
                self._json(404, {"code": 20404, "message": "The requested resource was not found", "status": 404})
                return
            if not standin.authorised(self.headers.get("Authorization")) or match["account"] != standin.account_sid:
                self._json(401, {"code": 20003, "message": "Authenticate", "status": 401})
                return
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode(), keep_blank_values=True).items()}
            now = standin.clock()
            what = match["what"]

            def created(kind: str, prefix: str, **detail: str | None) -> str:
                """Record a message or call made through the API; its new SID."""
                sid = prefix + secrets.token_hex(16)
                record = {
                    "at": now.isoformat(),
                    "kind": kind,
                    "sid": sid,
                    "to": form.get("To"),
                    "from": form.get("From"),
                }
                standin.record({**record, **detail})
                return sid

            if method == "POST" and what == "Messages" and not match["rest"]:
                sid = created("sms", "SM", body=form.get("Body"))
                self._json(201, _instance(sid, standin.account_sid, form, now, body=form.get("Body")))
                if form.get("StatusCallback"):
                    threading.Thread(
                        target=_report_delivered, args=(standin, form["StatusCallback"], sid, form), daemon=True
                    ).start()
            elif method == "POST" and what == "Calls" and not match["rest"]:
                sid = created("call", "CA", url=form.get("Url"))
                self._json(201, _instance(sid, standin.account_sid, form, now))
            elif method == "DELETE":
                standin.record({"at": now.isoformat(), "kind": "delete", "path": split.path})
                self._json(204, None)
            else:
                self._json(404, {"code": 20404, "message": "Not served by the development stand-in", "status": 404})

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def _report_delivered(standin: TwilioStandIn, url: str, sid: str, form: Mapping[str, str]) -> None:
    """What Twilio does once a carrier confirms an SMS: a signed status callback saying "delivered"."""
    import requests
    from twilio.request_validator import RequestValidator

    time.sleep(1)
    params = {
        "AccountSid": standin.account_sid,
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": "delivered",
        "SmsStatus": "delivered",
        "To": form.get("To", ""),
        "From": form.get("From", ""),
        "ApiVersion": "2010-04-01",
    }
    signature = RequestValidator(standin.auth_token).compute_signature(url, params)
    try:
        requests.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=5)
    except requests.RequestException as exc:
        print(f"[twilio stand-in] status callback to {url} failed: {type(exc).__name__}", flush=True)


def _instance(
    sid: str, account: str, form: Mapping[str, str], now: datetime, body: str | None = None
) -> dict[str, Any]:
    stamp = now.strftime("%a, %d %b %Y %H:%M:%S +0000")
    return {
        "sid": sid,
        "account_sid": account,
        "to": form.get("To"),
        "from": form.get("From"),
        "body": body,
        "status": "queued",
        "date_created": stamp,
        "date_updated": stamp,
        "api_version": "2010-04-01",
        "uri": f"/2010-04-01/Accounts/{account}/{'Messages' if sid.startswith('SM') else 'Calls'}/{sid}.json",
    }


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted."""
    from settings import load_settings

    settings = load_settings()
    parser = argparse.ArgumentParser(prog="python -m ivr.twilio_standin", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--log", type=Path, default=settings.dev_twilio_log, help="JSON-lines log (DEV_TWILIO_LOG)")
    args = parser.parse_args(argv)
    clock = None
    if settings.dev_mode and settings.allow_simulated_time:
        from runtime import system_clock
        from runtime.devclock import SharedOffsetClock

        clock = SharedOffsetClock(system_clock, settings.redis_url)
    try:
        standin = TwilioStandIn(
            account_sid=settings.twilio_account_sid or DEV_ACCOUNT_SID,
            auth_token=settings.twilio_auth_token or DEV_AUTH_TOKEN,
            host=args.host,
            port=args.port,
            log_path=args.log,
            clock=clock,
        ).start()
    except OSError as error:
        print(f"twilio stand-in: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    print(f"[twilio stand-in] listening on {standin.base_url}; SMS and calls are logged to {args.log}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    standin.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

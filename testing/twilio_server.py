"""A Twilio REST test server: records requests, validates them with Prism, injects faults, serves media.

Run it standalone (for the call simulator) with ``python -m testing.twilio_server --port N``:
it starts Prism, prints its base URL on stdout and the matching TWILIO_* settings on stderr.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from twilio.request_validator import RequestValidator

REPO_ROOT = Path(__file__).resolve().parents[1]
PRISM_DIR = REPO_ROOT / "tools" / "prism"
PRISM_BIN = PRISM_DIR / "node_modules" / ".bin" / "prism"
INSTALL_HINT = "run `npm ci --prefix tools/prism`"

_MEDIA_PATH = re.compile(r"/2010-04-01/Accounts/(?P<account>[^/]+)/Recordings/(?P<sid>RE[0-9a-fA-F]{32})\.wav")
_MESSAGE_MEDIA_PATH = re.compile(
    r"/2010-04-01/Accounts/(?P<account>[^/]+)/Messages/(?P<message>MM[0-9a-fA-F]{32})/Media/(?P<sid>ME[0-9a-fA-F]{32})"
)
_RECORDING_PATH = re.compile(r"/Recordings/(?P<sid>RE[0-9a-fA-F]{32})\.json")
_ACCOUNT_IN_PATH = re.compile(r"/2010-04-01/Accounts/(?P<account>AC[0-9a-fA-F]{32})(?:/|\.json)")
_INSTANCE_SID_IN_PATH = re.compile(r"/(?P<sid>[A-Z]{2}[0-9a-fA-F]{32})\.json$")
_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")
# Prism only answers with the spec's example, so every created message/call
# would otherwise carry the same SID and the example's numbers.
_CREATED_RESOURCES = ("/Messages.json", "/Calls.json")


def new_sid(prefix: str) -> str:
    """A fresh Twilio-shaped SID: two capital letters and 32 hex digits (SM…, CA…, RE…)."""
    return prefix + secrets.token_hex(16)


def sign(url: str, params: Mapping[str, str] | Mapping[str, Sequence[str]], token: str) -> str:
    """The X-Twilio-Signature Twilio would send for a POST of ``params`` to ``url``."""
    return str(RequestValidator(token).compute_signature(url, params))


def twilio_spec_path() -> Path:
    """Twilio's OpenAPI description of api.twilio.com (2010-04-01) in the shared checkout."""
    candidates = [
        REPO_ROOT.parent / "shared" / "twilio" / "twilio_api_v2010.json",
        REPO_ROOT / "shared" / "twilio" / "twilio_api_v2010.json",
    ]
    return next((path for path in candidates if path.is_file()), candidates[0])


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class PrismUnavailable(RuntimeError):
    """Node, Prism or Twilio's spec is missing, or Prism did not start."""


class PrismMock:
    """A `prism mock --errors` process serving Twilio's OpenAPI description."""

    def __init__(
        self,
        spec: Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        binary: Path = PRISM_BIN,
    ) -> None:
        self.spec = spec or twilio_spec_path()
        self.host = host
        self.port = port or free_port(host)
        self.binary = binary
        self.startup_seconds: float | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None
        self._exit_status: int | None = None

    @property
    def url(self) -> str:
        """Prism's base URL."""
        return f"http://{self.host}:{self.port}"

    def start(self, ready_timeout: float = 60.0) -> PrismMock:
        """Start Prism and wait until it accepts connections; raise PrismUnavailable if it cannot."""
        if shutil.which("node") is None:
            raise PrismUnavailable("node is not on PATH (Prism 5.14.2 needs Node >= 18.20.1)")
        if not self.binary.exists():
            raise PrismUnavailable(f"{self.binary} is missing; {INSTALL_HINT}")
        if not self.spec.is_file():
            raise PrismUnavailable(f"Twilio's OpenAPI description is missing: {self.spec}")
        started = time.monotonic()
        fd, log_name = tempfile.mkstemp(prefix="prism-", suffix=".log")
        self._log_path = Path(log_name)
        with os.fdopen(fd, "wb") as log:
            # --errors: an invalid request gets Prism's 401/415/422 instead of a 2xx example.
            self._process = subprocess.Popen(
                [str(self.binary), "mock", "-h", self.host, "-p", str(self.port), "--errors", str(self.spec)],
                cwd=PRISM_DIR if PRISM_DIR.is_dir() else None,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = started + ready_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                log_tail = self.log_tail()
                self.stop()
                raise PrismUnavailable(f"Prism exited with status {self._exit_status}: {log_tail}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    self.startup_seconds = time.monotonic() - started
                    return self
            except OSError:
                time.sleep(0.05)
        log_tail = self.log_tail()
        self.stop()
        raise PrismUnavailable(f"Prism did not listen on {self.url} within {ready_timeout:.0f} s: {log_tail}")

    def log_tail(self, chars: int = 2000) -> str:
        """The end of Prism's log (for error messages)."""
        if self._log_path is None or not self._log_path.exists():
            return ""
        return self._log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        """Stop Prism (its whole process group) and remove its log."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                    process.wait(timeout=5)
                except ProcessLookupError:
                    pass
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
            self._exit_status = process.wait()
        if self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
            self._log_path = None

    def __enter__(self) -> PrismMock:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@dataclass
class RecordedRequest:
    """One request the test server received, as the code under test sent it."""

    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    auth_user: str | None
    headers: dict[str, str]
    fault: str | None = None
    status: int | None = None  # what the server answered; None while in flight

    def param(self, name: str) -> str | None:
        """The first value of form field ``name`` (or query parameter), if sent."""
        values = self.form.get(name) or self.query.get(name)
        return values[0] if values else None

    def matches(self, path_suffix: str, method: str | None = None) -> bool:
        """True when the path ends with ``path_suffix`` (and the method is ``method``)."""
        return self.path.endswith(path_suffix) and (method is None or self.method == method.upper())


@dataclass
class _Fault:
    path_suffix: str
    kind: Literal["fail", "timeout"]
    remaining: int
    status: int = 500
    seconds: float = 0.0
    code: int | None = None


@dataclass
class _Answer:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class TwilioTestServer:
    """Local stand-in for api.twilio.com: validates through Prism, records, injects faults, serves media."""

    def __init__(
        self,
        *,
        prism_url: str | None,
        account_sid: str | None = None,
        auth_token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        verbose: bool = False,
    ) -> None:
        self.prism_url = prism_url.rstrip("/") if prism_url else None
        self.account_sid = account_sid or new_sid("AC")
        self.auth_token = auth_token or secrets.token_hex(16)
        self.host = host
        self.verbose = verbose
        self._requested_port = port
        self._changed = threading.Condition()
        self._requests: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._recordings: dict[str, bytes] = {}
        self._message_media: dict[str, tuple[bytes, str]] = {}
        self._release_delays = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        # Prism is on 127.0.0.1: never send its traffic through an HTTP(S)_PROXY.
        self._prism = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # -- life cycle ---------------------------------------------------------

    def start(self) -> TwilioTestServer:
        """Listen on a free port (or the one given) in a background thread."""
        self._httpd = _HTTPServer((self.host, self._requested_port), _Handler, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="twilio-test-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; requests held by timeout_next are let go."""
        self._release_delays.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> TwilioTestServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget recorded requests, pending faults and recordings; let held requests go."""
        with self._changed:
            self._requests.clear()
            self._faults.clear()
            self._recordings.clear()
            self._message_media.clear()
            self._release_delays.set()
            self._release_delays = threading.Event()

    # -- addresses ----------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._httpd is None:
            raise RuntimeError("TwilioTestServer is not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """What TWILIO_API_BASE_URL should be, e.g. http://127.0.0.1:PORT."""
        return f"http://{self.host}:{self.port}"

    def settings_overrides(self) -> dict[str, str]:
        """Settings fields that point the app at this server: ``settings.with_overrides(**…)``."""
        return {
            "twilio_account_sid": self.account_sid,
            "twilio_auth_token": self.auth_token,
            "twilio_api_base_url": self.base_url,
        }

    # -- what was requested -------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, oldest first."""
        with self._changed:
            return list(self._requests)

    def requests_for(self, path_suffix: str, method: str | None = None) -> list[RecordedRequest]:
        """Requests whose path ends with ``path_suffix`` (e.g. "/Messages.json"), oldest first."""
        return [r for r in self.requests if r.matches(path_suffix, method)]

    def messages(self, to: str | None = None) -> list[RecordedRequest]:
        """SMS create requests (POST …/Messages.json), optionally only those to ``to``."""
        return [r for r in self.requests_for("/Messages.json", "POST") if to is None or r.param("To") == to]

    def calls(self, to: str | None = None) -> list[RecordedRequest]:
        """Call create requests (POST …/Calls.json), optionally only those to ``to``."""
        return [r for r in self.requests_for("/Calls.json", "POST") if to is None or r.param("To") == to]

    def wait_for(self, predicate: Callable[[RecordedRequest], bool], timeout: float = 5.0) -> RecordedRequest:
        """The first request matching ``predicate``, waiting up to ``timeout`` s; AssertionError if none."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for request in self._requests:
                    if predicate(request):
                        return request
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [f"{r.method} {r.path} -> {r.status}" for r in self._requests]
                    raise AssertionError(f"no matching Twilio request within {timeout} s; saw {seen}")
                self._changed.wait(left)

    # -- faults -------------------------------------------------------------

    def fail_next(self, path_suffix: str, status: int = 500, count: int = 1, code: int | None = None) -> None:
        """Answer the next ``count`` requests to ``path_suffix`` with a Twilio error of ``status`` (and ``code``)."""
        with self._changed:
            self._faults.append(_Fault(path_suffix, "fail", count, status=status, code=code))

    def clear_faults(self) -> None:
        """Drop every pending fault: Twilio answers normally again."""
        with self._changed:
            self._faults.clear()

    def timeout_next(self, path_suffix: str, seconds: float, count: int = 1) -> None:
        """Hold the next ``count`` requests to ``path_suffix`` for ``seconds`` before handling them."""
        with self._changed:
            self._faults.append(_Fault(path_suffix, "timeout", count, seconds=seconds))

    # -- recordings ---------------------------------------------------------

    def add_recording(self, recording_sid: str, wav_bytes: bytes) -> None:
        """Serve ``wav_bytes`` as the media of ``recording_sid`` (at recording_url(sid) + ".wav")."""
        if not _SID.fullmatch(recording_sid) or not recording_sid.startswith("RE"):
            raise ValueError(f"not a recording SID: {recording_sid!r}")
        with self._changed:
            self._recordings[recording_sid] = wav_bytes

    def recording_url(self, recording_sid: str) -> str:
        """The RecordingUrl Twilio would send in a webhook: no extension, append .wav or .mp3."""
        return f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Recordings/{recording_sid}"

    def has_recording(self, recording_sid: str) -> bool:
        """True while the recording's media is served (add_recording'd and not deleted)."""
        with self._changed:
            return recording_sid in self._recordings

    # -- message media (MMS) ------------------------------------------------

    def add_message_media(self, message_sid: str, body: bytes, content_type: str) -> str:
        """Serve ``body`` as one media file of the MMS ``message_sid``; returns its MediaUrl (auth required)."""
        media_sid = new_sid("ME")
        with self._changed:
            self._message_media[media_sid] = (body, content_type)
        return f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Messages/{message_sid}/Media/{media_sid}"

    # -- request handling (called from the handler threads) ------------------

    def _record(self, request: RecordedRequest) -> _Fault | None:
        with self._changed:
            self._requests.append(request)
            fault = next((f for f in self._faults if request.path.endswith(f.path_suffix)), None)
            if fault is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                request.fault = fault.kind
            self._changed.notify_all()
            return fault

    def _answered(self, request: RecordedRequest, status: int) -> None:
        with self._changed:
            request.status = status
            self._changed.notify_all()

    def _handle(self, request: RecordedRequest, password: str | None, body: bytes, raw_path: str) -> _Answer:
        fault = self._record(request)
        if fault is not None and fault.kind == "fail":
            return _twilio_error(fault.status, "injected by TwilioTestServer.fail_next", code=fault.code)
        if fault is not None:
            self._release_delays.wait(fault.seconds)
        media = _MEDIA_PATH.fullmatch(request.path)
        if media and request.method in ("GET", "HEAD"):
            return self._media(media["account"], media["sid"], request.auth_user, password)
        picture = _MESSAGE_MEDIA_PATH.fullmatch(request.path)
        if picture and request.method in ("GET", "HEAD"):
            return self._picture(picture["account"], picture["sid"], request.auth_user, password)
        if request.auth_user is not None and (request.auth_user, password) != (
            self.account_sid,
            self.auth_token,
        ):
            # Prism only checks that Basic auth is present; Twilio checks the credentials.
            return _twilio_error(
                401, "Authenticate", code=20003, headers={"WWW-Authenticate": 'Basic realm="Twilio API"'}
            )
        answer = self._forward(request, body, raw_path) if self.prism_url else _unvalidated(request)
        deleted = _RECORDING_PATH.search(request.path)
        if request.method == "DELETE" and deleted and answer.status == 204:
            with self._changed:
                self._recordings.pop(deleted["sid"], None)
        return answer

    def _media(self, account: str, sid: str, user: str | None, password: str | None) -> _Answer:
        # Like Twilio with "Enforce HTTP Auth on Media URLs" turned on.
        if (user, password) != (self.account_sid, self.auth_token) or account != self.account_sid:
            return _twilio_error(
                401, "Authenticate", code=20003, headers={"WWW-Authenticate": 'Basic realm="Twilio API"'}
            )
        with self._changed:
            wav = self._recordings.get(sid)
        if wav is None:
            return _twilio_error(404, f"The requested resource /Recordings/{sid}.wav was not found", code=20404)
        return _Answer(200, wav, "audio/x-wav")

    def _picture(self, account: str, sid: str, user: str | None, password: str | None) -> _Answer:
        if (user, password) != (self.account_sid, self.auth_token) or account != self.account_sid:
            return _twilio_error(
                401, "Authenticate", code=20003, headers={"WWW-Authenticate": 'Basic realm="Twilio API"'}
            )
        with self._changed:
            found = self._message_media.get(sid)
        if found is None:
            return _twilio_error(404, f"The requested resource /Media/{sid} was not found", code=20404)
        return _Answer(200, found[0], found[1])

    def _forward(self, request: RecordedRequest, body: bytes, raw_path: str) -> _Answer:
        assert self.prism_url is not None
        outgoing = urllib.request.Request(self.prism_url + raw_path, data=body or None, method=request.method)
        for name in ("Content-Type", "Authorization", "Accept"):
            if name in request.headers:
                outgoing.add_header(name, request.headers[name])
        try:
            with self._prism.open(outgoing, timeout=30) as response:
                status, content_type, payload = (
                    response.status,
                    response.headers.get("Content-Type"),
                    response.read(),
                )
        except urllib.error.HTTPError as error:
            with error:
                status, content_type, payload = error.code, error.headers.get("Content-Type"), error.read()
        except OSError as error:
            return _twilio_error(502, f"TwilioTestServer could not reach Prism at {self.prism_url}: {error}")
        return _Answer(status, _adapt(request, status, payload), content_type)


def _adapt(request: RecordedRequest, status: int, payload: bytes) -> bytes:
    """Make Prism's static example answer look like this request's answer; give Prism errors a message."""
    try:
        document = json.loads(payload)
    except ValueError:
        return payload
    if not isinstance(document, dict):
        return payload
    if status >= 400:
        # twilio-python puts "message" into TwilioRestException.msg; Prism's problem JSON has none.
        if "message" not in document:
            problems = [str(v.get("message")) for v in document.get("validation", []) if isinstance(v, dict)]
            document["message"] = "; ".join(problems) or document.get("detail") or document.get("title")
        return json.dumps(document).encode()
    text = payload.decode()
    example_sid = document.get("sid")
    if isinstance(example_sid, str) and _SID.fullmatch(example_sid):
        in_path = _INSTANCE_SID_IN_PATH.search(request.path)
        if in_path and in_path["sid"][:2] == example_sid[:2]:
            text = text.replace(example_sid, in_path["sid"])
        else:
            text = text.replace(example_sid, new_sid(example_sid[:2]))
    account = _ACCOUNT_IN_PATH.match(request.path)
    example_account = document.get("account_sid")
    if account and isinstance(example_account, str) and _SID.fullmatch(example_account):
        text = text.replace(example_account, account["account"])
    document = json.loads(text)
    if request.method == "POST" and request.path.endswith(_CREATED_RESOURCES):
        document.update(status="queued", direction="outbound-api", to=request.param("To"))
        document["from"] = request.param("From")
        if "body" in document:
            document["body"] = request.param("Body")
    return json.dumps(document).encode()


def _unvalidated(request: RecordedRequest) -> _Answer:
    """Answer without Prism (standalone --no-prism): only what supportline sends, checked loosely."""
    if request.auth_user is None:
        return _twilio_error(401, "Authenticate", code=20003)
    if request.method == "DELETE" and _RECORDING_PATH.search(request.path):
        return _Answer(204, b"", None)
    if request.method == "POST" and request.path.endswith(_CREATED_RESOURCES):
        missing = [name for name in ("To", "From") if not request.param(name)]
        if missing:
            return _twilio_error(400, f"Required parameter {missing[0]} missing", code=21604)
        prefix = "SM" if request.path.endswith("/Messages.json") else "CA"
        account = _ACCOUNT_IN_PATH.match(request.path)
        document = {
            "sid": new_sid(prefix),
            "account_sid": account["account"] if account else None,
            "to": request.param("To"),
            "from": request.param("From"),
            "body": request.param("Body"),
            "status": "queued",
            "direction": "outbound-api",
        }
        return _Answer(201, json.dumps(document).encode())
    return _twilio_error(404, f"The requested resource {request.path} was not found (no Prism)", code=20404)


def _twilio_error(
    status: int, message: str, *, code: int | None = None, headers: dict[str, str] | None = None
) -> _Answer:
    """An error in Twilio's own JSON shape (code, message, more_info, status)."""
    code = code or 20000 + status
    document = {
        "code": code,
        "message": f"{HTTPStatus(status).phrase}: {message}" if status >= 500 else message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return _Answer(status, json.dumps(document).encode(), "application/json", headers or {})


def _basic_auth(header: str | None) -> tuple[str | None, str | None]:
    if not header or not header.startswith("Basic "):
        return None, None
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    return user, password


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], handler: type[_Handler], twilio: TwilioTestServer) -> None:
        self.twilio = twilio
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "TwilioTestServer/1"

    def _serve(self) -> None:
        twilio = self.server.twilio
        split = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        content_type = self.headers.get("Content-Type", "")
        form = (
            parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            if content_type.startswith("application/x-www-form-urlencoded")
            else {}
        )
        user, password = _basic_auth(self.headers.get("Authorization"))
        request = RecordedRequest(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            form=form,
            auth_user=user,
            headers={name: value for name, value in self.headers.items()},
        )
        try:
            answer = twilio._handle(request, password, body, self.path)
        except Exception as error:
            # A bug in this server must reach the client as a 500, not as a hung request.
            traceback.print_exc()
            answer = _twilio_error(500, f"TwilioTestServer failed: {error!r}")
        twilio._answered(request, answer.status)
        try:
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            if answer.status != 204:
                if answer.content_type:
                    self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if answer.status != 204 and self.command != "HEAD":
                self.wfile.write(answer.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout_next test): nothing left to tell it

    do_GET = do_POST = do_DELETE = do_PUT = do_HEAD = _serve

    def log_message(self, format: str, *args: object) -> None:
        if self.server.twilio.verbose:
            super().log_message(format, *args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the test server (and Prism) until interrupted; print the base URL."""
    parser = argparse.ArgumentParser(prog="python -m testing.twilio_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--account-sid", help="default: a fresh AC… SID")
    parser.add_argument("--auth-token", help="default: a fresh 32-hex token")
    parser.add_argument("--prism-url", help="use a Prism already running here instead of starting one")
    parser.add_argument("--no-prism", action="store_true", help="answer without validating (no Node needed)")
    parser.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = parser.parse_args(argv)
    prism: PrismMock | None = None
    prism_url: str | None = args.prism_url
    if prism_url is None and not args.no_prism:
        try:
            prism = PrismMock().start()
        except PrismUnavailable as error:
            print(f"cannot start Prism: {error} (or pass --no-prism)", file=sys.stderr)
            return 2
        prism_url = prism.url
    server = TwilioTestServer(
        prism_url=prism_url,
        account_sid=args.account_sid,
        auth_token=args.auth_token,
        host=args.host,
        port=args.port,
        verbose=args.verbose,
    ).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(server.base_url, flush=True)
    print(
        f"TWILIO_API_BASE_URL={server.base_url} TWILIO_ACCOUNT_SID={server.account_sid} "
        f"TWILIO_AUTH_TOKEN={server.auth_token} (validated by {prism_url or 'nothing: --no-prism'})",
        file=sys.stderr,
        flush=True,
    )
    try:
        stop.wait()
    finally:
        server.stop()
        if prism is not None:
            prism.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

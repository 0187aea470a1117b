"""Downloading recordings from a real local HTTP server that behaves like Twilio, and worse."""

from __future__ import annotations

import base64
import io
import threading
import time
import wave
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from transcription.download import check_recording, download_recording, media_url_refusal, recording_media_url
from transcription.errors import (
    CorruptRecordingError,
    DownloadError,
    EmptyRecordingError,
    NotAudioError,
    RecordingAuthError,
    RecordingNotFoundError,
    RecordingRefusedError,
    RecordingTooLargeError,
    RecordingUnavailableError,
)

ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "test-auth-token"
MAX_BYTES = 64 * 1024


def one_second_wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\x10\x00\xf0\xff" * 4000)
    return buffer.getvalue()


GOOD_WAV = one_second_wav()


class FakeTwilioMedia(BaseHTTPRequestHandler):
    """Serves /<behaviour>/<RecordingSid>.wav; the behaviour names what goes wrong."""

    hits: Counter[str] = Counter()
    expected_auth = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass  # keep pytest output clean

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self.hits[self.path] += 1
        count = self.hits[self.path]
        if self.headers.get("Authorization") != self.expected_auth:
            self._send(401, "application/json", b'{"code": 20003, "message": "Authenticate"}')
            return
        behaviour = self.path.strip("/").split("/")[0]
        if not self.path.endswith(".wav"):
            self._send(404, "application/json", b'{"status": 404}')
        elif behaviour == "good":
            self._send(200, "audio/x-wav", GOOD_WAV)
        elif behaviour == "flaky":  # two 5xx, then the media
            if count <= 2:
                self._send(503 if count == 1 else 500, "text/html", b"<h1>busy</h1>")
            else:
                self._send(200, "audio/x-wav", GOOD_WAV)
        elif behaviour == "down":
            self._send(502, "text/html", b"<h1>bad gateway</h1>")
        elif behaviour == "slow-once":
            if count == 1:
                time.sleep(1.0)
            self._send(200, "audio/x-wav", GOOD_WAV)
        elif behaviour == "slow":
            time.sleep(1.0)
            self._send(200, "audio/x-wav", GOOD_WAV)
        elif behaviour == "html":
            self._send(200, "text/html; charset=utf-8", b"<html>Log in to Twilio</html>")
        elif behaviour == "empty":
            self._send(200, "audio/x-wav", b"")
        elif behaviour == "oversized":
            self._send(200, "audio/x-wav", GOOD_WAV + b"\x00" * MAX_BYTES)
        elif behaviour == "endless":  # no Content-Length, never ends: only the cap stops it
            self.send_response(200)
            self.send_header("Content-Type", "audio/x-wav")
            self.end_headers()
            try:
                for _ in range(100_000):
                    self.wfile.write(b"\x00" * 65536)
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif behaviour == "corrupt":
            self._send(200, "audio/x-wav", bytes(range(256)) * 40)
        elif behaviour == "no-samples":
            self._send(200, "audio/x-wav", GOOD_WAV[:44])
        elif behaviour == "missing":
            self._send(404, "application/json", b'{"status": 404}')
        elif behaviour == "forbidden":
            self._send(403, "application/json", b'{"status": 403}')
        else:
            self._send(400, "application/json", b'{"status": 400}')

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first: the timeout tests want exactly that


@pytest.fixture(scope="module")
def media_server() -> Iterator[str]:
    """A Twilio-media-like HTTP server on 127.0.0.1, in a thread."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeTwilioMedia)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def fetch(base: str, behaviour: str, sid: str, dest: Path, **overrides: object) -> Path:
    options: dict[str, object] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "max_bytes": MAX_BYTES,
        "timeout": 0.4,
        "retries": 3,
        "backoff": 0.01,
        "api_base_url": base,  # the test server plays Twilio's media host
    }
    options.update(overrides)
    return download_recording(f"{base}/{behaviour}/{sid}", dest, sid, **options)  # type: ignore[arg-type]


def test_a_recording_is_saved_as_its_sid_with_wav_appended(media_server: str, tmp_path: Path) -> None:
    path = fetch(media_server, "good", "RE00000000000000000000000000000001", tmp_path)
    assert path == tmp_path / "RE00000000000000000000000000000001.wav"
    assert path.read_bytes() == GOOD_WAV
    assert FakeTwilioMedia.hits["/good/RE00000000000000000000000000000001.wav"] == 1


def test_downloading_the_same_sid_twice_gives_the_same_file_without_a_second_request(
    media_server: str, tmp_path: Path
) -> None:
    first = fetch(media_server, "good", "REtwice", tmp_path)
    second = fetch(media_server, "good", "REtwice", tmp_path)
    assert first == second
    assert FakeTwilioMedia.hits["/good/REtwice.wav"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["REtwice.wav"]


def test_server_errors_are_retried_with_backoff_until_the_media_comes(media_server: str, tmp_path: Path) -> None:
    started = time.monotonic()
    path = fetch(media_server, "flaky", "REflaky", tmp_path, backoff=0.05)
    assert path.read_bytes() == GOOD_WAV
    assert FakeTwilioMedia.hits["/flaky/REflaky.wav"] == 3
    assert time.monotonic() - started >= 0.05 + 0.10  # two waits, the second doubled


def test_a_server_that_stays_down_fails_after_every_retry(media_server: str, tmp_path: Path) -> None:
    with pytest.raises(RecordingUnavailableError, match="4 attempts"):
        fetch(media_server, "down", "REdown", tmp_path, retries=3)
    assert FakeTwilioMedia.hits["/down/REdown.wav"] == 4
    assert list(tmp_path.iterdir()) == []


def test_a_timeout_is_retried(media_server: str, tmp_path: Path) -> None:
    path = fetch(media_server, "slow-once", "REslowonce", tmp_path, timeout=0.3)
    assert path.read_bytes() == GOOD_WAV
    assert FakeTwilioMedia.hits["/slow-once/REslowonce.wav"] == 2


def test_a_server_that_always_times_out_fails_as_unavailable(media_server: str, tmp_path: Path) -> None:
    with pytest.raises(RecordingUnavailableError):
        fetch(media_server, "slow", "REslow", tmp_path, timeout=0.2, retries=1)
    assert FakeTwilioMedia.hits["/slow/REslow.wav"] == 2


def test_a_connection_refused_is_retried_then_reported(tmp_path: Path) -> None:
    with pytest.raises(RecordingUnavailableError):
        download_recording(
            "http://127.0.0.1:9/refused/REnobody", tmp_path, "REnobody",
            account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, max_bytes=MAX_BYTES,
            api_base_url="http://127.0.0.1:9", timeout=0.5, retries=1, backoff=0.01,
        )  # fmt: skip


def test_wrong_credentials_fail_at_once_without_retrying(media_server: str, tmp_path: Path) -> None:
    with pytest.raises(RecordingAuthError, match="TWILIO_AUTH_TOKEN"):
        fetch(media_server, "good", "REbadauth", tmp_path, auth_token="wrong")
    assert FakeTwilioMedia.hits["/good/REbadauth.wav"] == 1


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [("missing", RecordingNotFoundError), ("forbidden", RecordingAuthError), ("teapot", DownloadError)],
)
def test_client_errors_are_not_retried(
    media_server: str, tmp_path: Path, behaviour: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        fetch(media_server, behaviour, "RE4xx", tmp_path)
    assert FakeTwilioMedia.hits[f"/{behaviour}/RE4xx.wav"] == 1


def test_an_html_page_is_refused_as_not_audio(media_server: str, tmp_path: Path) -> None:
    with pytest.raises(NotAudioError, match="text/html"):
        fetch(media_server, "html", "REhtml", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_empty_body_is_refused(media_server: str, tmp_path: Path) -> None:
    with pytest.raises(EmptyRecordingError):
        fetch(media_server, "empty", "REempty", tmp_path)


def test_a_body_over_the_limit_is_refused_from_its_content_length(media_server: str, tmp_path: Path) -> None:
    with pytest.raises(RecordingTooLargeError, match="limit"):
        fetch(media_server, "oversized", "REbig", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_endless_body_without_content_length_stops_at_the_cap(media_server: str, tmp_path: Path) -> None:
    with pytest.raises(RecordingTooLargeError, match="more than"):
        fetch(media_server, "endless", "REendless", tmp_path)


@pytest.mark.parametrize("behaviour", ["corrupt", "no-samples"])
def test_bytes_that_do_not_decode_as_audio_are_refused(media_server: str, tmp_path: Path, behaviour: str) -> None:
    with pytest.raises(CorruptRecordingError):
        fetch(media_server, behaviour, "REcorrupt", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_file_left_in_place_is_downloaded_again(media_server: str, tmp_path: Path) -> None:
    (tmp_path / "REdamaged.wav").write_bytes(b"half a file")
    path = fetch(media_server, "good", "REdamaged", tmp_path)
    assert path.read_bytes() == GOOD_WAV


def test_credentials_are_never_sent_over_plain_http_to_another_host(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="https"):
        download_recording(
            "http://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1", tmp_path, "RE1",
            account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, max_bytes=MAX_BYTES, timeout=1, retries=0,
        )  # fmt: skip


@pytest.mark.parametrize("sid", ["../../etc/passwd", "RE1/../RE2", ""])
def test_a_recording_sid_that_is_not_a_plain_name_is_refused(sid: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="RecordingSid"):
        download_recording(
            "https://api.twilio.com/x", tmp_path, sid,
            account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, max_bytes=MAX_BYTES, timeout=1, retries=0,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("recording_url", "media_url"),
    [
        (
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1.wav",
        ),
        (
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1.mp3",
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1.mp3",
        ),
    ],
)
def test_wav_is_appended_to_an_extensionless_recording_url(recording_url: str, media_url: str) -> None:
    assert recording_media_url(recording_url) == media_url


def test_the_wav_header_check_reports_the_duration() -> None:
    assert check_recording(GOOD_WAV) == pytest.approx(1.0)
    with pytest.raises(CorruptRecordingError):
        check_recording(b"RIFF\x00\x00\x00\x00WAVEfmt ")


@pytest.mark.parametrize(
    ("url", "base", "why"),
    [
        ("http://127.0.0.1:8000/Recordings/RE1", "https://api.twilio.com", "not one of Twilio's media hosts"),
        ("https://evil.example/Recordings/RE1", "https://api.twilio.com", "not one of Twilio's media hosts"),
        ("https://api.twilio.com@evil.example/RE1", "https://api.twilio.com", "not one of Twilio's media hosts"),
        ("https://api.twilio.com.evil.example/RE1", "https://api.twilio.com", "not one of Twilio's media hosts"),
        ("ftp://api.twilio.com/RE1", "https://api.twilio.com", "not one of Twilio's media hosts"),
        ("http://api.twilio.com/RE1", "https://api.twilio.com", "use https"),
        ("http://media.example/RE1", "https://media.example", "use https"),
        ("http://api.twilio.com/RE1", "http://127.0.0.1:8011", "use https"),
        ("http://10.0.0.5/RE1", "http://127.0.0.1:8011", "not one of Twilio's media hosts"),
        # The host alone is not enough: another port or scheme of it is another server.
        ("https://api.twilio.com:8443/RE1", "https://api.twilio.com", "not one of Twilio's media hosts"),
        ("http://127.0.0.1:8012/Recordings/RE1", "http://127.0.0.1:8011", "not one of Twilio's media hosts"),
        ("https://127.0.0.1:8011/Recordings/RE1", "http://127.0.0.1:8011", "not one of Twilio's media hosts"),
        ("https://twilio.example.net:444/RE1", "https://twilio.example.net", "not one of Twilio's media hosts"),
        ("https://api.twilio.com:99999/RE1", "https://api.twilio.com", "not one of Twilio's media hosts"),
    ],
)
def test_credentials_go_only_to_twilios_media_hosts(url: str, base: str, why: str, tmp_path: Path) -> None:
    assert why in (media_url_refusal(url, base) or "")
    with pytest.raises(RecordingRefusedError, match=why):
        download_recording(
            url, tmp_path, "RE1", account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, max_bytes=MAX_BYTES,
            api_base_url=base, timeout=1, retries=0,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1", "https://api.twilio.com"),
        ("https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1", "https://twilio.example.net"),
        ("https://twilio.example.net/Recordings/RE1", "https://twilio.example.net"),
        ("http://127.0.0.1:8011/Recordings/RE1", "http://127.0.0.1:8011"),  # a local test server
        # The default port said or not, and the host in any case, name the same origin.
        ("https://api.twilio.com:443/2010-04-01/Accounts/AC1/Recordings/RE1", "https://api.twilio.com"),
        ("https://API.Twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1", "https://api.twilio.com:443"),
        ("https://twilio.example.net/Recordings/RE1", "https://twilio.example.net:443"),
        ("http://media.example:80/RE1", "http://media.example"),
    ],
)
def test_twilios_media_hosts_are_accepted(url: str, base: str) -> None:
    assert media_url_refusal(url, base) is None


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:8012/Recordings/RE1", True),  # the call simulator's own media server
        ("http://localhost:8013/Recordings/RE1", True),
        ("https://127.0.0.1:8012/Recordings/RE1", False),  # only plain HTTP, only this machine
        ("http://10.0.0.5:8012/Recordings/RE1", False),
        ("http://127.0.0.1.evil.example:8012/RE1", False),
        ("http://127.0.0.1@evil.example:8012/RE1", False),
    ],
)
def test_development_mode_alone_also_takes_a_media_server_on_another_local_port(url: str, allowed: bool) -> None:
    base = "http://127.0.0.1:8011"  # the development Twilio stand-in
    assert (media_url_refusal(url, base, local_media=True) is None) is allowed
    assert media_url_refusal(url, base) is not None


def test_development_mode_downloads_from_the_simulators_media_server(media_server: str, tmp_path: Path) -> None:
    stand_in = "http://127.0.0.1:9"  # another port: refused outside development mode
    with pytest.raises(RecordingRefusedError):
        fetch(media_server, "good", "REdevmode", tmp_path, api_base_url=stand_in)
    path = fetch(media_server, "good", "REdevmode", tmp_path, api_base_url=stand_in, local_media=True)
    assert path.read_bytes() == GOOD_WAV

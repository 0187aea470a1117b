"""Download a voicemail recording from Twilio to local storage.

Twilio's ``RecordingUrl`` has no extension: appending ``.wav`` asks for 8 kHz
mono PCM.  With "Enforce HTTP Auth on Media URLs" on (recommended) the media
needs HTTP Basic auth with the Account SID and Auth Token.  The download is
idempotent: the file is named after the RecordingSid and written atomically,
so a retried job (status callbacks are at-least-once) finds it and stops.
"""

from __future__ import annotations

import os
import re
import struct
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

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

CHUNK_BYTES = 64 * 1024
MAX_BACKOFF_SECONDS = 30.0
# 429 is a 4xx but means "later", exactly what a retry does.
RETRY_STATUSES = frozenset({429})
_SID = re.compile(r"^[A-Za-z0-9]{2,64}$")
TWILIO_MEDIA_HOST = "api.twilio.com"
TWILIO_MEDIA_ORIGIN = "https://" + TWILIO_MEDIA_HOST
DEFAULT_PORTS = {"http": 80, "https": 443}


def recording_media_url(recording_url: str, extension: str = ".wav") -> str:
    """Append the media extension to Twilio's extensionless RecordingUrl (unless it has one)."""
    parts = urlsplit(recording_url)
    last = parts.path.rsplit("/", 1)[-1]
    if "." in last:
        return recording_url
    return urlunsplit(parts._replace(path=parts.path + extension))


def download_recording(
    url: str,
    dest_dir: Path,
    recording_sid: str,
    *,
    account_sid: str,
    auth_token: str,
    max_bytes: int,
    api_base_url: str = TWILIO_MEDIA_ORIGIN,
    local_media: bool = False,
    timeout: float = 15.0,
    retries: int = 3,
    backoff: float = 1.0,
    session: requests.Session | None = None,
) -> Path:
    """Download a recording to dest_dir/<RecordingSid>.<ext>; return the path.

    Retries ``retries`` times with exponential backoff (backoff, 2*backoff, ...)
    on 5xx, 429, timeouts and dropped connections; a 4xx fails at once.
    Refuses non-audio responses, bodies over ``max_bytes`` (without reading
    past the cap), empty bodies and audio whose header does not decode, and
    sends the credentials only to Twilio's media origins (``media_url_refusal``).
    """
    if not _SID.match(recording_sid):
        # The sid becomes a file name: nothing that could climb out of dest_dir.
        raise DownloadError(f"invalid RecordingSid {recording_sid!r}")
    media_url = recording_media_url(url)
    refusal = media_url_refusal(media_url, api_base_url, local_media=local_media)
    if refusal is not None:
        raise RecordingRefusedError(refusal)
    extension = Path(urlsplit(media_url).path).suffix.lower() or ".wav"
    dest_dir = Path(dest_dir)
    dest = dest_dir / f"{recording_sid}{extension}"
    if dest.is_file():
        try:
            check_recording(dest.read_bytes(), extension)
            return dest
        except CorruptRecordingError:
            pass  # a file we did not write (atomic writes never leave one): fetch again
    dest_dir.mkdir(parents=True, exist_ok=True)
    http = session or requests.Session()
    try:
        last_error: BaseException | None = None
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(min(backoff * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS))
            try:
                body = _fetch(http, media_url, (account_sid, auth_token), max_bytes, timeout)
            except _Retryable as error:
                last_error = error.__cause__ or error
                continue
            check_recording(body, extension)
            _write_atomically(dest, body)
            return dest
        raise RecordingUnavailableError(
            f"recording {recording_sid} not downloaded after {retries + 1} attempts: {last_error}"
        ) from last_error
    finally:
        if session is None:
            http.close()


class _Retryable(Exception):
    """Internal: this attempt failed in a way the next one may not."""


def _fetch(http: requests.Session, url: str, auth: tuple[str, str], max_bytes: int, timeout: float) -> bytes:
    try:
        response = http.get(url, auth=auth, stream=True, timeout=timeout)
    except (requests.Timeout, requests.ConnectionError) as error:
        raise _Retryable(str(error)) from error
    with response:
        status = response.status_code
        if status >= 500 or status in RETRY_STATUSES:
            raise _Retryable(f"HTTP {status}") from DownloadError(f"HTTP {status} from {url}")
        if status in (401, 403):
            raise RecordingAuthError(f"HTTP {status} from {url}: check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        if status == 404:
            raise RecordingNotFoundError(f"HTTP 404 from {url}: no such recording, or its media is not ready yet")
        if status >= 400:
            raise DownloadError(f"HTTP {status} from {url}")
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if not content_type.startswith("audio/"):
            raise NotAudioError(f"{url} answered {content_type or 'no Content-Type'}, not audio")
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise RecordingTooLargeError(f"{url} is {declared} bytes, over the {max_bytes}-byte limit")
        try:
            return b"".join(_capped(response.iter_content(CHUNK_BYTES), url, max_bytes))
        except (requests.Timeout, requests.ConnectionError) as error:
            raise _Retryable(str(error)) from error
        except requests.exceptions.ChunkedEncodingError as error:  # body cut short
            raise _Retryable(str(error)) from error


def _capped(chunks: Iterator[bytes], url: str, max_bytes: int) -> Iterator[bytes]:
    """Yield chunks, failing as soon as more than max_bytes have arrived."""
    received = 0
    for chunk in chunks:
        received += len(chunk)
        if received > max_bytes:
            # A missing or lying Content-Length must not let us read on.
            raise RecordingTooLargeError(f"{url} sent more than the {max_bytes}-byte limit")
        yield chunk


def check_recording(body: bytes, extension: str = ".wav") -> float | None:
    """Refuse empty or undecodable audio; return the WAV duration in seconds (None for MP3)."""
    if not body:
        raise EmptyRecordingError("the recording is empty (0 bytes)")
    if extension == ".mp3":
        # ID3 tag, or an MPEG audio frame sync (11 set bits).
        if body[:3] == b"ID3" or (len(body) > 1 and body[0] == 0xFF and body[1] & 0xE0 == 0xE0):
            return None
        raise CorruptRecordingError("the recording is not an MP3 stream")
    return wav_duration(body)


def wav_duration(body: bytes) -> float:
    """Parse a RIFF/WAVE header and return the duration; CorruptRecordingError if it does not add up."""
    if len(body) < 12 or body[:4] != b"RIFF" or body[8:12] != b"WAVE":
        raise CorruptRecordingError("the recording is not a RIFF/WAVE file")
    offset = 12
    byte_rate = 0
    while offset + 8 <= len(body):
        chunk_id, size = struct.unpack_from("<4sI", body, offset)
        payload = offset + 8
        if chunk_id == b"fmt ":
            if size < 16 or payload + 16 > len(body):
                raise CorruptRecordingError("the WAV fmt chunk is truncated")
            _format, channels, rate, byte_rate, _align, _bits = struct.unpack_from("<HHIIHH", body, payload)
            if channels < 1 or rate < 1 or byte_rate < 1:
                raise CorruptRecordingError(f"the WAV header is invalid ({channels} ch, {rate} Hz)")
        elif chunk_id == b"data":
            if not byte_rate:
                raise CorruptRecordingError("the WAV data chunk comes before its fmt chunk")
            # Streamed WAVs may declare 0 or 0xFFFFFFFF; count what actually arrived.
            available = len(body) - payload
            data_bytes = available if size in (0, 0xFFFFFFFF) else min(size, available)
            if data_bytes <= 0:
                raise CorruptRecordingError("the WAV file holds no samples")
            return data_bytes / byte_rate
        offset = payload + size + (size & 1)  # chunks are padded to even sizes
    raise CorruptRecordingError("the WAV file has no data chunk")


def _write_atomically(dest: Path, body: bytes) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over dest."""
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.stem}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def origin(url: str) -> str | None:
    """``url``'s origin as ``scheme://host:port``, the default port made explicit; None unless http(s) with a host.

    ``https://api.twilio.com`` and ``https://API.twilio.com:443/x`` have the same origin; ``:8443`` does not.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port  # raises on a port that is not a number from 0 to 65535
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if scheme not in DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal keeps its brackets
    return f"{scheme}://{host}:{port if port is not None else DEFAULT_PORTS[scheme]}"


def media_url_refusal(url: str, api_base_url: str, *, local_media: bool = False) -> str | None:
    """Why the credentials must not be sent to ``url``, or None when it is on one of Twilio's media origins.

    The origins are https://api.twilio.com and that of TWILIO_API_BASE_URL, compared whole (scheme, host
    and port, the default port explicit or not): the Account SID and Auth Token go as Basic auth to
    exactly those, never to another port or scheme of the same host. ``local_media`` (development mode
    only, whose TWILIO_API_BASE_URL is the local stand-in and whose credentials are the stand-in's own)
    also accepts plain HTTP on any port of this machine, where the call simulator serves its recordings.
    """
    allowed = sorted({o for o in (origin(TWILIO_MEDIA_ORIGIN), origin(api_base_url)) if o is not None})
    parts = urlsplit(url.strip())
    found = origin(url)
    if found is not None and found in allowed:
        return None
    if local_media and found is not None and found.startswith(("http://127.0.0.1:", "http://localhost:")):
        return None
    if parts.scheme.lower() == "http" and found is not None and found.endswith(":80"):
        if origin(f"https://{parts.hostname}") in allowed:
            return f"refusing to send credentials to http://{parts.hostname}: use https"
    shown = found or f"{parts.scheme}://{parts.hostname or '?'}"
    return f"RecordingUrl {shown} is not one of Twilio's media hosts ({', '.join(allowed)})"

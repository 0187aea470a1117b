"""The job that fetches a text's pictures (MMS media) from Twilio onto its message, as attachments.

The Account SID and Auth Token go only to Twilio's media origins (``transcription.download.media_url_refusal``,
the rule recording downloads follow); Twilio's answer may redirect to its media store, and ``requests`` drops
the credentials when a redirect leaves the host. The mail attachment caps hold: at most
``MAIL_ATTACHMENT_MAX_COUNT`` files per message and ``MAIL_ATTACHMENT_MAX_BYTES`` each (never read past it).
Every file that is not stored is listed on the message with the reason, and the ticket's audit log says so:
a failed fetch is never silent. Idempotent: a message that has its attachments is not fetched again.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
from rq import get_current_job

import runtime as rt
from ticketing import audit, outbox, texts
from ticketing.db import transaction
from ticketing.models import MailAttachment, TicketMessage
from transcription.download import media_url_refusal

log = logging.getLogger(__name__)
WORKER = "support line"
CHUNK_BYTES = 64 * 1024
TIMEOUT_SECONDS = 15.0
_SAFE = re.compile(r"[^A-Za-z0-9_-]+")


class _Transient(Exception):
    """This fetch may work when tried again (5xx, 429, a timeout, a dropped connection)."""


@dataclass
class _Outcome:
    filename: str
    content_type: str
    size: int = 0
    path: str | None = None
    note: str | None = None


def fetch_text_media(message: int, sid: str, media: list[list[str]]) -> str:
    """Fetch a text's media (``[url, content type]`` pairs) and attach them to its stored message."""
    runtime = rt.current()
    settings = runtime.settings
    key = f"{texts.MEDIA}:{sid}"
    with runtime.sessions() as s:
        row = s.get(TicketMessage, message)
        done = row is None or bool(row.attachments)
    if done:
        with transaction(runtime.sessions) as s:
            outbox.complete(s, key, runtime.now())
        return "already fetched" if row is not None else "unknown message"
    folder = Path(settings.recordings_dir) / "sms" / str(message)
    cap = settings.mail_attachment_max_count
    outcomes: list[_Outcome] = []
    transient: list[str] = []
    for i, pair in enumerate(media[:cap]):
        url, declared = (list(pair) + ["", ""])[:2]
        outcome = _fetch_one(runtime, str(url), str(declared), i, folder)
        if outcome.note is not None and outcome.note.startswith("not fetched (will retry)"):
            transient.append(outcome.note)
        outcomes.append(outcome)
    if transient and _retries_left() > 0:
        raise RuntimeError("; ".join(transient))  # RQ tries the whole message again, with backoff
    if len(media) > cap:
        outcomes.append(
            _Outcome(
                filename=f"{len(media) - cap} more pictures",
                content_type="application/octet-stream",
                note=f"not stored: over MAIL_ATTACHMENT_MAX_COUNT ({cap} per message)",
            )
        )
    failed = [o for o in outcomes if o.path is None]
    with transaction(runtime.sessions) as s:
        row = s.get(TicketMessage, message)
        if row is None:
            outbox.complete(s, key, runtime.now())
            return "unknown message"
        for o in outcomes:
            note = o.note.replace("not fetched (will retry)", "not fetched") if o.note else None
            row.attachments.append(
                MailAttachment(
                    filename=o.filename[:255],
                    content_type=o.content_type[:120],
                    size=o.size,
                    path=o.path,
                    note=note[:300] if note else None,
                )
            )
        stored = len(outcomes) - len(failed)
        if stored:
            audit.audit(
                s, row.ticket, actor=WORKER, action="sms media stored", now=runtime.now(), detail={"files": stored}
            )
        if failed:
            reasons = "; ".join(f"{o.filename}: {o.note}" for o in failed)
            audit.audit(
                s,
                row.ticket,
                actor=WORKER,
                action="sms media not stored",
                now=runtime.now(),
                detail={"files": len(failed)},
                reason=reasons.replace("not fetched (will retry)", "not fetched")[:1000],
            )
        outbox.complete(s, key, runtime.now())
    if failed:
        log.warning("text %s: %d of its media not stored", sid, len(failed))
    return f"{len(outcomes) - len(failed)} stored, {len(failed)} not"


def _fetch_one(runtime: rt.Runtime, url: str, declared: str, i: int, folder: Path) -> _Outcome:
    settings = runtime.settings
    last = _SAFE.sub("_", urlsplit(url).path.rsplit("/", 1)[-1])[:64] or f"media-{i}"
    outcome = _Outcome(filename=last, content_type=(declared.strip() or "application/octet-stream"))
    refusal = media_url_refusal(url, settings.twilio_api_base_url, local_media=settings.dev_mode)
    if refusal is not None:
        outcome.note = f"not fetched: {refusal.replace('RecordingUrl', 'MediaUrl')}"
        return outcome
    cap = settings.mail_attachment_max_bytes
    try:
        body, content_type = _download(url, (settings.twilio_account_sid, settings.twilio_auth_token), cap)
    except _Transient as exc:
        outcome.note = f"not fetched (will retry): {exc}"
        return outcome
    except _Refused as exc:
        outcome.note = f"not fetched: {exc}"
        return outcome
    except _TooBig as exc:
        outcome.size = exc.size
        outcome.note = f"not stored: over the {cap}-byte cap (MAIL_ATTACHMENT_MAX_BYTES)"
        return outcome
    outcome.content_type = content_type or outcome.content_type
    extension = mimetypes.guess_extension(outcome.content_type.split(";")[0].strip()) or ""
    outcome.filename = f"{last}{extension}"
    outcome.size = len(body)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{i}-{outcome.filename}"
    _write_atomically(path, body)
    outcome.path = str(path)
    return outcome


class _Refused(Exception):
    """Twilio will not give this file (4xx): trying again does not help."""


class _TooBig(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"{size} bytes")
        self.size = size


def _download(url: str, auth: tuple[str, str], cap: int) -> tuple[bytes, str]:
    try:
        response = requests.get(url, auth=auth, stream=True, timeout=TIMEOUT_SECONDS)
    except (requests.Timeout, requests.ConnectionError) as exc:
        raise _Transient(f"{type(exc).__name__}") from exc
    with response:
        status = response.status_code
        if status >= 500 or status == 429:
            raise _Transient(f"HTTP {status}")
        if status >= 400:
            raise _Refused(f"HTTP {status} from Twilio")
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise _TooBig(int(declared))
        received = bytearray()
        try:
            for chunk in response.iter_content(CHUNK_BYTES):
                received += chunk
                if len(received) > cap:
                    raise _TooBig(len(received))  # a missing or lying Content-Length must not let us read on
        except (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise _Transient(f"{type(exc).__name__}") from exc
        if not received:
            raise _Refused("the file is empty")
        return bytes(received), response.headers.get("Content-Type", "").split(";")[0].strip().lower()


def _write_atomically(dest: Path, body: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.stem}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _retries_left() -> int:
    job = get_current_job()
    return int(getattr(job, "retries_left", 0) or 0) if job is not None else 0

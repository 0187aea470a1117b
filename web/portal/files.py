"""Files on portal tickets: the upload size caps, reading and storing uploads, sending a ticket's files back."""

from __future__ import annotations

import errno
import hashlib
import logging
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Response, abort, request, send_file
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage

from runtime import Runtime
from runtime.web import rt
from ticketing import conversation, portal
from ticketing.errors import UnknownTicket
from ticketing.models import Ticket, TicketAttachment
from ticketing.portal import PortalViewer
from ticketing.text import one_line
from web.portal.auth import blueprint, viewer

IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")
log = logging.getLogger(__name__)


# one read plus the undecoded tail it keeps (up to a boundary's length) exceeds max_form_memory_size, so the
# app's 64 KiB form limit refused most files over a few hundred KiB. These forms allow a read, a boundary and
# their longest text field; every other form keeps the small limit.
UPLOAD_ENDPOINTS = frozenset({"portal.new_ticket", "portal.reply"})
UPLOAD_FORM_MEMORY_BYTES = 256 * 1024
UPLOAD_FORM_FIELDS = 20  # the new-ticket form's fields, with room to spare (files are counted on top)


@blueprint.url_value_preprocessor
def cap_request_size(endpoint: str | None, _values: dict[str, Any] | None) -> None:
    """No portal request body larger than its files allow (checked before CSRF reads the form)."""
    s = rt().settings
    request.max_content_length = s.portal_attachment_max_files * s.portal_attachment_max_bytes + 256 * 1024
    if endpoint in UPLOAD_ENDPOINTS:
        request.max_form_memory_size = UPLOAD_FORM_MEMORY_BYTES
        request.max_form_parts = UPLOAD_FORM_FIELDS + s.portal_attachment_max_files


@contextmanager
def _removing_on_failure(written: list[Path]) -> Iterator[None]:
    """Files written for a request whose transaction then failed would belong to nothing: remove them."""
    try:
        yield
    except BaseException:
        remove_files(written)
        raise


@dataclass(frozen=True)
class Upload:
    """A file read from the form, within the size cap."""

    filename: str
    content_type: str
    data: bytes


def _uploads(runtime: Runtime) -> list[Upload]:
    cap = runtime.settings.portal_attachment_max_bytes
    files: list[FileStorage] = [f for f in request.files.getlist("attachments") if f and f.filename]
    if len(files) > runtime.settings.portal_attachment_max_files:
        raise ValueError(f"Attach at most {runtime.settings.portal_attachment_max_files} files at a time.")
    out = []
    for f in files:
        data = f.stream.read(cap + 1)
        if len(data) > cap:
            raise ValueError(f"{clean_filename(f.filename or '')} is larger than {cap // (1024 * 1024)} MB.")
        if not data:
            raise ValueError(f"{clean_filename(f.filename or '')} is empty (0 bytes): leave it out or attach another.")
        out.append(Upload(clean_filename(f.filename or ""), (f.mimetype or "application/octet-stream")[:100], data))
    return out


def _with_files_note(error: str) -> str:
    """A refused form keeps what was typed, but no browser keeps chosen files: say so, or they are lost unseen."""
    return f"{error} Nothing was sent: please choose your files again." if _files_chosen() else error


def _files_chosen() -> bool:
    return any(f and f.filename for f in request.files.getlist("attachments"))


def clean_filename(name: str) -> str:
    """A file name safe to show and to send back: no folders, only plain characters."""
    base = Path(name.replace("\\", "/")).name
    cleaned = _SAFE_NAME.sub("_", base).strip(" .") or "file"
    return cleaned[:120]


def _store_files(
    session: Any, ticket: Any, files: list[Upload], runtime: Runtime, me: PortalViewer, written: list[Path]
) -> str | None:
    """Write the files beside the recordings (RECORDINGS_DIR/attachments/<ticket>/) and record them on the ticket.

    All or none: when a file cannot be written (a full disk) every file of this request is removed, none is
    recorded, and the reason is returned, so the caller keeps the text and says which part failed.
    ``written`` collects the paths, for the caller to remove should its transaction fail after this.
    """
    if not files:
        return None
    root = Path(runtime.settings.recordings_dir)
    folder = root / "attachments" / str(ticket.number)
    stored: list[tuple[Upload, Path]] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for upload in files:
            path = folder / f"{secrets.token_hex(8)}-{upload.filename}"
            written.append(path)  # before the write: a write cut short leaves a partial file to remove
            path.write_bytes(upload.data)
            stored.append((upload, path))
    except OSError as exc:
        log.error("attachments of ticket %s could not be stored: %s", ticket.number, exc)
        remove_files(written)
        return "disk full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "storage error"
    for upload, path in stored:
        portal.add_attachment(
            session,
            ticket,
            filename=upload.filename,
            content_type=upload.content_type,
            size=len(upload.data),
            sha256=hashlib.sha256(upload.data).hexdigest(),
            path=str(path.relative_to(root)),
            now=runtime.now(),
            contact_id=me.contact_id,
        )
    return None


def remove_files(paths: list[Path]) -> None:
    """Remove files written for a request that did not complete (partial or orphaned), as far as possible."""
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.error("could not remove %s: %s", path, exc)
    paths.clear()


def attachment_response(row: TicketAttachment | conversation.ClientFile, root: Path) -> Response:
    """Send a stored attachment: images inline, anything else as a download; never sniffed, never cached."""
    from web.console.shared import recording_file

    path = recording_file(row.path, root)
    if path is None:
        abort(404)
    suffix = Path(row.filename).suffix.lower()
    mimetype = IMAGE_TYPES.get(suffix, "application/octet-stream")
    response = send_file(
        path,
        mimetype=mimetype,
        as_attachment=mimetype not in IMAGE_TYPES.values(),
        download_name=one_line(row.filename) or "file",  # an emailed name may carry a line break
        max_age=0,
    )
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@blueprint.get("/tickets/<int:number>/attachments/<int:attachment_id>")
def attachment(number: int, attachment_id: int) -> Response:
    """An attachment of a ticket the contact may see."""

    def find(s: Session, t: Ticket) -> TicketAttachment | None:
        row = s.get(TicketAttachment, attachment_id)
        return row if row is not None and row.ticket_id == t.id else None

    return _ticket_file(number, find)


@blueprint.get("/tickets/<int:number>/email-files/<int:attachment_id>")
def email_attachment(number: int, attachment_id: int) -> Response:
    """A file the client sent by email on a ticket the contact may see (a stored one)."""

    def find(s: Session, t: Ticket) -> conversation.ClientFile | None:
        row = conversation.client_file(s, t, "email", attachment_id)
        return row if row is not None and row.path is not None else None

    return _ticket_file(number, find)


def _ticket_file(
    number: int, find: Callable[[Session, Ticket], TicketAttachment | conversation.ClientFile | None]
) -> Response:
    """Send the file ``find`` picks on a ticket the contact may see; 404 for any other ticket or file."""
    runtime = rt()
    with runtime.sessions() as s:
        try:
            t = portal.ticket_for(s, viewer(), number)
        except UnknownTicket:
            abort(404)
        row = find(s, t)
        if row is None:
            abort(404)
    return attachment_response(row, runtime.settings.recordings_dir)

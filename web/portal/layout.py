"""What every portal page shows and sends: the security headers, the error pages, the page context."""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, g, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import InternalError, OperationalError

from runtime.web import rt
from ticketing import outages
from web.portal import present
from web.portal.auth import blueprint
from web.security import page_headers

log = logging.getLogger(__name__)


@blueprint.after_request
def portal_headers(response: Response) -> Response:
    """The console's security headers, on every portal response."""
    return page_headers(response, "portal.static")


@blueprint.errorhandler(CSRFError)
def csrf_failed(error: CSRFError) -> tuple[str, int]:
    """A form without a valid CSRF token changes nothing."""
    return render_template(
        "portal/message.html",
        title="Please try again",
        message="This form has expired or did not come from the portal. Go back, reload the page and try again.",
    ), 400


@blueprint.errorhandler(404)
def not_found(_error: Exception) -> tuple[str, int]:
    """Nothing here, or nothing this contact may see: the same answer."""
    return render_template(
        "portal/message.html", title="Not found", message="There is no ticket or page at this address for you."
    ), 404


@blueprint.errorhandler(413)
def too_large(_error: Exception) -> tuple[str, int]:
    """An upload over the size cap."""
    mb = rt().settings.portal_attachment_max_bytes // (1024 * 1024)
    return render_template(
        "portal/message.html",
        title="File too large",
        message=f"Attachments are at most {mb} MB each. Go back and attach a smaller file.",
    ), 413


@blueprint.errorhandler(OperationalError)
@blueprint.errorhandler(InternalError)
def not_stored(error: Exception) -> tuple[str, int, dict[str, str]]:
    """The database refused to store the request (a full disk, a read-only server) or did not answer: say so,
    and give the support number (a P1 must not end at an error page)."""
    log.error("portal %s %s failed on the database: %s", request.method, request.path, error)
    number = present.phone_text(rt().settings.support_number)
    if request.method == "GET":
        title, what = "This page is not available", "Our system is not working right now, so this page cannot be shown."
    else:
        title, what = (
            "We could not save this",
            "Our system cannot store anything right now, so nothing you sent was saved.",
        )
    html = render_template(
        "portal/message.html",
        title=title,
        message=f"{what} Please call us at {number}: we answer the phone as usual. If it is not urgent, try again later.",
        kept=_typed_text(),
    )
    return html, 503, {"Retry-After": "120"}


def _typed_text() -> list[tuple[str, str]]:
    """What the person typed into the form that could not be saved, so they can copy it."""
    labels = {"summary": "Summary", "description": "Description", "text": "Your message"}
    return [(label, request.form[key].strip()) for key, label in labels.items() if request.form.get(key, "").strip()]


@blueprint.app_context_processor
def portal_context() -> dict[str, Any]:
    """What every portal page shows."""
    runtime = rt()
    context: dict[str, Any] = {}
    if request.blueprint == blueprint.name:
        context["portal_viewer"] = getattr(g, "portal_viewer", None)
        context["company"] = runtime.settings.company_name
        context["support_number"] = present.phone_text(runtime.settings.support_number)
        viewer = context["portal_viewer"]
        if viewer is not None:  # the known incidents the contact's client is affected by: the banner
            with runtime.sessions() as s:
                context["known_incidents"] = [i.message for i in outages.for_client(s, viewer.client_id, runtime.now())]
    return context

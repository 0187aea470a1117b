"""Twilio request signatures, checked against the public URL Twilio called."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from flask import Response, request
from twilio.request_validator import RequestValidator

from runtime.web import rt

log = logging.getLogger(__name__)


def public_url() -> str:
    """The URL Twilio signed: PUBLIC_BASE_URL plus path and query (correct behind a TLS proxy)."""
    base = rt().settings.public_base_url
    query = request.query_string.decode("latin-1")
    return base + request.path + (f"?{query}" if query else "")


def signature_is_valid() -> bool:
    """True when X-Twilio-Signature matches this request (or checking is switched off)."""
    settings = rt().settings
    if not settings.validate_twilio_signature:
        return True
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not settings.twilio_auth_token:
        return False
    # request.form itself, so repeated keys are signed as Twilio signed them.
    return bool(RequestValidator(settings.twilio_auth_token).validate(public_url(), request.form, signature))


def twilio_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse with 403, doing nothing else, any request Twilio did not sign."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not signature_is_valid():
            log.warning("refused unsigned or badly signed request to %s", request.path)
            return Response("invalid Twilio signature\n", status=403, mimetype="text/plain")
        return view(*args, **kwargs)

    return wrapper

"""What every Twilio webhook module shares: the TwiML response and the never-an-application-error guard."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from flask import Response, request
from sqlalchemy.exc import SQLAlchemyError
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from ticketing.errors import DomainError

log = logging.getLogger(__name__)


def twiml_response(r: VoiceResponse | MessagingResponse) -> Response:
    """TwiML as an HTTP response."""
    return Response(str(r), mimetype="text/xml")


def answering_safely(
    fallback: Callable[[], VoiceResponse],
) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """A view decorator: bad input or a database error gets ``fallback()``'s TwiML, never Twilio's 'application error'."""

    def decorate(view: Callable[..., Response]) -> Callable[..., Response]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Response:
            try:
                return view(*args, **kwargs)
            except (DomainError, SQLAlchemyError, ValueError, KeyError, OverflowError) as exc:
                # OverflowError: a number too big for the database (SQLite), e.g. thirty nines in a query string.
                log.exception("webhook %s failed: %s", request.path, type(exc).__name__)
                return twiml_response(fallback())

        return wrapper

    return decorate

"""Inbound SMS to the support number."""

from __future__ import annotations

from collections.abc import Mapping

from twilio.twiml.messaging_response import MessagingResponse

from workers.runtime import Runtime


def handle_inbound_sms(form: Mapping[str, str], runtime: Runtime) -> MessagingResponse:
    """Answer a text: the support line takes requests by phone or the client portal."""
    r = MessagingResponse()
    r.message(
        f"{runtime.settings.company_name} support: text messages are not monitored for new requests. "
        "Please call the support line (press 2 for critical issues) or use the client portal."
    )
    return r

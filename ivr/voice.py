"""The support line's Twilio Voice webhooks: menu, coordinator ring, voicemail, status line.

Public URLs for the Twilio console: POST /twilio/voice (a call comes in),
POST /twilio/voice/fallback (primary handler fails), POST /twilio/voice/status
(call status changes, optional) and POST /twilio/sms. Every other URL is named
by the TwiML itself. Webhooks answer from the database alone: jobs go to the
outbox and are handed to Redis after the response.

One module per step of the call: ``greeting`` (the menu), ``coordinator`` (the ring),
``voicemail`` (the message and its callbacks), ``callback`` (the number to call back), ``ticket_status``
(press 3); ``call`` holds
what they share, and the blueprint they all add their routes to.
"""

from __future__ import annotations

from flask import Response, request

from ivr import callback, coordinator, greeting, ticket_status, voicemail  # noqa: F401 - each adds its routes
from ivr.call import blueprint
from ivr.security import twilio_only
from ivr.webhooks import twiml_response
from runtime.web import rt

__all__ = ["blueprint"]


@blueprint.post("/sms")
@twilio_only
def sms() -> Response:
    """Inbound SMS: page acknowledgements are handled by paging; anything else gets directions."""
    from ivr.sms import handle_inbound_sms

    return twiml_response(handle_inbound_sms(request.form, rt()))

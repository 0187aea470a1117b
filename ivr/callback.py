"""The number to call back: the caller confirms the caller ID (by hanging up) or keys another, after the
message; a caller whose number is withheld or no phone number is asked before the message too.

Keyed digits are checked with ``phonenumbers`` (``ticketing.phone.keyed_number``: US numbers by default, a
star before an extension) and read back once. Digits that are no phone number: said so once and asked once
more, then the caller ID stays. A P1's page never waits for any of this: it was requested when the caller
pressed 2. A callback for a call with no ticket changes nothing.
"""

from __future__ import annotations

from typing import Any

from flask import Response, request

from ivr import call, twiml
from ivr.voicemail import _voicemail, message_prompt
from ivr.webhooks import twiml_response
from runtime.web import rt
from ticketing import phone, voicemail

BEFORE_MESSAGE = "message"  # ``then``: the number was asked before the message, which comes next


@call.step("/voice/callback-number")
def callback_number() -> Response:
    """Digits keyed (followed by pound) for the number to call back."""
    sid = call.call_sid()
    attempt = call._attempt()
    before_message = request.args.get("then") == BEFORE_MESSAGE
    critical = request.args.get("critical") == "1"
    digits = request.form.get("Digits") or ""
    caller = call.caller()
    if before_message and digits == "2" and not critical:
        # The key for a critical issue, pressed while being asked for a number: the P1 it asks for.
        return _voicemail(sid, critical=True, offer_key=False, ask_number=False)
    if not digits and caller is None:
        # Pound alone, with no number to confirm: on to the message, or goodbye.
        if before_message:
            return message_prompt(critical=critical, offer_key=not critical)
        return twiml_response(twiml.goodbye(call._("Goodbye."), voice=call.voice()))
    keyed = phone.keyed_number(digits) if digits else caller
    origin = phone.CONFIRMED if keyed is not None and keyed == caller else phone.KEYED
    runtime = rt()

    def work(s: Any) -> bool:
        t = voicemail.ticket_for_call(s, sid)
        if t is None:
            return False
        detail = {"digits": phone.mask(digits) if digits else None, "valid": keyed is not None, "attempt": attempt}
        voicemail.log_call_event(s, sid, "callback number", runtime.now(), **detail)
        if keyed is not None:
            voicemail.record_callback_number(s, t, keyed, origin=origin, now=runtime.now())
        return True

    if not call._with_retry(work):
        return twiml_response(twiml.goodbye(call._("Goodbye."), voice=call.voice()))
    voice = call.voice()
    if keyed is None and attempt == 1:
        again = call.url("callback-number", then=request.args.get("then"), critical=int(critical), attempt=2)
        if before_message:
            return message_prompt(
                critical=critical,
                offer_key=not critical,
                preface=call._("Sorry, that is not a phone number we can call."),
                ask_callback=again,
                ask_again=True,
            )
        return twiml_response(twiml.callback_again(action=again, voice=voice))
    number = keyed or caller
    said = twiml.callback_kept(
        number=phone.spoken_number(number) if number else None,
        extension=phone.spoken_extension(number),
        keyed=keyed is not None and bool(digits),
        invalid=keyed is None,
        voice=voice,
    )
    if before_message:
        return message_prompt(critical=critical, offer_key=not critical, preface=said)
    return twiml_response(twiml.goodbye(f"{said} {call._('Goodbye.')}".strip(), voice=voice))

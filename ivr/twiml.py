"""TwiML for each step of the call, built with the twilio package (small pure functions)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

VOICE = {"voice": "Polly.Joanna", "language": "en-US"}


def _say(node: VoiceResponse | Gather, text: str) -> None:
    node.say(text, **VOICE)


def menu(
    *, company: str, business_hours: bool, holiday: str | None, action: str, no_input: str, apology: str | None = None
) -> VoiceResponse:
    """Greeting, recording notice and the menu for business hours or after hours."""
    r = VoiceResponse()
    gather = r.gather(num_digits=1, action=action, method="POST", timeout=5, action_on_empty_result=False)
    if apology:
        _say(gather, apology)
    else:
        _say(
            gather,
            f"Thank you for calling {company} support. Calls are recorded so we can create and track your ticket.",
        )
    if business_hours:
        _say(
            gather,
            "To speak with a service coordinator, press 1 or stay on the line. "
            "For an urgent, critical issue, press 2. "
            "To hear the status of an existing ticket, press 3.",
        )
    else:
        closed = f"Our office is closed today for {holiday}." if holiday else "Our office is now closed."
        _say(
            gather,
            f"{closed} Business hours are 8 A M to 5 P M Pacific time, Monday through Friday. "
            "For a critical emergency, press 2 and our after-hours team will be paged right away. "
            "To leave a message for the next business day, press 1 or stay on the line. "
            "To hear the status of an existing ticket, press 3.",
        )
    r.redirect(no_input, method="POST")
    return r


def not_an_option(redirect_to: str) -> VoiceResponse:
    """A wrong key at the menu: say so and play the menu again."""
    r = VoiceResponse()
    _say(r, "Sorry, that is not one of the options.")
    r.redirect(redirect_to, method="POST")
    return r


def ring_coordinators(
    targets: Sequence[str], *, screen_url: Callable[[str], str], action: str, timeout: int, caller_id: str | None
) -> VoiceResponse:
    """Ring every coordinator at once; each hears a screen and must press 1 to take the call."""
    r = VoiceResponse()
    _say(r, "Please hold while we connect you to a service coordinator.")
    dial = Dial(action=action, method="POST", timeout=timeout, answer_on_bridge=True, caller_id=caller_id)
    for target in targets:
        if target.startswith("client:"):
            dial.client(target[len("client:") :], url=screen_url(target), method="POST")
        elif target.startswith("sip:"):
            dial.sip(target, url=screen_url(target), method="POST")
        else:
            dial.number(target, url=screen_url(target), method="POST")
    r.append(dial)
    return r


def screen(*, caller_spoken: str, accept_url: str) -> VoiceResponse:
    """What the coordinator hears on answering: who calls, and press 1 to accept."""
    r = VoiceResponse()
    gather = r.gather(num_digits=1, action=accept_url, method="POST", timeout=8)
    _say(gather, f"Support call from {caller_spoken}. Press 1 to accept.")
    # No key: a voicemail box or nobody there. Hanging up this leg leaves the caller to voicemail.
    r.hangup()
    return r


def accepted() -> VoiceResponse:
    """The coordinator pressed 1: an empty answer bridges the call."""
    r = VoiceResponse()
    _say(r, "Connecting.")
    return r


def voicemail(
    *,
    critical: bool,
    key_action: str | None,
    record_action: str,
    recording_status: str,
    no_message: str,
    max_length: int,
    business_hours: bool,
    intro: str | None = None,
) -> VoiceResponse:
    """The voicemail prompt and the recording; in the prompt, 2 makes the message P1."""
    r = VoiceResponse()
    if critical:
        prompt = (
            "Your message will be submitted as a P 1 critical ticket and our "
            + ("emergency response team" if business_hours else "after-hours support team")
            + " will be notified right away. Please describe the problem, your name, company and a callback number after the tone."
        )
    else:
        lead = intro or (
            "Our service coordinator is on another call."
            if business_hours
            else "Please leave a message and we will respond on the next business day."
        )
        prompt = (
            f"{lead} Please leave a detailed message after the tone, with your name, company, and a callback number. "
            "A ticket will be created automatically. "
            "For an urgent issue, press 2 now, or at any time during your message, to submit it as a P 1 critical ticket. "
            "Press pound when you are finished."
        )
    if key_action is not None:
        gather = r.gather(num_digits=1, action=key_action, method="POST", timeout=1, action_on_empty_result=False)
        _say(gather, prompt)
    else:
        _say(r, prompt)
    r.record(
        action=record_action,
        method="POST",
        max_length=max_length,
        timeout=10,
        # '#' ends the message; '2' ends it too and is seen by the action as Digits=2, so
        # a caller who presses 2 while speaking is not silently ignored.
        finish_on_key="#" if critical else "#2",
        play_beep=True,
        trim="trim-silence",
        recording_status_callback=recording_status,
        recording_status_callback_method="POST",
        recording_status_callback_event="completed absent",
    )
    # <Record> falls through here when the caller said nothing.
    r.redirect(no_message, method="POST")
    return r


def ticket_created(
    *, ticket_spoken: str, critical: bool, business_hours: bool, sms: bool, no_message: bool = False
) -> VoiceResponse:
    """Read the ticket number back, digit by digit, and say what happens next."""
    r = VoiceResponse()
    if no_message:
        _say(r, "We did not receive a message, so we have created a ticket to call you back.")
    else:
        _say(r, "Thank you. Your message has been received.")
    _say(r, f"Your ticket number is {ticket_spoken}. Again, your ticket number is {ticket_spoken}.")
    if critical:
        team = "emergency response team" if business_hours else "after-hours on-call engineer"
        _say(r, f"This is a P 1 critical ticket. Our {team} is being notified now.")
    if sms:
        _say(r, "You will also receive a text message with your ticket number.")
    _say(r, "Goodbye.")
    r.hangup()
    return r


def status_prompt(*, action: str, retry: bool) -> VoiceResponse:
    """Ask for a ticket number followed by pound."""
    r = VoiceResponse()
    gather = r.gather(
        input="dtmf", finish_on_key="#", timeout=10, action=action, method="POST", action_on_empty_result=True
    )
    if retry:
        _say(gather, "We could not find that ticket. Please enter your ticket number again, followed by the pound key.")
    else:
        _say(gather, "Please enter your ticket number, followed by the pound key.")
    r.redirect(action, method="POST")
    return r


def status_answer(text: str, *, menu_url: str) -> VoiceResponse:
    """Read a ticket's status, then offer the menu again."""
    r = VoiceResponse()
    _say(r, text)
    gather = r.gather(num_digits=1, action=menu_url, method="POST", timeout=5, action_on_empty_result=False)
    _say(gather, "To return to the main menu, press 9. Otherwise, thank you for calling. Goodbye.")
    r.hangup()
    return r


def goodbye(text: str) -> VoiceResponse:
    """Say something and end the call."""
    r = VoiceResponse()
    _say(r, text)
    r.hangup()
    return r


def call_handled() -> VoiceResponse:
    """The coordinator took the call; nothing more to do when it ends."""
    r = VoiceResponse()
    r.hangup()
    return r

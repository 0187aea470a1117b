"""TwiML for each step of the call, built with the twilio package (small pure functions).

Every prompt is written in English inside ``_()`` and said in the call's language: ``voice`` names the
language and Twilio voice, and ``languages/<code>.po`` the translation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from languages import N_, SOURCE, CallLanguage, Translate, translator

# TRANSLATORS: said in your language to callers of the English line, right after the recording notice:
# name your language, e.g. "Para español, oprima {key}."
OFFER = N_("To continue in this language, press {key}.")


@dataclass(frozen=True)
class Voice:
    """How the call speaks: the catalogue to say prompts from, and Twilio's language and voice for them."""

    code: str = SOURCE
    language: str = "en-US"
    voice: str = "Polly.Joanna"

    @classmethod
    def of(cls, language: CallLanguage) -> Voice:
        return cls(code=language.code, language=language.say_language, voice=language.voice)

    @property
    def _(self) -> Translate:
        return translator(self.code)

    def say(self, node: VoiceResponse | Gather, text: str) -> None:
        node.say(text, voice=self.voice, language=self.language)


ENGLISH = Voice()
VOICE = {"voice": ENGLISH.voice, "language": ENGLISH.language}


def menu(
    *,
    company: str,
    business_hours: bool,
    holiday: str | None,
    action: str,
    no_input: str,
    apology: str | None = None,
    voice: Voice = ENGLISH,
    offer: CallLanguage | None = None,
) -> VoiceResponse:
    """Greeting, recording notice, the language offer and the menu for business hours or after hours.

    ``offer``: the other language the caller can switch to, offered in that language right after the
    recording notice ("Para español, oprima 9"); in a call already switched, the way back to English.
    """
    _ = voice._
    r = VoiceResponse()
    gather = r.gather(num_digits=1, action=action, method="POST", timeout=5, action_on_empty_result=False)
    if apology:
        voice.say(gather, apology)
    else:
        voice.say(
            gather,
            _(
                "Thank you for calling {company} support. Calls are recorded so we can create and track your ticket.",
                company=company,
            ),
        )
    if offer is not None and voice.code == SOURCE:
        Voice.of(offer).say(gather, translator(offer.code)(OFFER, key=offer.key))
    elif offer is not None:
        ENGLISH.say(gather, f"For English, press {offer.key}.")
    if business_hours:
        voice.say(
            gather,
            _(
                "To speak with a service coordinator, press 1 or stay on the line. "
                "For an urgent, critical issue, press 2. "
                "To hear the status of an existing ticket, press 3."
            ),
        )
    else:
        if holiday:
            closed = _("Our office is closed today for {holiday}.", holiday=holiday)
        else:
            closed = _("Our office is now closed.")
        voice.say(
            gather,
            closed
            + " "
            + _(
                "Business hours are 8 A M to 5 P M Pacific time, Monday through Friday. "
                "For a critical emergency, press 2 and our after-hours team will be paged right away. "
                "To leave a message for the next business day, press 1 or stay on the line. "
                "To hear the status of an existing ticket, press 3."
            ),
        )
    r.redirect(no_input, method="POST")
    return r


def not_an_option(redirect_to: str, *, voice: Voice = ENGLISH) -> VoiceResponse:
    """A wrong key at the menu: say so and play the menu again."""
    r = VoiceResponse()
    voice.say(r, voice._("Sorry, that is not one of the options."))
    r.redirect(redirect_to, method="POST")
    return r


def ring_coordinators(
    targets: Sequence[str],
    *,
    screen_url: Callable[[str], str],
    action: str,
    timeout: int,
    caller_id: str | None,
    voice: Voice = ENGLISH,
) -> VoiceResponse:
    """Ring every coordinator at once; each hears a screen and must press 1 to take the call."""
    r = VoiceResponse()
    voice.say(r, voice._("Please hold while we connect you to a service coordinator."))
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


def screen(*, caller_spoken: str, accept_url: str, language_name: str | None = None) -> VoiceResponse:
    """What the coordinator hears on answering (always in English): who calls, in which language, press 1."""
    r = VoiceResponse()
    gather = r.gather(num_digits=1, action=accept_url, method="POST", timeout=8)
    if language_name:
        ENGLISH.say(gather, f"{language_name}-speaking caller.")
    ENGLISH.say(gather, f"Support call from {caller_spoken}. Press 1 to accept.")
    # No key: a voicemail box or nobody there. Hanging up this leg leaves the caller to voicemail.
    r.hangup()
    return r


def accepted() -> VoiceResponse:
    """The coordinator pressed 1: an empty answer bridges the call."""
    r = VoiceResponse()
    ENGLISH.say(r, "Connecting.")
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
    voice: Voice = ENGLISH,
    ask_callback: str | None = None,
    preface: str | None = None,
    ask_again: bool = False,
) -> VoiceResponse:
    """The voicemail prompt and the recording; in the prompt, 2 makes the message P1.

    ``intro`` and ``preface`` are said as given (already in the call's language); ``preface`` first, before
    everything. ``ask_callback``: the caller ID is withheld or no number, so before the message the caller
    is asked for a number to call back (keyed digits go to that URL; no digits, on to the message);
    ``ask_again``: the second time, after digits that were no phone number.
    """
    _ = voice._
    r = VoiceResponse()
    if preface:
        voice.say(r, preface)
    lead = intro or (
        _("Our service coordinator is on another call.")
        if business_hours
        else _("Please leave a message and we will respond on the next business day.")
    )
    if ask_callback is not None:
        if not critical:
            voice.say(r, lead)  # why there is a message to leave, before the number is asked
            lead = ""
        callback_prompt(r, action=ask_callback, number=None, extension="", voice=voice, retry=ask_again)
    if critical:
        if business_hours:
            prompt = _(
                "Your message will be submitted as a P 1 critical ticket and our emergency response team "
                "will be notified right away. Please describe the problem, your name, company and a callback "
                "number after the tone."
            )
        else:
            prompt = _(
                "Your message will be submitted as a P 1 critical ticket and our after-hours support team "
                "will be notified right away. Please describe the problem, your name, company and a callback "
                "number after the tone."
            )
    else:
        prompt = (lead + " " if lead else "") + _(
            "Please leave a detailed message after the tone, with your name, company, and a callback number. "
            "A ticket will be created automatically. "
            "For an urgent issue, press 2 now, or at any time during your message, to submit it as a "
            "P 1 critical ticket. Press pound when you are finished."
        )
    if key_action is not None:
        gather = r.gather(num_digits=1, action=key_action, method="POST", timeout=1, action_on_empty_result=False)
        voice.say(gather, prompt)
    else:
        voice.say(r, prompt)
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
    *,
    ticket_spoken: str,
    critical: bool,
    business_hours: bool,
    sms: bool,
    no_message: bool = False,
    voice: Voice = ENGLISH,
    callback_action: str | None = None,
    callback_spoken: str | None = None,
    callback_extension: str = "",
) -> VoiceResponse:
    """Read the ticket number back, digit by digit, and say what happens next.

    ``callback_action``: then offer the caller to confirm or change the number we will call back
    (``callback_spoken``, read as ``phone.spoken_number`` writes it; None: we have none).
    """
    _ = voice._
    r = VoiceResponse()
    if no_message:
        voice.say(r, _("We did not receive a message, so we have created a ticket to call you back."))
    else:
        voice.say(r, _("Thank you. Your message has been received."))
    voice.say(r, _("Your ticket number is {ticket}. Again, your ticket number is {ticket}.", ticket=ticket_spoken))
    if critical and business_hours:
        voice.say(r, _("This is a P 1 critical ticket. Our emergency response team is being notified now."))
    elif critical:
        voice.say(r, _("This is a P 1 critical ticket. Our after-hours on-call engineer is being notified now."))
    if sms:
        voice.say(r, _("You will also receive a text message with your ticket number."))
    if callback_action is not None:
        callback_prompt(r, action=callback_action, number=callback_spoken, extension=callback_extension, voice=voice)
    voice.say(r, _("Goodbye."))
    r.hangup()
    return r


def _callback_at(number: str, extension: str, voice: Voice) -> str:
    """'8 0 5, 5 5 5, 0 1 4 2' (read digit by digit in the call's language), with its extension."""
    if not extension:
        return number
    return voice._("{number}, extension {extension}", number=number, extension=extension)


def callback_prompt(
    node: VoiceResponse, *, action: str, number: str | None, extension: str, voice: Voice = ENGLISH, retry: bool = False
) -> Gather:
    """Ask for the number to call back: confirm ``number`` by hanging up, or key another followed by pound
    (a star before an extension). With no input the TwiML goes on to the verb after it."""
    _ = voice._
    gather = node.gather(
        input="dtmf", finish_on_key="#", timeout=8, action=action, method="POST", action_on_empty_result=False
    )
    if retry:
        voice.say(
            gather,
            _(
                "Please enter the number again, with its area code, followed by pound. "
                "For an extension, press star before it."
            ),
        )
    elif number is None:
        voice.say(
            gather,
            _(
                "We cannot see the number you are calling from. To be called back, enter your phone number now, "
                "with its area code, followed by pound."
            ),
        )
    else:
        voice.say(
            gather,
            _(
                "We will call you back at {number}. To give a different number, enter it now followed by pound, "
                "or hang up.",
                number=_callback_at(number, extension, voice),
            ),
        )
    return gather


def callback_kept(
    *, number: str | None, extension: str = "", keyed: bool, invalid: bool = False, voice: Voice = ENGLISH
) -> str:
    """What the caller hears of the number we will call back, read back once: ``keyed``, the one they just
    keyed; ``invalid``, their digits were no phone number a second time, so the caller ID stays."""
    _ = voice._
    said = [_("Sorry, that is not a phone number we can call.")] if invalid else []
    if number is not None:
        at = _callback_at(number, extension, voice)
        said.append(
            _("Thank you. We will call you back at {number}.", number=at)
            if keyed
            else _("We will call you back at {number}.", number=at)
        )
    elif invalid:
        said.append(_("Please say your phone number in your message."))
    return " ".join(said)


def callback_again(*, action: str, voice: Voice = ENGLISH) -> VoiceResponse:
    """The keyed digits were no phone number: say so once and ask once more (no input: goodbye)."""
    _ = voice._
    r = VoiceResponse()
    voice.say(r, _("Sorry, that is not a phone number we can call."))
    callback_prompt(r, action=action, number=None, extension="", voice=voice, retry=True)
    voice.say(r, _("Goodbye."))
    r.hangup()
    return r


def status_prompt(*, action: str, retry: bool, voice: Voice = ENGLISH) -> VoiceResponse:
    """Ask for a ticket number followed by pound."""
    _ = voice._
    r = VoiceResponse()
    gather = r.gather(
        input="dtmf", finish_on_key="#", timeout=10, action=action, method="POST", action_on_empty_result=True
    )
    if retry:
        voice.say(
            gather,
            _("We could not find that ticket. Please enter your ticket number again, followed by the pound key."),
        )
    else:
        voice.say(gather, _("Please enter your ticket number, followed by the pound key."))
    r.redirect(action, method="POST")
    return r


def status_answer(text: str, *, menu_url: str, voice: Voice = ENGLISH) -> VoiceResponse:
    """Read a ticket's status (``text``, in the call's language), then offer the menu again."""
    r = VoiceResponse()
    voice.say(r, text)
    gather = r.gather(num_digits=1, action=menu_url, method="POST", timeout=5, action_on_empty_result=False)
    voice.say(gather, voice._("To return to the main menu, press 9. Otherwise, thank you for calling. Goodbye."))
    r.hangup()
    return r


def goodbye(text: str, *, voice: Voice = ENGLISH) -> VoiceResponse:
    """Say something (already in the call's language) and end the call."""
    r = VoiceResponse()
    voice.say(r, text)
    r.hangup()
    return r


def call_handled() -> VoiceResponse:
    """The coordinator took the call; nothing more to do when it ends."""
    r = VoiceResponse()
    r.hangup()
    return r

"""Phone numbers: normalise to E.164, mask for logs, read back digit by digit; the number a caller keys to be
called back on, and which number a ticket is called back on."""

from __future__ import annotations

import re

import phonenumbers

# Twilio sends these in From when the caller withholds their number.
ANONYMOUS = frozenset({"", "anonymous", "restricted", "unknown", "private", "unavailable", "+266696687"})

# The one rate-limit bucket shared by every caller whose number is withheld, anonymous or no E.164 number.
WITHHELD = "withheld"


def normalize(number: str | None, region: str = "US") -> str | None:
    """The number in E.164 form ('+18055550142'), or None when it is no phone number."""
    if number is None:
        return None
    text = number.strip()
    if text.lower() in ANONYMOUS or text.startswith(("client:", "sip:")):
        return None
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def rate_bucket(number: str | None) -> str:
    """Whose calls count together for the rate limit: the E.164 number, or one bucket for all withheld numbers."""
    return normalize(number) or WITHHELD


def mask(number: str | None) -> str:
    """The number with all but its last four digits hidden, for logs."""
    if not number:
        return "-"
    digits = [c for c in number if c.isdigit()]
    if len(digits) <= 4:
        return "*" * len(digits)
    return "*" * (len(digits) - 4) + "".join(digits[-4:])


def spoken_digits(value: str | int) -> str:
    """Digits separated by spaces, so a text-to-speech voice reads them one by one."""
    return " ".join(c for c in str(value) if c.isdigit())


def spoken_number(number: str | None) -> str:
    """A phone number as a voice should read it: '8 0 5, 5 5 5, 0 1 4 2' for US numbers (without the
    extension of a callback number: ``spoken_extension``)."""
    e164 = normalize((number or "").partition(EXTENSION)[0] if number is not None else None)
    if e164 is None:
        return "an unknown number"
    if e164.startswith("+1") and len(e164) == 12:
        d = e164[2:]
        return f"{spoken_digits(d[:3])}, {spoken_digits(d[3:6])}, {spoken_digits(d[6:])}"
    return spoken_digits(e164)


def spoken_extension(number: str | None) -> str:
    """The extension of a callback number ("+18055550188;ext=12") digit by digit ("1 2"), or ''."""
    _, _, extension = (number or "").partition(EXTENSION)
    return spoken_digits(extension)


# --- the callback number ----------------------------------------------------------------------------------

# Where a ticket's callback number came from (Ticket.callback_origin, the API's ``callback_origin``).
CALLER_ID = "caller_id"  # the caller ID, which the caller neither confirmed nor replaced (they hung up)
CONFIRMED = "confirmed"  # the caller ID, confirmed by the caller on the call
KEYED = "keyed"  # digits the caller keyed on the call
HEARD = "heard"  # no caller ID and nothing keyed: the number the message's transcript names
CALLBACK_ORIGINS = {
    CALLER_ID: "caller ID",
    CONFIRMED: "caller ID, confirmed by the caller",
    KEYED: "keyed by the caller",
    HEARD: "heard in the message",
}
EXTENSION = ";ext="  # a keyed extension, as RFC 3966 writes it (a tel: link dials it)
_KEYED = re.compile(r"[0-9]{3,17}(?:\*[0-9]{1,6})?")  # what a keypad sends: digits, a star, an extension


def keyed_number(digits: str | None, region: str = "US") -> str | None:
    """The number a caller keyed ("8055550188", "18055550188", "011442079460000", "8055550188*12" with an
    extension after the star) in E.164 with its extension ("+18055550188;ext=12"), or None when
    ``phonenumbers`` finds no valid number there."""
    text = digits or ""
    if not _KEYED.fullmatch(text):
        return None
    main, _, extension = text.partition("*")
    try:
        parsed = phonenumbers.parse(main, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return e164 + (EXTENSION + extension if extension else "")


def callback_of(
    callback_number: str | None, callback_origin: str | None, caller_number: str | None, heard: str | None = None
) -> tuple[str | None, str | None]:
    """The number to call a ticket's caller back on first, and its origin (``CALLBACK_ORIGINS``).

    The number the caller confirmed or keyed on the call; else the caller ID; else, withheld, the number
    the message's transcript names (``heard``), which the number check names where it is in doubt.
    A number heard in the message never takes the place of the caller ID or of a keyed one.
    """
    if callback_number:
        return callback_number, callback_origin or KEYED
    caller = normalize(caller_number)
    if caller is not None:
        return caller, CALLER_ID
    heard_number = normalize(heard)
    if heard_number is not None:
        return heard_number, HEARD
    return None, None


def national_digits(number: str | None) -> str:
    """The digits of a number without its extension and North American country code ("8055550188")."""
    main = (number or "").partition(EXTENSION)[0]
    digits = "".join(c for c in main if c.isdigit())
    return digits[1:] if len(digits) == 11 and digits.startswith("1") else digits

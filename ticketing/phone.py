"""Phone numbers: normalise to E.164, mask for logs, read back digit by digit."""

from __future__ import annotations

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
    """A phone number as a voice should read it: '8 0 5, 5 5 5, 0 1 4 2' for US numbers."""
    e164 = normalize(number)
    if e164 is None:
        return "an unknown number"
    if e164.startswith("+1") and len(e164) == 12:
        d = e164[2:]
        return f"{spoken_digits(d[:3])}, {spoken_digits(d[3:6])}, {spoken_digits(d[6:])}"
    return spoken_digits(e164)

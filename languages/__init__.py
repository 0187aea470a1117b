"""The caller's language: prompts and text messages from gettext catalogues, one ``<code>.po`` per language.

English is the source language: every prompt is written in English in the code, wrapped in ``_()``, and
``languages/<code>.po`` gives its translation. ``make messages`` extracts the prompts into
``languages/messages.pot`` and updates each catalogue (Babel); ``tests/test_languages.py`` fails when a
prompt has no translation, is marked fuzzy, or loses a ``{placeholder}``.

Catalogues are compiled in memory when first used, so there is no build step and no binary in the tree.
"""

from __future__ import annotations

import gettext as _gettext
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from io import BytesIO
from pathlib import Path

from babel import Locale
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

CATALOGUES = Path(__file__).resolve().parent
SOURCE = "en"  # the language the prompts are written in
DOMAIN = "messages"

Translate = Callable[..., str]


class UnknownLanguage(ValueError):
    """No catalogue for this language code."""


def available() -> tuple[str, ...]:
    """English and every language with a catalogue here."""
    return (SOURCE, *sorted(p.stem for p in CATALOGUES.glob("*.po")))


def is_available(code: str | None) -> bool:
    return bool(code) and code in available()


@cache
def translations(code: str) -> _gettext.NullTranslations:
    """The compiled catalogue of ``code`` (English: the prompts as written)."""
    if code == SOURCE:
        return _gettext.NullTranslations()
    path = CATALOGUES / f"{code}.po"
    if not path.is_file():
        raise UnknownLanguage(f"no catalogue for language {code!r} (expected {path})")
    with path.open("rb") as po:
        catalog = read_po(po, locale=code, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return _gettext.GNUTranslations(compiled)


def translator(code: str | None) -> Translate:
    """``_`` for one language: ``_("Ticket {n}.", n=1)`` translates, then fills the placeholders."""
    catalogue = translations(code if code and is_available(code) else SOURCE)

    def _(message: str, **values: object) -> str:
        text = catalogue.gettext(message)
        return text.format(**values) if values else text

    return _


def N_(message: str) -> str:
    """Mark a message for the catalogue where it is translated later (``make messages`` finds it)."""
    return message


PRIORITY_NAMES = {"P1": N_("Critical"), "P2": N_("High"), "P3": N_("Medium"), "P4": N_("Low"), "P5": N_("No SLA")}


def local_time(when: datetime, code: str | None) -> str:
    """A local date and time for a text message: "Wed Dec 2, 3:30 PM PST"; in Spanish "mié 2 dic, 3:30 p. m. PST"."""
    zone = when.strftime("%Z")
    if not code or code == SOURCE:
        return f"{when:%a %b %-d, %-I:%M %p} {zone}".strip()
    return f"{format_datetime(when, 'EEE d MMM, h:mm a', locale=code)} {zone}".strip()


def priority_label(priority: str, code: str | None) -> str:
    """The policy's label of a priority ("P1 - Critical") in a language ("P1 - Crítica")."""
    name = PRIORITY_NAMES.get(priority)
    if name is None:
        return priority
    return f"{priority} - {translator(code)(name)}"


@dataclass(frozen=True)
class CallLanguage:
    """The language the greeting offers ("Para español, oprima 9"), and how Twilio speaks it."""

    code: str  # catalogue, e.g. "es"
    key: str  # the menu key that switches the call, e.g. "9"
    say_language: str  # Twilio <Say language>, e.g. "es-US"
    voice: str  # Twilio <Say voice>, e.g. "Polly.Lupe"

    @property
    def name(self) -> str:
        """The language's English name ("Spanish"), for coordinators and engineers."""
        return language_name(self.code)


def language_name(code: str | None, in_language: str = SOURCE) -> str:
    """A language code's name: language_name("es") == "Spanish"; in Spanish: "español"."""
    if not code:
        return ""
    try:
        return Locale.parse(code).get_display_name(in_language) or code
    except (ValueError, TypeError):
        return code

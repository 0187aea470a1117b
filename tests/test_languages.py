"""The call's languages: every prompt and text in the code has its translation in every catalogue."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from languages import CATALOGUES, available, language_name, local_time, priority_label, translator
from settings import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = re.compile(r"\{(\w*)\}")


def messages_in_the_code() -> dict[str, str]:
    """What ``make messages`` extracts, with where each message is."""
    with (CATALOGUES / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    keywords = {**DEFAULT_KEYWORDS, "N_": None}
    found = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=keywords
    ):
        found[message if isinstance(message, str) else message[0]] = f"{filename}:{lineno}"
    return found


CODE = messages_in_the_code()
LANGUAGES = [code for code in available() if code != "en"]


def test_the_code_has_prompts_to_translate() -> None:
    assert len(CODE) > 40, CODE
    assert "Your ticket number is {ticket}. Again, your ticket number is {ticket}." in CODE
    assert "To continue in this language, press {key}." in CODE  # the greeting's offer


def test_spanish_ships() -> None:
    assert "es" in LANGUAGES


@pytest.mark.parametrize("code", LANGUAGES)
def test_every_prompt_in_the_code_has_a_translation(code: str) -> None:
    with (CATALOGUES / f"{code}.po").open("rb") as po:
        catalog = read_po(po, locale=code)
    missing, fuzzy, placeholders = [], [], []
    for message, where in sorted(CODE.items()):
        entry = catalog.get(message)
        if entry is None or not entry.string:
            missing.append(f"{where}: {message!r}")
        elif entry.fuzzy:
            fuzzy.append(f"{where}: {message!r}")
        elif set(PLACEHOLDER.findall(message)) != set(PLACEHOLDER.findall(entry.string)):
            placeholders.append(f"{where}: {message!r} -> {entry.string!r}")
    hint = f" in languages/{code}.po (run `make messages`, then translate)"
    assert not missing, "untranslated" + hint + ":\n" + "\n".join(missing)
    assert not fuzzy, "marked fuzzy (the English changed)" + hint + ":\n" + "\n".join(fuzzy)
    assert not placeholders, "placeholders differ" + hint + ":\n" + "\n".join(placeholders)


def test_a_translated_prompt_fills_its_placeholders() -> None:
    _ = translator("es")
    assert _("Your ticket number is {ticket}. Again, your ticket number is {ticket}.", ticket="4 0 0 1") == (
        "Su número de ticket es 4 0 0 1. Repito, su número de ticket es 4 0 0 1."
    )
    assert translator("en")("Goodbye.") == "Goodbye."
    assert translator(None)("Goodbye.") == "Goodbye."
    assert translator("xx")("Goodbye.") == "Goodbye."  # no catalogue: the prompts as written


def test_dates_and_priorities_in_the_callers_language() -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    when = datetime(2026, 12, 2, 15, 30, tzinfo=ZoneInfo("America/Los_Angeles"))
    assert local_time(when, "en") == "Wed Dec 2, 3:30 PM PST"
    assert local_time(when, "es").startswith("mié 2 dic") and local_time(when, "es").endswith("PST")
    assert priority_label("P1", "en") == "P1 - Critical"
    assert priority_label("P3", "es") == "P3 - Media"
    assert language_name("es") == "Spanish"


def test_call_language_settings() -> None:
    default = load_settings({}).call_language
    assert default is not None and (default.code, default.key, default.say_language) == ("es", "9", "es-US")
    assert load_settings({"CALL_LANGUAGE": "off"}).call_language is None
    assert load_settings({"CALL_LANGUAGE_KEY": "8", "CALL_LANGUAGE_VOICE": "Polly.Mia"}).call_language == (
        default.__class__("es", "8", "es-US", "Polly.Mia")
    )
    with pytest.raises(ConfigError, match="CALL_LANGUAGE_KEY"):
        load_settings({"CALL_LANGUAGE_KEY": "2"})  # the menu's critical key
    with pytest.raises(ConfigError, match="CALL_LANGUAGE_KEY"):
        load_settings({"CALL_LANGUAGE_KEY": "#"})
    with pytest.raises(ConfigError, match="languages/fr.po"):
        load_settings({"CALL_LANGUAGE": "fr"})


def test_the_api_description_lists_every_language() -> None:
    import yaml

    spec = yaml.safe_load((ROOT / "web" / "api" / "openapi.yaml").read_text())
    (param,) = [p for p in spec["paths"]["/api/tickets"]["get"]["parameters"] if p["name"] == "language"]
    assert param["schema"]["enum"] == list(available())

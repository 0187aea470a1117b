"""Numbers as the caller said them: "805 555 0188", "ticket 400127" (pure code).

The engines decode with the digit tokens suppressed (``digit_token_ids``), so
Whisper writes what it heard as words ("eight oh five, five five five, oh one
eight eight") instead of guessing a format ("800-5-100-55-1-88"); this module
then writes the numbers back as digits:

- runs of digits read one by one ("eight oh five", "double five", "triple
  five", "oh one eighty-eight") become digits grouped as the caller paused
  (Whisper marks the pauses with commas), "805 555 0188"; a run said without
  pauses, or with a comma after every digit, is grouped as a North American
  number (3-3-4, or 3-4) when it has 10 or 7 digits;
- everything else spelled out ("four hundred thousand one hundred twenty
  seven", "two hundred and fifty dollars") is left to text2num's
  ``alpha2digit``, the well-kept library for that; it does not handle digit
  sequences (it writes "eight zero five" as "8 05"), hence the first pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable

# Digit words, teens and tens, also read by the callback-number finder in transcription.hints.
UNITS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
TEENS = {
    "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19",
}  # fmt: skip
TENS = {
    "twenty": "2", "thirty": "3", "forty": "4", "fifty": "5",
    "sixty": "6", "seventy": "7", "eighty": "8", "ninety": "9",
}  # fmt: skip
_REPEAT = {"double": 2, "triple": 3}
# What tiny.en writes for a digit said over the phone, where it cannot be that word.
_HEARD_FOR = {"free": "3", "to": "2", "too": "2", "go": "0", "on": "1"}
# Words after which even two digits read one by one are a number ("extension two one").
_CUES = frozenset("extension ext ticket number no code room suite pin id account unit box".split())
_WORD = re.compile(r"[A-Za-z]+|\d+")
# What may stand between the digits of one spoken number: spaces, and the
# commas, hyphens and full stops Whisper puts where the caller paused.
_JOINER = re.compile(r"^[\s,.\-–:;]*$")
_PAUSE = re.compile(r"[,.\-–:;]")


def digits_as_said(text: str, language: str = "en") -> str:
    """The transcript with spoken numbers written as digits in the caller's grouping.

    English and Spanish ("ocho cero cinco, cinco cinco cinco, cero uno ocho ocho" is
    "805 555 0188"); a transcript in any other language is returned as it is.
    """
    from text_to_num import alpha2digit

    if language == "es":
        return alpha2digit(_spanish_runs_to_digits(_repair_cinco(text)), "es", threshold=10)
    if language != "en":
        return text
    text = _digit_runs_to_digits(_repair_five(text))
    return alpha2digit(text, "en", threshold=10)


# tiny.en hears a "five" said over the phone as "time" or "fine"; two or more in
# a row, or one after "double" / "triple", next to a number, are digits ("time,
# time, time, oh one eight eight"; "triple time, nine three one zero").
_DIGIT_WORD = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|double|triple|\d+)"
_FIVE_LIKE = r"(?:time|fine)"
_FIVES = re.compile(
    rf"(?i)\b(?:(?:double|triple)[\s\-]+{_FIVE_LIKE}|{_FIVE_LIKE}(?:[\s,\-]+{_FIVE_LIKE})+)\b"
)  # "time, time, time", and "double time" / "triple time" for "double five" / "triple five"
# Beside it, a number: two digit words (or digits) in a row.
_DIGIT_AFTER = re.compile(rf"(?i)^[\s,\-.]+(?:\d{{2,}}|{_DIGIT_WORD}[\s,\-]+{_DIGIT_WORD})\b")
_DIGIT_BEFORE = re.compile(rf"(?i)\b(?:\d{{2,}}|{_DIGIT_WORD}[\s,\-]+{_DIGIT_WORD})[\s,\-]+$")


def _repair_five(text: str) -> str:
    """Repeated (or doubled, tripled) "time"/"fine" beside digit words or digits, as "five": only inside a number run."""

    def repair(match: re.Match[str]) -> str:
        after = _DIGIT_AFTER.match(text[match.end() :])
        before = _DIGIT_BEFORE.search(text[: match.start()])
        if not (after or before):
            return match.group(0)
        return re.sub(r"(?i)time|fine", "five", match.group(0))

    return _FIVES.sub(repair, text)


def group_digits(groups: Iterable[str]) -> str:
    """The caller's groups joined by spaces; one ungrouped run in the North American 3-3-4 shape."""
    parts = _without_extra_repeat([g for g in groups if g])
    if len(parts) > 1 and min(len(g) for g in parts) == 1:
        # A pause after single digits ("five, five, five, four"): Whisper's commas, not the caller's groups.
        parts = ["".join(parts)]
    if len(parts) > 1 and _nanp_boundaries(parts):
        # "805555, 0188": the caller's pauses fall where a North American number's groups end.
        parts = ["".join(parts)]
    if len(parts) == 1:
        digits = parts[0]
        if len(digits) == 11 and digits.startswith("1"):
            return f"1 {digits[1:4]} {digits[4:7]} {digits[7:]}"
        if len(digits) == 10:
            return f"{digits[:3]} {digits[3:6]} {digits[6:]}"
        if len(digits) == 7:
            return f"{digits[:3]} {digits[3:]}"
    return " ".join(parts)


# Signs Whisper writes before or after digits: with the digits suppressed, a decoder that has
# written "$" has nothing left to write and ends the message there ("The invoice says $").
_NUMBER_SIGNS = frozenset("$£€%")


def digit_token_ids(tokenizer: object) -> list[int]:
    """Every token id of a Whisper tokenizer whose text holds a digit or a currency or percent sign
    (to suppress at decode time: the decoder then writes "two hundred and fifty dollars")."""
    vocab = tokenizer.get_vocab()  # type: ignore[attr-defined]
    decode = tokenizer.decode  # type: ignore[attr-defined]
    return sorted(i for i in vocab.values() if any(ch.isdigit() or ch in _NUMBER_SIGNS for ch in decode([i])))


_PHONE_LENGTHS = (7, 10)


def phone_length(digits: str) -> bool:
    """True for a run of digits as long as a North American number: 7, 10, or 11 after a country code 1."""
    return len(digits) in _PHONE_LENGTHS or (len(digits) == 11 and digits.startswith("1"))


def _without_extra_repeat(parts: list[str]) -> list[str]:
    """Groups one or two digits too long for a phone number, without the extra copies of a repeated digit.

    Whisper miscounts a digit said several times in a row: "five five five" comes back as four or
    five fives ("eight oh five five five five five, oh one four two"). A run of 8, 11 (not after a
    country code 1) or 12 digits with four or more of one digit in a row loses one of those copies
    at a time, from the end of that repeat, until it has a phone number's length; any other run is
    left as it was said.
    """
    if phone_length("".join(parts)):
        return parts
    trimmed = list(parts)
    for _ in range(2):
        joined = "".join(trimmed)
        repeat = max(re.finditer(r"(\d)\1{3,}", joined), key=lambda m: len(m.group(0)), default=None)
        if repeat is None or len(joined) - 1 < min(_PHONE_LENGTHS):
            return parts
        trimmed = _drop_digit_at(trimmed, repeat.end() - 1)
        if len(joined) - 1 in _PHONE_LENGTHS:
            return trimmed
    return parts


def _drop_digit_at(parts: list[str], position: int) -> list[str]:
    """The groups with the digit at ``position`` (counted over all of them) taken out."""
    out = []
    for part in parts:
        at = position
        position -= len(part)
        if 0 <= at < len(part):
            part = part[:at] + part[at + 1 :]
        if part:
            out.append(part)
    return out


def _nanp_boundaries(parts: list[str]) -> bool:
    """True when the groups make 10 (or 7) digits and end only where a 3-3-4 (or 3-4) number's groups end."""
    total = sum(len(p) for p in parts)
    ends = {3, 6} if total == 10 else {3} if total == 7 else None
    if ends is None:
        return False
    cumulative, seen = 0, set()
    for part in parts[:-1]:
        cumulative += len(part)
        seen.add(cumulative)
    return seen <= ends


def _digit_runs_to_digits(text: str) -> str:
    return _runs_to_digits(text, _WORD, _read_run, _CUES)


def _runs_to_digits(
    text: str,
    word: re.Pattern[str],
    read_run: Callable[[str, list[re.Match[str]], int], tuple[int, list[str], int] | None],
    cues: Collection[str],
) -> str:
    """Every run of digits read one by one (``read_run``: a language's rules) written as digits in the
    caller's groups: three digits or more, or two after a cue word ("extension two one")."""
    tokens = list(word.finditer(text))
    out: list[str] = []
    cursor = 0
    index = 0
    while index < len(tokens):
        run = read_run(text, tokens, index)
        if run is None:
            index += 1
            continue
        end_index, groups, count = run
        previous = tokens[index - 1].group(0).lower() if index else ""
        if count >= 3 or (count >= 2 and previous in cues):
            first, last = tokens[index], tokens[end_index - 1]
            out.append(text[cursor : first.start()])
            out.append(group_digits(groups))
            cursor = last.end()
            index = end_index
        else:
            index += 1
    out.append(text[cursor:])
    return "".join(out)


# One word's reading inside a run: (the digits it adds, how many digits that counts, how many
# tokens it takes), or None where the run ends. Each language has its own.
_Reading = tuple[str, int, int]
_ReadWord = Callable[[str, list[re.Match[str]], int, int], _Reading | None]


def _read_digit_run(
    text: str,
    tokens: list[re.Match[str]],
    index: int,
    *,
    units: dict[str, str],
    repeat: dict[str, int],
    read_word: _ReadWord,
) -> tuple[int, list[str], int] | None:
    """Read digits spoken one by one from tokens[index]: (index after the run, groups, digit count).

    The pauses between groups and "double" / "triple" are read alike in every
    language; ``read_word`` reads the rest.
    """
    groups: list[str] = [""]
    count = 0
    i = index
    while i < len(tokens):
        if i > index:
            between = text[tokens[i - 1].end() : tokens[i].start()]
            if not _JOINER.match(between):
                break
            if _PAUSE.search(between) and groups[-1]:
                groups.append("")
        word = tokens[i].group(0).lower()
        following = tokens[i + 1].group(0).lower() if i + 1 < len(tokens) else ""
        reading: _Reading | None
        if word in repeat and following in units and _joined(text, tokens, i):
            reading = (units[following] * repeat[word], repeat[word], 2)
        else:
            reading = read_word(text, tokens, i, count)
        if reading is None:
            break
        digits, digit_count, taken = reading
        groups[-1] += digits
        count += digit_count
        i += taken
    if count == 0:
        return None
    return i, [g for g in groups if g], count


def _read_run(text: str, tokens: list[re.Match[str]], index: int) -> tuple[int, list[str], int] | None:
    """Read English digits spoken one by one from tokens[index]."""
    return _read_digit_run(text, tokens, index, units=UNITS, repeat=_REPEAT, read_word=_read_english_word)


def _read_english_word(text: str, tokens: list[re.Match[str]], i: int, count: int) -> _Reading | None:
    """One English word inside a run of digits (``count`` read so far)."""
    word = tokens[i].group(0).lower()
    following = tokens[i + 1].group(0).lower() if i + 1 < len(tokens) else ""
    if word in ("oh", "o") and not count and not (following in UNITS or following in _REPEAT):
        return None  # "oh" is a digit only inside a run, or before one
    after_cue = (
        not count
        and i > 0
        and tokens[i - 1].group(0).lower() in _CUES
        and i + 2 < len(tokens)
        and all(t.group(0).lower() in (*UNITS, "free") for t in tokens[i + 1 : i + 3])
    )  # "extension to one three": two digit words after it
    next_digit = (following in UNITS or following in ("go", "on", "free")) and (
        i + 1 < len(tokens) and re.fullmatch(r"[\s,\-]*", text[tokens[i].end() : tokens[i + 1].start()]) is not None
    )  # in the same sentence
    inside = count and (word == "free" or (word in ("go", "on") and next_digit))
    if word in _HEARD_FOR and (inside or (word in ("to", "too") and after_cue)):
        # "two", "three", "oh" and "one" as tiny.en hears them over the phone: "free" inside a
        # run of digits, "go" and "on" inside one with a digit next ("eight one eight, five five
        # five, go on two three"), "to" only as the first digit after a cue word, before two
        # more ("extension to one free"; "nine to five", "go on", "the number to one of them"
        # stay as they are).
        return _HEARD_FOR[word], 1, 1
    if word in UNITS and following == "hundred" and count and _joined(text, tokens, i):
        # "oh one hundred" at the end of a phone number: 0100.
        return UNITS[word] + "00", 3, 2
    if word in UNITS:
        return UNITS[word], 1, 1
    if word in TEENS and count:
        return TEENS[word], 2, 1
    if word in TENS and count:
        # "oh one eighty-eight": a pair read as a number inside a run of digits.
        if following in UNITS and following not in ("oh", "o", "zero") and _joined(text, tokens, i, commas=True):
            return TENS[word] + UNITS[following], 2, 2
        return TENS[word] + "0", 2, 1
    return None


def _joined(text: str, tokens: list[re.Match[str]], i: int, *, commas: bool = False) -> bool:
    """True when tokens i and i+1 are one spoken unit: apart by a space or hyphen (or a comma, if allowed).

    Inside a run of digits "eighty, eight" is 88 (Whisper puts a comma after
    every word it hears as a separate digit); "eighty" then "eight" as 8 0 8 is
    never said.
    """
    if i + 1 >= len(tokens):
        return False
    pattern = r"[\s\-,]*" if commas else r"[\s\-]*"
    return re.fullmatch(pattern, text[tokens[i].end() : tokens[i + 1].start()]) is not None


# --- Spanish ----------------------------------------------------------------------------------------
# Digits read one by one in Spanish, and the pairs callers read as numbers inside a run ("cero uno,
# ochenta y ocho"; "veintidós"). Whisper writes them with or without accents: both are read.
_ES_UNITS = {
    "cero": "0", "uno": "1", "un": "1", "una": "1", "dos": "2", "tres": "3", "cuatro": "4",
    "cinco": "5", "seis": "6", "siete": "7", "ocho": "8", "nueve": "9",
}  # fmt: skip
_ES_PAIRS = {
    "diez": "10", "once": "11", "doce": "12", "trece": "13", "catorce": "14", "quince": "15",
    "dieciseis": "16", "dieciséis": "16", "diecisiete": "17", "dieciocho": "18", "diecinueve": "19",
    "veinte": "20", "veintiuno": "21", "veintiún": "21", "veintidos": "22", "veintidós": "22",
    "veintitres": "23", "veintitrés": "23", "veinticuatro": "24", "veinticinco": "25",
    "veintiseis": "26", "veintiséis": "26", "veintisiete": "27", "veintiocho": "28", "veintinueve": "29",
}  # fmt: skip
_ES_TENS = {
    "treinta": "3", "cuarenta": "4", "cincuenta": "5", "sesenta": "6",
    "setenta": "7", "ochenta": "8", "noventa": "9",
}  # fmt: skip
_ES_REPEAT = {"doble": 2, "triple": 3}
_ES_CUES = frozenset("extensión extension ext ticket número numero caso código codigo oficina sala pin cuenta".split())
_ES_WORD = re.compile(r"[^\W\d_]+|\d+")


# The base model hears espeak's and callers' "cinco" over the phone as "cinto", "sinto",
# "sílco" (the Spanish tuning voicemails); two or more in a row are digits, as with English
# "time, time, time". "alocho" / "a locho" is "al ocho", the start of a number.
_CINCO_LIKE = r"[sc][ií][nl][tc]o"
_CINCOS = re.compile(rf"(?i)\b{_CINCO_LIKE}(?:[\s,\-]+{_CINCO_LIKE})+\b")
_AL_OCHO = re.compile(r"(?i)\b(a ?)locho\b")


def _repair_cinco(text: str) -> str:
    text = _CINCOS.sub(lambda m: re.sub(rf"(?i){_CINCO_LIKE}", "cinco", m.group(0)), text)
    return _AL_OCHO.sub("al ocho", text)


def _spanish_runs_to_digits(text: str) -> str:
    """Spanish digits read one by one as digits, in the caller's groups (the English rules, Spanish words)."""
    return _runs_to_digits(text, _ES_WORD, _read_spanish_run, _ES_CUES)


def _read_spanish_run(text: str, tokens: list[re.Match[str]], index: int) -> tuple[int, list[str], int] | None:
    """Read Spanish digits spoken one by one from tokens[index]."""
    return _read_digit_run(text, tokens, index, units=_ES_UNITS, repeat=_ES_REPEAT, read_word=_read_spanish_word)


def _read_spanish_word(text: str, tokens: list[re.Match[str]], i: int, count: int) -> _Reading | None:
    """One Spanish word inside a run of digits (``count`` read so far)."""
    word = tokens[i].group(0).lower()
    following = tokens[i + 1].group(0).lower() if i + 1 < len(tokens) else ""
    if word in _ES_UNITS and not (word in ("un", "una") and not count):
        return _ES_UNITS[word], 1, 1
    if word in _ES_PAIRS and count:
        return _ES_PAIRS[word], 2, 1
    if word in _ES_TENS and count:
        # "ochenta y ocho" inside a run of digits: 88.
        after = tokens[i + 2].group(0).lower() if i + 2 < len(tokens) else ""
        if following == "y" and after in _ES_UNITS and after != "cero" and _joined(text, tokens, i, commas=True):
            return _ES_TENS[word] + _ES_UNITS[after], 2, 3
        return _ES_TENS[word] + "0", 2, 1
    return None

"""Triage hints read from a voicemail transcript (pure code).

These are suggestions for the service coordinator, never decisions: the
priority a caller picked in the IVR ("press 2" for P1) and the coordinator's
judgement win.  Whisper writes numbers as digits most of the time, but
callers' digits also come back as words ("eight oh five"), with stray
punctuation ("805, 555-0142"), so the number reader accepts all of these.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from transcription.numbers import TEENS, TENS, UNITS, digits_as_said

SUMMARY_LIMIT = 80
DEFAULT_PRIORITY = "P3"  # the policy's default for tickets that arrive without triage


@dataclass(frozen=True)
class Caller:
    """Who the caller said they were."""

    name: str | None
    organisation: str | None


@dataclass(frozen=True)
class TriageHints:
    """Everything the ticket can be pre-filled with from one transcript."""

    summary: str
    callback_number: str | None
    caller: Caller
    priority: str
    cues: tuple[str, ...]


def triage_hints(text: str, language: str = "en") -> TriageHints:
    """Read summary, callback number, caller and suggested priority from a transcript.

    ``language`` is the transcript's: "es" reads Spanish ("llámeme al ocho cero cinco...",
    "el servidor está caído"); the cue labels stay English, for the coordinator.
    """
    if language == "es":
        return _spanish_hints(text)
    caller = find_caller(text)
    priority, cues = suggest_priority(text)
    return TriageHints(
        summary=summarize(text, organisation=caller.organisation),
        callback_number=find_callback_number(text),
        caller=caller,
        priority=priority,
        cues=cues,
    )


# --- priority -------------------------------------------------------------

# (priority, label, pattern).  Labels are what the coordinator sees as "why".
# The wording follows the support policy: P1 is a complete loss of service
# for several users or a critical function, data loss or a security breach.
_CUES: tuple[tuple[str, str, str], ...] = (
    ("P1", "ransomware", r"ransom\s*(?:ware|note)?"),
    ("P1", "breach", r"breach(?:ed)?|hack(?:ed|er|ers)?|compromised"),
    ("P1", "phishing", r"phish(?:ing)?|clicked (?:on )?(?:a|the) (?:bad |suspicious )?link"),
    ("P1", "virus", r"virus|malware"),
    (
        "P1",
        "data loss",
        r"data loss|lost (?:all )?(?:our |the |my )?(?:data|files)|(?:files|data) (?:are |is )?(?:gone|missing|deleted)",
    ),
    ("P1", "server down", r"servers? (?:is |are |went |has gone |seems? )?(?:down|offline|crashed|not responding)"),
    (
        "P1",
        "nobody can work",
        r"(?:(?:nobody|no one|none of us) can|(?:everyone|everybody|the whole office|all of us) "
        r"(?:can(?:'|no)?t|(?:is|are) unable to|(?:is|are) not able to)) (?:work|log|get|check|access|do)",
    ),
    (
        "P1",
        "office down",
        r"(?:internet|network|phones?|email|everything|(?:the )?whole office|(?:our |the )?systems?) (?:is |are |went )?(?:completely |all )?(?:down|out)",
    ),
    ("P2", "urgent", r"urgent(?:ly)?|emergency|asap|as soon as possible|right away|immediately"),
    (
        "P2",
        "several users",
        r"(?:several|multiple|many|all|any) (?:of (?:our|the) )?(?:users|people|computers|machines|staff|workstations|computer)",
    ),
    ("P2", "payments down", r"can(?:'|no)?t (?:take|process|run) (?:payments|payroll|credit cards)"),
    (
        "P3",
        "can't log in",
        r"can(?:'|no)?t (?:log ?in|sign ?in|login)|locked out|password (?:is |was )?(?:wrong|expired|not working)",
    ),
    (
        "P3",
        "not working",
        r"(?:isn't|is not|not|won't|doesn't|stopped) (?:working|open(?:ing)?|print(?:ing)?|connect(?:ing)?|load(?:ing)?|start(?:ing)?)",
    ),
    ("P3", "error", r"error|blue screen|crash(?:es|ed|ing)?|frozen"),
    ("P3", "keeps failing", r"keeps (?:dropping|crashing|freezing|restarting|disconnecting)"),
    ("P3", "slow", r"(?:really |very |super )?slow"),
    (
        "P4",
        "request",
        r"new (?:hire|user|laptop|computer|employee)|set (?:up|it up)|quick question|question about|request",
    ),
)
_COMPILED = tuple((p, label, re.compile(rf"\b(?:{pattern})\b", re.IGNORECASE)) for p, label, pattern in _CUES)
# A caller playing it down.  Matched first and blanked out, so that the
# "urgent" inside "not urgent" does not count as urgency.
_NOT_URGENT = re.compile(
    r"\b(?:(?:it's |it is |this is )?(?:not|nothing) (?:too |very |super )?urgent|no rush|"
    r"whenever (?:someone|you|somebody)(?: (?:has|have|gets?) (?:time|a chance))?|"
    r"when(?:ever)? you (?:get a chance|have time)|(?:sometime|some time) this week|this week)\b",
    re.IGNORECASE,
)


def suggest_priority(
    text: str,
    *,
    compiled: tuple[tuple[str, str, re.Pattern[str]], ...] = _COMPILED,
    not_urgent: re.Pattern[str] = _NOT_URGENT,
) -> tuple[str, tuple[str, ...]]:
    """Suggest P1-P4 from urgency cues; return it with the cue labels that matched.

    The most severe cue wins; a caller's own "not urgent" only lowers a P3
    (a "server down ... not urgent" message still deserves a look at once).
    Without any cue the suggestion is the policy's default, P3.
    """
    played_down = bool(not_urgent.search(text))
    rest = not_urgent.sub(" ", text)
    matched = [(p, label) for p, label, pattern in compiled if pattern.search(rest)]
    if played_down:
        matched.append(("P4", "not urgent"))
    cues = tuple(dict.fromkeys(label for _, label in matched))
    severities = {p for p, _ in matched}
    for priority in ("P1", "P2"):
        if priority in severities:
            return priority, cues
    if "P3" in severities and not played_down:
        return "P3", cues
    if severities:
        return "P4", cues
    return DEFAULT_PRIORITY, cues


# --- callback number ------------------------------------------------------

_TOKEN = re.compile(r"[a-z]+|\d+|[^\sa-z\d]", re.IGNORECASE)
# Punctuation Whisper scatters through spoken digits: "8-0-5", "805.", "(805)", "8'0'5".
_NUMBER_PUNCTUATION = set(",.-()'’/+:;")
_CUE = re.compile(
    r"\b(?:call(?:\s+\w+)?\s+(?:back\s+)?(?:at|on)|number\s+is|reach\s+(?:me|us)\s+(?:at|on)|"
    r"cell\s+is|callback|call\s+back\s+number)\b",
    re.IGNORECASE,
)


def find_callback_number(text: str, cue: re.Pattern[str] = _CUE) -> str | None:
    """Find a spoken phone number: "+1XXXXXXXXXX" for US numbers, else the bare digits.

    Runs of digits and digit words ("eight oh five", "double five",
    "forty two") separated only by punctuation or spaces are joined; a run of
    10 digits (11 with a leading 1) is a US number, 7 digits a local one.
    When several numbers are spoken, the one after "call me back at" wins,
    else the last one (callers end with their number).
    """
    candidates: list[tuple[int, str]] = []  # (start offset, digits)
    for start, digits in _digit_runs(text):
        if len(digits) == 11 and digits.startswith("1"):
            digits = digits[1:]
        if len(digits) == 10 and digits[0] not in "01":
            candidates.append((start, f"+1{digits}"))
        elif len(digits) == 7:
            candidates.append((start, digits))
    if not candidates:
        return None
    cued = [c for c in candidates if any(0 <= c[0] - m.end() <= 12 for m in cue.finditer(text))]
    full = [c for c in (cued or candidates) if c[1].startswith("+")]
    return (full or cued or candidates)[-1][1]


def _digit_runs(text: str) -> list[tuple[int, str]]:
    """Split the text into runs of spoken or written digits."""
    runs: list[tuple[int, str]] = []
    digits = ""
    start = 0
    repeat = 1
    tokens = list(_TOKEN.finditer(text))
    index = 0
    while index < len(tokens):
        match = tokens[index]
        word = match.group(0).lower()
        value: str | None = None
        if word.isdigit():
            value = word
        elif word in ("double", "triple") and index + 1 < len(tokens):
            repeat = 2 if word == "double" else 3
            index += 1
            continue
        elif word in UNITS and (word not in ("oh", "o") or digits or _next_is_digit(tokens, index)):
            value = UNITS[word]
        elif word in TEENS:
            value = TEENS[word]
        elif word in TENS:
            value = TENS[word] + "0"
            following = tokens[index + 1].group(0).lower() if index + 1 < len(tokens) else ""
            if following in UNITS and following not in ("oh", "o", "zero"):
                value = TENS[word] + UNITS[following]
                index += 1
        elif word == "hundred" and digits:
            value = "00"
        if value is not None:
            if not digits:
                start = match.start()
            digits += value * repeat
        elif word in _NUMBER_PUNCTUATION or (word == "and" and digits):
            pass  # separators inside a spoken number
        elif digits:
            runs.append((start, digits))
            digits = ""
        repeat = 1
        index += 1
    if digits:
        runs.append((start, digits))
    return runs


def _next_is_digit(tokens: list[re.Match[str]], index: int) -> bool:
    following = tokens[index + 1].group(0).lower() if index + 1 < len(tokens) else ""
    return following.isdigit() or (following in UNITS and following not in ("oh", "o"))


# --- caller ---------------------------------------------------------------

_NAME = r"[A-Z][a-z'’-]+(?: [A-Z][a-z'’-]+){0,2}"
_ORG = r"[A-Z][\w&'’-]*(?: (?:&|and|of|the|[A-Z][\w&'’-]*))*"
# Lead-in words in any case ("(?i:...)"), names and organisations capitalised,
# as Whisper writes them.
_LEAD = r"(?:^|[.!?,]\s*|\b(?i:hi|hello|hey),?\s+)"
_CALLER_PATTERNS = (
    re.compile(
        rf"\b(?i:this is|it's|it is|my name is|i'm|i am)\s+(?P<name>{_NAME})(?:\s*,?\s+(?i:from|at|with|over at)\s+(?P<org>{_ORG}))?"
    ),
    re.compile(rf"{_LEAD}(?P<name>{_NAME})\s+(?i:from|at|with)\s+(?P<org>{_ORG})\s+(?i:here)\b"),
    re.compile(rf"{_LEAD}(?P<name>{_NAME})\s+(?i:here)\b"),
)
# Capitalised words that follow "this is" without being anyone's name.
_NOT_NAMES = frozenset(
    "a an the i just your my our urgent regarding about calling in on so hi hello hey yes "
    "yeah please thanks thank sorry um uh okay ok again still not".split()
)


def find_caller(text: str) -> Caller:
    """Find "this is Dana from Acme Dental"-style introductions."""
    for pattern in _CALLER_PATTERNS:
        for match in pattern.finditer(text):
            name = _trim_name(match.group("name"))
            if name is None:
                continue
            org = match.groupdict().get("org")
            return Caller(name=name, organisation=_trim_org(org) if org else None)
    return Caller(name=None, organisation=None)


def _trim_name(raw: str, not_names: frozenset[str] = _NOT_NAMES) -> str | None:
    words = raw.split()
    # The IGNORECASE pattern also matches lower-case words: names must be capitalised.
    kept: list[str] = []
    for word in words:
        if not word[0].isupper() or word.lower() in not_names:
            break
        kept.append(word)
    return " ".join(kept) or None


def _trim_org(raw: str) -> str | None:
    words = raw.rstrip(".,").split()
    while words and (words[-1].lower() in {"and", "of", "the", "&"} or not words[-1][0].isalnum()):
        words.pop()
    if not words or not words[0][0].isupper():
        return None
    return " ".join(words)


# --- summary --------------------------------------------------------------

_GREETING = re.compile(
    r"^(?:(?:hi|hello|hey|yes|yeah|good (?:morning|afternoon|evening)|um|uh|so|okay|ok)\b[\s,.!]*)+",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"[^.!?]+[.!?]?")
_NO_SPEECH = "Voicemail (no speech transcribed)"


def summarize(text: str, limit: int = SUMMARY_LIMIT, organisation: str | None = None) -> str:
    """One line for the ticket title: the first sentence about the problem, <= limit chars."""
    sentences = _sentences(text)
    if not sentences:
        return _NO_SPEECH
    problem = _problem_sentence(sentences, introduction=_is_introduction, callback=_is_callback, has_cue=_has_cue)
    problem = _GREETING.sub("", problem).strip() or problem
    # Drop an introduction glued to the problem: "this is Dana from Acme, our server..."
    problem = re.sub(rf"^(?i:this is|it's|my name is)\s+{_NAME}(?:\s+(?i:from|at|with)\s+{_ORG})?,\s*", "", problem)
    return _title(problem, organisation, limit)


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.findall(" ".join(text.split())) if s.strip()]


def _problem_sentence(
    sentences: list[str],
    *,
    introduction: Callable[[str], bool],
    callback: Callable[[str], bool],
    has_cue: Callable[[str], bool],
) -> str:
    """The first sentence that neither introduces the caller nor asks for a call back; else the first with an
    urgency cue; else the first."""
    problem = next((s for s in sentences if not introduction(s) and not callback(s)), None)
    if problem is None:
        problem = next((s for s in sentences if has_cue(s)), sentences[0])
    return problem


def _title(problem: str, organisation: str | None, limit: int) -> str:
    """The problem as a title line: capitalised, without closing punctuation, after the organisation if known."""
    problem = problem.rstrip(".!?, ")
    problem = problem[:1].upper() + problem[1:]
    line = f"{organisation}: {problem}" if organisation else problem
    return _shorten(line, limit)


def _is_introduction(sentence: str) -> bool:
    rest = _GREETING.sub("", sentence).strip()
    if not rest:
        return True
    caller = find_caller(sentence)
    if caller.name is None:
        return False
    # "This is Dana from Acme, our server is down" introduces *and* states the problem.
    return not _has_cue(_NOT_URGENT.sub(" ", sentence))


def _is_callback(sentence: str) -> bool:
    return find_callback_number(sentence) is not None or bool(
        re.match(r"^(?:please\s+)?call (?:me|us) back|^thanks?\b|^thank you", sentence, re.IGNORECASE)
    )


def _has_cue(sentence: str) -> bool:
    return any(pattern.search(sentence) for _, _, pattern in _COMPILED)


def _shorten(line: str, limit: int) -> str:
    if len(line) <= limit:
        return line
    cut = line[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:- ")
    return cut + "…"


# --- Spanish ----------------------------------------------------------------
# Matched on the transcript lower-cased and without accents ("caído" and "caido" alike:
# Whisper writes both), labels as in English. As in English these only suggest: the
# priority the caller chose on the call and the coordinator's judgement win.
_ES_CUES: tuple[tuple[str, str, str], ...] = (
    ("P1", "ransomware", r"ransomware|rescate"),
    ("P1", "breach", r"hacke\w*|nos (?:robaron|hackearon)|brecha de seguridad|comprometid[oa]s?"),
    (
        "P1",
        "phishing",
        r"phishing|correo (?:falso|sospechoso|raro)|(?:hizo|hice|hicieron|dio|di) clic en (?:el|un) (?:enlace|link)",
    ),
    ("P1", "virus", r"virus|malware"),
    (
        "P1",
        "data loss",
        r"perd(?:imos|i|io|ieron) (?:todos )?(?:los |las |mis |nuestros )?(?:datos|archivos|documentos)|"
        r"(?:datos|archivos|documentos) (?:perdidos|borrados)|se borr(?:o|aron) (?:todo|los archivos)",
    ),
    (
        "P1",
        "server down",
        r"servidor(?:es)? (?:esta |estan |se )?(?:caidos?|cayo|cayeron|no responde|no funciona|apagado)",
    ),
    (
        "P1",
        "nobody can work",
        r"(?:nadie|ninguno de nosotros) (?:en (?:la|toda la) oficina )?(?:puede|pueden) (?:trabajar|entrar|acceder|abrir|registrar)|"
        r"no podemos trabajar|nadie puede",
    ),
    (
        "P1",
        "office down",
        r"no hay (?:sistema|internet|red|telefonos?|correo|luz)|sin sistema|"
        r"(?:internet|la red|el sistema|los sistemas|todo|los telefonos|el correo) (?:esta |estan |se )?(?:caid[oa]s?|cayo|cayeron|abajo)",
    ),
    (
        "P2",
        "urgent",
        r"urgente(?:mente)?|emergencia|lo (?:mas )?antes posible|de inmediato|inmediatamente|cuanto antes|ahora mismo|urgencia",
    ),
    (
        "P2",
        "several users",
        r"(?:varias|muchas|todas las|ninguna) (?:de las )?(?:computadoras|personas|maquinas|computadora)|"
        r"(?:varios|muchos|todos los) (?:usuarios|empleados|equipos)",
    ),
    ("P2", "payments down", r"no (?:podemos|puedo) (?:cobrar|procesar (?:pagos|tarjetas)|hacer (?:la )?nomina)"),
    (
        "P3",
        "can't log in",
        r"no (?:puedo|podemos) (?:entrar|iniciar sesion|acceder)|contrasena (?:es |esta )?(?:incorrecta|vencida)|bloquead[oa]",
    ),
    (
        "P3",
        "not working",
        r"no (?:funciona\w*|abre|imprime|conecta|carga|prende|enciende|arranca)|dej(?:o|aron) de funcionar",
    ),
    ("P3", "error", r"error(?:es)?|pantalla azul|se (?:congela|traba)|congelad[oa]"),
    ("P3", "keeps failing", r"se (?:cae|desconecta|reinicia) (?:a )?(?:cada rato|todo el tiempo|seguido)"),
    ("P3", "slow", r"(?:muy |super )?lent[oa]"),
    (
        "P4",
        "request",
        r"(?:computadora|laptop|portatil|usuario|empleado) nuev[oa]|nuev[oa] (?:computadora|laptop|empleado|usuario)|"
        r"configurar|una pregunta|solicitud",
    ),
)
_ES_COMPILED = tuple((p, label, re.compile(rf"\b(?:{pattern})\b")) for p, label, pattern in _ES_CUES)
_ES_NOT_URGENT = re.compile(
    r"\b(?:no es (?:muy |tan |nada )?urgente|nada urgente|no hay prisa|sin prisa|"
    r"cuando (?:puedan|pueda|tengan tiempo|tenga tiempo)|esta semana)\b"
)
_ES_CALLBACK_CUE = re.compile(
    r"\b(?:ll[aá]m(?:e|en)(?:me|nos)|llamarme|llamarnos|(?:me|nos) (?:puede|pueden) llamar|"
    r"mi (?:numero|número|celular|telefono|teléfono)(?: es)?|(?:al|el) (?:numero|número)|celular)\b(?:\s+(?:al|a|es|el))*",
    re.IGNORECASE,
)
_ES_UPPER = "A-ZÁÉÍÓÚÑÜ"
_ES_NAME = rf"[{_ES_UPPER}][a-záéíóúñü'’-]+(?: [{_ES_UPPER}][a-záéíóúñü'’-]+){{0,2}}"
_ES_ORG = rf"[{_ES_UPPER}][\w&'’-]*(?: (?:&|y\b|del\b|de\b|las\b|los\b|la\b|el\b|[{_ES_UPPER}][\w&'’-]*))*"
_ES_CALLER = re.compile(
    rf"\b(?i:soy|habla|le habla|les habla|me llamo|mi nombre es)\s+(?P<name>{_ES_NAME})"
    rf"(?:\s*,?\s+(?i:de|del|desde)\s+(?P<org>{_ES_ORG}))?"
)
_ES_NOT_NAMES = frozenset("el la los las un una yo su tu de del urgente sobre hola buenos buenas".split())
_ES_GREETING = re.compile(
    r"^(?:(?:hola|buen(?:os|as)? (?:dias|días|tardes|noches)|buenas|buenos|sí|si|bueno|este|eh|mm|oiga|ok)\b[\s,.!¡]*)+",
    re.IGNORECASE,
)


def _plain(text: str) -> str:
    """Lower case, accents off ("caído" is "caido"), for the Spanish cue patterns."""
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _spanish_hints(text: str) -> TriageHints:
    caller = find_caller_es(text)
    priority, cues = suggest_priority(_plain(text), compiled=_ES_COMPILED, not_urgent=_ES_NOT_URGENT)
    return TriageHints(
        summary=_summarize_es(text, organisation=caller.organisation),
        callback_number=find_callback_number(digits_as_said(text, "es"), cue=_ES_CALLBACK_CUE),
        caller=caller,
        priority=priority,
        cues=cues,
    )


def find_caller_es(text: str) -> Caller:
    """Find "soy María González de Clínica Dental Sonrisa"-style introductions."""
    for match in _ES_CALLER.finditer(text):
        name = _trim_name(match.group("name"), _ES_NOT_NAMES)
        if name is None:
            continue
        org = match.group("org")
        if org:
            parts = org.rstrip(".,").split()
            while parts and parts[-1].lower() in {"y", "de", "del", "la", "las", "los", "el", "&"}:
                parts.pop()
            org = " ".join(parts) or None
        return Caller(name=name, organisation=org)
    return Caller(name=None, organisation=None)


def _summarize_es(text: str, limit: int = SUMMARY_LIMIT, organisation: str | None = None) -> str:
    sentences = _sentences(text)
    if not sentences:
        return _NO_SPEECH

    def has_cue(sentence: str) -> bool:
        return any(pattern.search(_plain(sentence)) for _, _, pattern in _ES_COMPILED)

    def introduction(sentence: str) -> bool:
        rest = _ES_GREETING.sub("", sentence.lstrip("¡¿")).strip(" ,.!")
        return not rest or (find_caller_es(sentence).name is not None and not has_cue(sentence))

    def callback(sentence: str) -> bool:
        return bool(_ES_CALLBACK_CUE.search(sentence)) or _plain(sentence).startswith(("gracias", "muchas gracias"))

    problem = _problem_sentence(sentences, introduction=introduction, callback=callback, has_cue=has_cue)
    problem = _ES_GREETING.sub("", problem.lstrip("¡¿")).strip() or problem
    return _title(problem, organisation, limit)


# --- initial prompt -------------------------------------------------------

PROMPT_CHAR_LIMIT = 600  # Whisper keeps the last 223 prompt tokens; stay well inside


def initial_prompt_for(client_name: str, contact_names: Iterable[str], language: str = "en") -> str:
    """Whisper's initial prompt biasing it towards the client's and contacts' names ("" if none).

    Written as a punctuated sentence because Whisper copies the prompt's style:
    a bare word list makes it drop punctuation in the transcript. In Spanish ("es") the
    sentence is Spanish (an English prompt pulls the decoder towards English).
    """
    names = list(dict.fromkeys(" ".join(n.split()) for n in contact_names if n and n.strip()))
    client = " ".join(client_name.split())
    if not client and not names:
        return ""
    if language == "es":
        prompt = "Mensaje de voz al soporte técnico"
        prompt += f" de {client}." if client else "."
        callers = "Llaman"
    else:
        prompt = "Voicemail to the IT helpdesk"
        prompt += f" from {client}." if client else "."
        callers = "Callers"
    if names:
        included: list[str] = []
        for name in names:
            if len(prompt) + len(", ".join([*included, name])) + 12 > PROMPT_CHAR_LIMIT:
                break
            included.append(name)
        if included:
            prompt += f" {callers}: {', '.join(included)}."
    return prompt


def translation_prompt_for(contact_names: Iterable[str]) -> str:
    """The prompt for Whisper's English translation of a voicemail: the contacts' names only.

    The client's name is left out: a Spanish company name in the prompt pulls the
    translation back into Spanish (measured on the Spanish tuning voicemails).
    """
    names = list(dict.fromkeys(" ".join(n.split()) for n in contact_names if n and n.strip()))
    if not names:
        return ""
    return f"Voicemail to the IT helpdesk. Callers: {', '.join(names[:12])}."

"""Spanish telephone voicemails (espeak-ng's Spanish voices), generated on demand and cached.

Built exactly like the English corpus in ``testing.corpus``: espeak-ng reads the
script, sox puts it through the telephone channel (8 kHz, 300-3400 Hz, G.711 mu-law),
seeded pink noise goes under some of them. Each voicemail carries the facts its English
translation must keep: the callback number's digits, the caller's name, the problem.
The set is split once into a tuning half and a held-back half (alternating voices and
noise); nothing is tuned on the held-back half.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from testing.corpus import SpokenVoicemail, _atomic, _recipe_hash, _speak


@dataclass(frozen=True)
class SpanishVoicemail:
    """A Spanish voicemail script and what its English translation must keep."""

    recipe: SpokenVoicemail
    client: str
    contacts: tuple[str, ...]
    callback: str | None  # E.164, what the callback hint should find
    caller: str  # the caller's first name, as the translation should write it
    problem: tuple[str, ...]  # English words for the problem: one of them in the translation


def _es(
    name: str,
    text: str,
    *,
    client: str,
    contacts: tuple[str, ...],
    callback: str | None,
    caller: str,
    problem: tuple[str, ...],
    voice: str = "es-419",
    wpm: int = 150,
    noise: float | None = None,
) -> SpanishVoicemail:
    recipe = SpokenVoicemail(name, text, voice=voice, words_per_minute=wpm, noise_dbfs=noise)
    return SpanishVoicemail(recipe, client, contacts, callback, caller, problem)


SPANISH: tuple[SpanishVoicemail, ...] = (
    _es(
        "es-maria-servidor",
        "Hola, soy María González de Clínica Dental Sonrisa. Nuestro servidor está caído y nadie "
        "en la oficina puede trabajar. Es urgente. Por favor llámeme al ocho cero cinco, "
        "cinco cinco cinco, cero uno ocho ocho. Gracias.",
        client="Clínica Dental Sonrisa",
        contacts=("María González", "Pedro Ruiz"),
        callback="+18055550188",
        caller="Maria",
        problem=("server", "servant", "service"),
    ),
    _es(
        "es-jorge-correo",
        "Buenos días, habla Jorge Ramírez de Inmobiliaria Costa. No puedo entrar a mi correo "
        "desde esta mañana, dice que la contraseña es incorrecta. Mi número es ocho cero cinco, "
        "cinco cinco cinco, dos siete uno nueve.",
        client="Inmobiliaria Costa",
        contacts=("Jorge Ramírez", "Lucía Torres"),
        callback="+18055552719",
        caller="Jorge",
        problem=("password", "email", "mail"),
        voice="es",
    ),
    _es(
        "es-lucia-impresora",
        "Hola, soy Lucía de Veterinaria del Puerto. La impresora de la recepción no funciona y "
        "muestra un error. No es urgente, cuando puedan. Muchas gracias.",
        client="Veterinaria del Puerto",
        contacts=("Lucía Herrera", "Juan Pérez"),
        callback=None,
        caller="Lucia",
        problem=("printer", "print"),
        voice="es-419+f3",
        noise=-42.0,
    ),
    _es(
        "es-carlos-virus",
        "Sí, hola, le habla Carlos Mendoza de Contabilidad del Valle. Creemos que tenemos un virus. "
        "Todos los archivos de la carpeta compartida cambiaron de nombre. Llámeme de inmediato al "
        "ocho cero cinco, cinco cinco cinco, nueve tres uno cero.",
        client="Contabilidad del Valle",
        contacts=("Carlos Mendoza", "Ana Ríos"),
        callback="+18055559310",
        caller="Carlos",
        problem=("virus", "files"),
        voice="es+m3",
        wpm=160,
        noise=-38.0,
    ),
    _es(
        "es-sofia-internet",
        "Hola, habla Sofía de Pediatría Los Robles. No hay internet en toda la oficina y no podemos "
        "cobrar a los pacientes. Por favor llámenme al ocho cero cinco, cinco cinco cinco, "
        "cuatro cuatro seis ocho.",
        client="Pediatría Los Robles",
        contacts=("Sofía Castro", "Miguel Díaz"),
        callback="+18055554468",
        caller="Sofia",
        problem=("internet", "network", "charge", "payment"),
        voice="es-419+f2",
    ),
    _es(
        "es-andres-portatil",
        "Buenas tardes, soy Andrés Ortega de Títulos del Pacífico. Necesitamos configurar una "
        "computadora nueva para un empleado que empieza el lunes. Mi número es ocho cero cinco, "
        "cinco cinco cinco, tres tres ocho uno.",
        client="Títulos del Pacífico",
        contacts=("Andrés Ortega", "Beatriz Luna"),
        callback="+18055553381",
        caller="Andres",
        problem=("computer", "laptop", "employee"),
        voice="es",
        wpm=145,
        noise=-40.0,
    ),
    _es(
        "es-elena-archivos",
        "Hola, soy Elena de Abogados Mesa. Borré por error una carpeta con documentos de clientes y "
        "creo que perdimos los datos. ¿Pueden recuperarla de la copia de seguridad? Llámeme al "
        "ocho cero cinco, cinco cinco cinco, cero uno cuatro dos.",
        client="Abogados Mesa",
        contacts=("Elena Vidal", "Tomás Gil"),
        callback="+18055550142",
        caller="Elena",
        problem=("folder", "documents", "data", "backup", "files"),
        voice="es+f4",
    ),
    _es(
        "es-raul-agenda",
        "Hola, habla Raúl de Dental Cumbre. Los teléfonos funcionan, pero el programa de citas no "
        "abre en ninguna computadora y no podemos registrar a los pacientes. Es urgente.",
        client="Dental Cumbre",
        contacts=("Raúl Navarro", "Carmen Soto"),
        callback=None,
        caller="Raul",
        problem=("program", "appointment", "software", "computer"),
        voice="es-419+m2",
        noise=-36.0,
    ),
    _es(
        "es-teresa-pantalla",
        "Buenos días, soy Teresa de Ortodoncia del Valle. La computadora de la recepción muestra una "
        "pantalla azul cada vez que la prendemos. ¿Me pueden llamar al ocho cero cinco, cinco cinco "
        "cinco, seis dos cero cuatro?",
        client="Ortodoncia del Valle",
        contacts=("Teresa Molina", "Hugo Vega"),
        callback="+18055556204",
        caller="Teresa",
        problem=("screen", "blue", "computer"),
        voice="es-419+f4",
        wpm=140,
    ),
    _es(
        "es-diego-correo-falso",
        "Hola, soy Diego de Seguros del Lago. Recibimos un correo que parece falso y una empleada "
        "hizo clic en el enlace y escribió su contraseña. Por favor llámenos lo antes posible al "
        "ocho cero cinco, cinco cinco cinco, siete siete cero tres.",
        client="Seguros del Lago",
        contacts=("Diego Fuentes", "Rosa León"),
        callback="+18055557703",
        caller="Diego",
        problem=("email", "mail", "link", "password"),
        voice="es",
        noise=-30.0,
    ),
    _es(
        "es-paula-wifi",
        "Hola, habla Paula de Farmacia Central. El wifi de la sala de espera se cae cada rato y los "
        "clientes se quejan. ¿Alguien puede revisarlo esta semana?",
        client="Farmacia Central",
        contacts=("Paula Rojas", "Luis Cano"),
        callback=None,
        caller="Paula",
        problem=("wifi", "wi-fi", "network", "internet"),
        voice="es+f2",
    ),
    _es(
        "es-javier-caja",
        "Buenas, soy Javier de Panadería La Espiga. La caja registradora no funciona y no podemos "
        "cobrar con tarjeta. Es una emergencia. Llámeme al ocho cero cinco, cinco cinco cinco, "
        "cero nueve nueve uno.",
        client="Panadería La Espiga",
        contacts=("Javier Prieto", "Marta Gil"),
        callback="+18055550991",
        caller="Javier",
        problem=("register", "cash", "card", "charge", "payment"),
        voice="es-419+m3",
        noise=-38.0,
    ),
)

# About 60 s of Spanish speech: the hangup-to-transcript figure is measured on it.
SIXTY_SECONDS = _es(
    "es-sixty-seconds",
    "Hola, buenos días, le habla Gabriela Sánchez, de la Clínica Veterinaria San Martín. Le llamo "
    "porque desde esta mañana tenemos varios problemas con los sistemas de la clínica. Primero, el "
    "servidor donde guardamos las historias de los pacientes no responde, y nadie en la recepción "
    "puede abrir las fichas. Segundo, la impresora de etiquetas tampoco funciona, muestra un error "
    "rojo y no imprime nada. Tercero, el correo electrónico está muy lento y algunos mensajes no "
    "llegan. Ya reiniciamos el router y las computadoras, pero sigue igual. Tenemos pacientes "
    "esperando y no podemos cobrar las consultas, así que es bastante urgente. Por favor, llámeme "
    "lo antes posible a mi celular, que es el ocho cero cinco, cinco cinco cinco, cero tres seis "
    "siete. Si no contesto, puede preguntar por mi compañero Manuel en la recepción. Muchas gracias "
    "y que tenga buen día.",
    client="Clínica Veterinaria San Martín",
    contacts=("Gabriela Sánchez", "Manuel Ortiz"),
    callback="+18055550367",
    caller="Gabriela",
    problem=("server", "printer"),
    wpm=150,
)

SPANISH_TUNING: tuple[str, ...] = (
    "es-maria-servidor",
    "es-lucia-impresora",
    "es-sofia-internet",
    "es-elena-archivos",
    "es-teresa-pantalla",
    "es-paula-wifi",
)
SPANISH_HELD_BACK: tuple[str, ...] = tuple(v.recipe.name for v in SPANISH if v.recipe.name not in SPANISH_TUNING)
BY_NAME: dict[str, SpanishVoicemail] = {v.recipe.name: v for v in (*SPANISH, SIXTY_SECONDS)}


def build_spanish_clip(cache_dir: Path, name: str) -> Path:
    """The named Spanish voicemail as a telephone WAV, generated into ``cache_dir`` once."""
    recipe = BY_NAME[name].recipe
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{name}-{_recipe_hash(recipe)}.wav"
    if not path.exists():
        _atomic(path, lambda tmp: _speak(recipe, tmp))
    return path

"""Benchmark Spanish voicemails: transcript WER, translation key facts, language detection, speed, memory.

    .venv/bin/python -m bench.spanish

The voicemails are the synthetic Spanish corpus of ``testing.spanish`` (espeak-ng's es-419
and es voices through the telephone channel, some over pink line noise), each half reported
on its own: SPANISH_TUNING (what the prompts and decoding choices were looked at on) and
SPANISH_HELD_BACK (never looked at while choosing). The path measured is the worker's for a
caller who chose Spanish: language detection between English and Spanish, then the Spanish
transcript (multilingual base model, Spanish prompt) and Whisper's English translation
(names-only prompt), both with the coverage check.

- WER: Spanish transcript against the script, both lower-cased, accents and punctuation
  dropped, numbers written digit by digit (the script's number words through the same reader).
- Key facts: in the English translation, the callback number's digits (the last 7 are
  enough), the caller's first name, one of the problem's English words.
- Language detection: the English espeak corpus and the Spanish one, between en and es (as
  the worker asks) and unrestricted.
- The 60 s Spanish voicemail: recording on disk to Spanish transcript, and to translation,
  with warm models; real-time factor of the whole reading.
- Peak memory: this process's maximum RSS with both models (tiny.en and base) loaded.

Output also goes to ``bench/results/spanish.txt``.

    .venv/bin/python -m bench.spanish --callers [--runs 3]

The callers' side instead: an English and a Spanish caller (who pressed 9) each leave a voicemail
(``attach_recording``, as the recording's webhook does when they hang up) on a fresh SQLite
database, real Redis and the local Twilio REST test server; then one worker process's queues are
worked in the order ``python -m workers.worker`` serves them (``runtime.queues()``), with warm
models. Printed: hang-up to the "new ticket created" SMS reaching Twilio, to the transcript on the
ticket and to its English translation (the ticket's history times them). Output also goes to
``bench/results/spanish-callers.txt``.
"""

from __future__ import annotations

import os
import re
import resource
import statistics
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path[0] = str(ROOT)

AUDIO_DIR = ROOT / "var" / "test-audio"
OUTPUT = ROOT / "bench" / "results" / "spanish.txt"
ENGLISH_CLIPS = (
    "dana-server-down", "marcus-cant-log-in", "priya-printer", "tom-ransomware", "sarah-wifi",
    "luis-new-laptop", "karen-deleted-folder", "jordan-scheduling", "omar-quiet-caller", "grace-noisy-line",
)  # fmt: skip


def normalize_es(text: str) -> str:
    """Lower case, no accents or punctuation, every number digit by digit (for WER)."""
    from transcription.numbers import digits_as_said

    text = digits_as_said(text, "es").lower()
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = re.sub(r"[^\w\s]", " ", text)
    words: list[str] = []
    for word in text.split():
        words.extend(word if word.isdigit() else [word])
    return " ".join(words)


def _plain(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))


def key_facts(voicemail: Any, translation: str) -> dict[str, bool]:
    """Which of the voicemail's facts its English translation keeps."""
    from transcription.numbers import digits_as_said

    english = digits_as_said(translation, "en")
    plain = _plain(english)
    facts = {
        "name": voicemail.caller.lower() in plain,
        "problem": any(re.search(rf"\b{re.escape(w)}", plain) for w in voicemail.problem),
    }
    if voicemail.callback:
        facts["callback"] = voicemail.callback[-7:] in re.sub(r"\D", "", english)
    return facts


def main() -> int:
    import jiwer

    from settings import Settings
    from testing.corpus import build_clip
    from testing.spanish import BY_NAME, SIXTY_SECONDS, SPANISH_HELD_BACK, SPANISH_TUNING, build_spanish_clip
    from transcription.engines import load_engine
    from transcription.faster import FasterWhisperEngine
    from transcription.hints import initial_prompt_for, translation_prompt_for, triage_hints
    from transcription.pipeline import transcribe_spoken_language, transcribe_voicemail

    lines: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    load = os.getloadavg()
    say("Spanish voicemails: .venv/bin/python -m bench.spanish")
    say(f"CPUs available: {len(os.sched_getaffinity(0))}; load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
        " (shared machine: wall times move with other load)")  # fmt: skip
    started = time.perf_counter()
    english = load_engine(Settings())
    english.load()  # type: ignore[attr-defined]
    english_load = time.perf_counter() - started
    started = time.perf_counter()
    multilingual = FasterWhisperEngine("bundled:base")
    multilingual.load()
    multilingual_load = time.perf_counter() - started
    say(f"models: {english.model} (English, loaded in {english_load:.1f} s), "
        f"{multilingual.model} (multilingual, loaded in {multilingual_load:.1f} s); int8, CPU")  # fmt: skip

    def read(name: str) -> dict[str, Any]:
        voicemail = BY_NAME[name]
        path = build_spanish_clip(AUDIO_DIR, name)
        prompts = {
            "en": initial_prompt_for(voicemail.client, voicemail.contacts),
            "es": initial_prompt_for(voicemail.client, voicemail.contacts, language="es"),
            "translate": translation_prompt_for(voicemail.contacts),
        }
        t0 = time.perf_counter()
        detected, probability = multilingual.detect_language(path, ("en", "es"))
        t1 = time.perf_counter()
        reading = transcribe_spoken_language(multilingual, english, path, prompts=prompts, language=detected)
        t2 = time.perf_counter()
        return {
            "name": name,
            "voicemail": voicemail,
            "detected": detected,
            "probability": probability,
            "detect_s": t1 - t0,
            "read_s": t2 - t0,
            "audio_s": reading.transcript.audio_seconds,
            "transcript": reading.transcript.text,
            "translation": reading.translation.text if reading.translation else "",
            "missing": list(reading.transcript.missing),
        }

    results: dict[str, list[dict[str, Any]]] = {}
    for half, names in (("tuning", SPANISH_TUNING), ("held-back", SPANISH_HELD_BACK)):
        results[half] = [read(name) for name in names]

    say()
    for half, rows in results.items():
        refs = [normalize_es(r["voicemail"].recipe.text) for r in rows]
        hyps = [normalize_es(r["transcript"]) for r in rows]
        wer = jiwer.wer(refs, hyps)
        facts = [key_facts(r["voicemail"], r["translation"]) for r in rows]

        def recall(kind: str, facts: list[dict[str, bool]] = facts) -> str:
            got = [f[kind] for f in facts if kind in f]
            return f"{sum(got)}/{len(got)}"

        kept = sum(sum(f.values()) for f in facts)
        total = sum(len(f) for f in facts)
        audio = sum(r["audio_s"] for r in rows)
        wall = sum(r["read_s"] for r in rows)
        say(f"[{half}] {len(rows)} voicemails, {audio:.0f} s of audio")
        say(f"  Spanish transcript WER: {wer:.3f} ({sum(len(r.split()) for r in refs)} reference words)")
        say(f"  translation key facts kept: {kept}/{total} = {kept / total:.2f}"
            f" (callback {recall('callback')}, caller name {recall('name')}, problem {recall('problem')})")  # fmt: skip
        say(f"  detected as Spanish: {sum(r['detected'] == 'es' for r in rows)}/{len(rows)}")
        with_number = [r for r in rows if r["voicemail"].callback]
        right = sum(triage_hints(r["transcript"], "es").callback_number == r["voicemail"].callback for r in with_number)
        say(f"  callback hint from the Spanish transcript right: {right}/{len(with_number)}")
        say(f"  detect + transcribe + translate: {wall:.1f} s wall, RTF {wall / audio:.2f}")
        for r in rows:
            say(f"    {r['name']}: {r['detected']} {r['probability']:.2f}, {r['read_s']:.1f} s")
            say(f"      es: {r['transcript']}")
            say(f"      en: {r['translation']}")

    say()
    say("Language detection (first 30 s of speech, base model):")
    spanish_paths = [build_spanish_clip(AUDIO_DIR, n) for n in (*SPANISH_TUNING, *SPANISH_HELD_BACK)]
    english_paths = [build_clip(AUDIO_DIR, n).path for n in ENGLISH_CLIPS]
    timings: list[float] = []
    for label, paths, want in (("English", english_paths, "en"), ("Spanish", spanish_paths, "es")):
        restricted = free = 0
        for path in paths:
            t0 = time.perf_counter()
            restricted += multilingual.detect_language(path, ("en", "es"))[0] == want
            timings.append(time.perf_counter() - t0)
            free += multilingual.detect_language(path)[0] == want
        say(f"  {label} clips: {restricted}/{len(paths)} right between en and es; {free}/{len(paths)} unrestricted")
    say(f"  detection cost: {sum(timings) / len(timings):.2f} s a clip (mean), the multilingual model loaded")
    # The worker asks the multilingual model about an English caller's message only where tiny.en's
    # first pass is low-confidence or left speech untranscribed.
    readings = [transcribe_voicemail(english, p, None, number_pass=False) for p in english_paths]
    doubtful = sum((r.low_confidence and not r.no_speech) or bool(r.missing) for r in readings)
    say(f"  English clips whose tiny.en first pass would be re-checked (low confidence or speech missing): "
        f"{doubtful}/{len(english_paths)}")  # fmt: skip

    say()
    path = build_spanish_clip(AUDIO_DIR, SIXTY_SECONDS.recipe.name)
    prompts = {
        "es": initial_prompt_for(SIXTY_SECONDS.client, SIXTY_SECONDS.contacts, language="es"),
        "translate": translation_prompt_for(SIXTY_SECONDS.contacts),
    }
    t0 = time.perf_counter()
    detected, _ = multilingual.detect_language(path, ("en", "es"))
    spoken = multilingual.bound(detected)
    transcript = transcribe_voicemail(spoken, path, prompts["es"], number_pass=False)
    t_transcript = time.perf_counter() - t0
    translation = transcribe_voicemail(
        multilingual.bound(detected, "translate"), path, prompts["translate"], number_pass=False
    )
    t_translation = time.perf_counter() - t0
    audio = transcript.audio_seconds
    facts = key_facts(SIXTY_SECONDS, translation.text)
    wer = jiwer.wer(normalize_es(SIXTY_SECONDS.recipe.text), normalize_es(transcript.text))
    say(f"60 s Spanish voicemail ({audio:.1f} s audio, warm models, detected {detected}):")
    say(f"  hangup to Spanish transcript: {t_transcript:.1f} s; to English translation: {t_translation:.1f} s")
    say(f"  RTF (detect + transcribe + translate): {t_translation / audio:.2f}; WER {wer:.3f}; key facts {facts}")
    say(f"  es: {transcript.text}")
    say(f"  en: {translation.text}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    say()
    say(f"peak RSS of this process (tiny.en + base loaded): {peak:.0f} MiB")

    # Digit suppression in Spanish (the engine's default) against letting Whisper write digits itself.
    say()
    say("Spanish transcripts with and without digit suppression (tuning half, Spanish prompt):")
    digits = FasterWhisperEngine("bundled:base", spell_digits=False)
    for label, engine in (("suppressed (default)", multilingual), ("digits allowed", digits)):
        rows = []
        for name in SPANISH_TUNING:
            voicemail = BY_NAME[name]
            prompt = initial_prompt_for(voicemail.client, voicemail.contacts, language="es")
            text = transcribe_voicemail(
                engine.bound("es"), build_spanish_clip(AUDIO_DIR, name), prompt, number_pass=False
            ).text
            rows.append((voicemail, text))
        wer = jiwer.wer([normalize_es(v.recipe.text) for v, _ in rows], [normalize_es(t) for _, t in rows])
        with_number = [(v, t) for v, t in rows if v.callback]
        right = sum(triage_hints(t, "es").callback_number == v.callback for v, t in with_number)
        say(f"  {label}: WER {wer:.3f}, callback hint right {right}/{len(with_number)}")
    end = os.getloadavg()
    say(f"load average at end {end[0]:.2f} {end[1]:.2f} {end[2]:.2f}")
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text("\n".join(lines) + "\n")
    return 0


CALLERS_OUTPUT = ROOT / "bench" / "results" / "spanish-callers.txt"
CALLER = "+18055550142"


def callers(runs: int) -> int:
    """Hang-up to SMS, to transcript and to translation for an English and a Spanish caller, one worker."""
    import tempfile
    from datetime import datetime

    from rq import SimpleWorker
    from sqlalchemy import select

    import runtime as rt
    from ivr.simulate import new_sid
    from runtime import build_runtime
    from settings import Settings
    from testing.corpus import build_clip
    from testing.database import migrate
    from testing.spanish import build_spanish_clip
    from testing.twilio_server import TwilioTestServer
    from ticketing import voicemail
    from ticketing.db import transaction
    from ticketing.models import AuditEntry, Ticket
    from workers.dispatch import dispatch_pending

    lines: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    load = os.getloadavg()
    commit = os.popen(f"git -C {ROOT} rev-parse --short HEAD 2>/dev/null").read().strip() or "?"
    say(f"Callers' side: .venv/bin/python -m bench.spanish --callers --runs {runs} (code at {commit})")
    say(
        f"CPUs available: {len(os.sched_getaffinity(0))}; load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    tmp = Path(tempfile.mkdtemp(prefix="bench-callers-"))
    twilio = TwilioTestServer(prism_url=None).start()
    url = f"sqlite:///{tmp / 'bench.db'}"
    migrate(url)
    settings = Settings().with_overrides(
        database_url=url,
        redis_url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
        recordings_dir=tmp / "recordings",
        job_retry_intervals=(0,),
        **twilio.settings_overrides(),
    )
    runtime = build_runtime(settings)
    rt.install(runtime)
    runtime.redis.flushdb()
    english_audio = build_clip(AUDIO_DIR, "dana-server-down").path.read_bytes()
    spanish_audio = build_spanish_clip(AUDIO_DIR, "es-maria-servidor").read_bytes()

    def leave(audio: bytes, language: str) -> tuple[int, datetime]:
        sid = new_sid("RE")
        twilio.add_recording(sid, audio)
        with transaction(runtime.sessions) as s:
            t = voicemail.attach_recording(
                s,
                policy=runtime.policy,
                now=runtime.now(),
                call_sid=new_sid("CA"),
                caller=CALLER,
                recording_sid=sid,
                recording_url=twilio.recording_url(sid),
                duration=9,
                critical=False,
                language=language,
            )
            return t.number, runtime.now()  # type: ignore[return-value]

    def work() -> None:
        dispatch_pending(runtime)
        SimpleWorker(runtime.queues(), connection=runtime.redis).work(burst=True, logging_level="WARNING")

    def history(number: int) -> dict[str, datetime]:
        with runtime.sessions() as s:
            entries = s.scalars(select(AuditEntry).join(Ticket).where(Ticket.number == number)).all()
            return {a.action: a.at for a in sorted(entries, key=lambda a: a.id, reverse=True)}

    try:
        leave(english_audio, "en")  # warm both models before timing anything
        leave(spanish_audio, "es")
        work()
        figures: dict[str, list[dict[str, float]]] = {"English": [], "Spanish": []}
        for _ in range(runs):
            for label, audio, language in (("English", english_audio, "en"), ("Spanish", spanish_audio, "es")):
                twilio.reset()
                number, hung_up = leave(audio, language)
                work()
                done = history(number)
                assert len(twilio.messages(to=CALLER)) == 1, "one confirmation SMS a call"
                # The history's time of "confirmation sent" is when Twilio's API took the SMS.
                row = {"sms": (done["confirmation sent"] - hung_up).total_seconds()}
                row["transcript"] = (done["transcribed"] - hung_up).total_seconds()
                if "transcript translated" in done:
                    row["translation"] = (done["transcript translated"] - hung_up).total_seconds()
                figures[label].append(row)
        say()
        for label, rows in figures.items():
            say(f"{label} caller ({runs} runs, one worker, warm models): hang-up to")
            for what in ("sms", "transcript", "translation"):
                values = [r[what] for r in rows if what in r]
                if values:
                    shown = ", ".join(f"{v:.1f}" for v in values)
                    say(f"  {what:<12} median {statistics.median(values):5.1f} s  (runs: {shown})")
        end = os.getloadavg()
        say(f"load average at end {end[0]:.2f} {end[1]:.2f} {end[2]:.2f}")
    finally:
        rt.install(None)
        runtime.redis.flushdb()
        runtime.close()
        twilio.stop()
    CALLERS_OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    CALLERS_OUTPUT.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    if "--callers" in sys.argv[1:]:
        runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 3
        raise SystemExit(callers(runs))
    raise SystemExit(main())

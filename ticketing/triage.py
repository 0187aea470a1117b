"""The client portal's triage questions and the ITIL impact x urgency matrix that maps their answers onto P1-P5.

Pure: no framework, no clock. The support policy's priority descriptions, read as impact and urgency:

- Impact (who is affected): just me -> LOW; several people -> MEDIUM; the whole office or a critical
  business function -> HIGH.
- Urgency (can work go on): no workaround -> HIGH; a workaround, but a deadline -> MEDIUM; a workaround
  and no deadline -> LOW.
- A security breach, data loss or a legal/regulatory risk is P1 whatever the rest ("Includes data loss,
  security breaches, or regulatory/legal risks").
- A request or enhancement with no business impact is P5 ("Non-urgent service requests or enhancements
  with no immediate business impact or deadline"), unless a risk was also reported.

=============  ==========  ============  =========
impact         urgency H   urgency M     urgency L
=============  ==========  ============  =========
HIGH           P1          P2            P3
MEDIUM         P2          P3            P4
LOW            P3          P4            P4
=============  ==========  ============  =========
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from ticketing.priority import Priority


class Affected(str, enum.Enum):
    """Who is affected: the portal's first question."""

    JUST_ME = "me"
    SEVERAL = "several"
    EVERYONE = "everyone"  # the whole office, or a critical business function

    @property
    def label(self) -> str:
        """The answer as the form words it."""
        return _AFFECTED_LABELS[self]


_AFFECTED_LABELS = {
    Affected.JUST_ME: "Just me",
    Affected.SEVERAL: "Several people",
    Affected.EVERYONE: "The whole office, or a critical business function",
}


class Level(str, enum.Enum):
    """An impact or urgency level."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


IMPACT = {Affected.EVERYONE: Level.HIGH, Affected.SEVERAL: Level.MEDIUM, Affected.JUST_ME: Level.LOW}

MATRIX: Mapping[tuple[Level, Level], Priority] = {
    (Level.HIGH, Level.HIGH): Priority.P1,
    (Level.HIGH, Level.MEDIUM): Priority.P2,
    (Level.HIGH, Level.LOW): Priority.P3,
    (Level.MEDIUM, Level.HIGH): Priority.P2,
    (Level.MEDIUM, Level.MEDIUM): Priority.P3,
    (Level.MEDIUM, Level.LOW): Priority.P4,
    (Level.LOW, Level.HIGH): Priority.P3,
    (Level.LOW, Level.MEDIUM): Priority.P4,
    (Level.LOW, Level.LOW): Priority.P4,
}


@dataclass(frozen=True)
class TriageAnswers:
    """The client's answers to the portal's triage questions."""

    affected: Affected
    workaround: bool  # can people keep working some other way?
    deadline: bool  # must it be fixed by a certain time?
    risk: bool = False  # a security breach, data loss or a legal/regulatory risk
    request: bool = False  # a request or enhancement with no business impact (nothing is broken)

    def as_dict(self) -> dict[str, object]:
        """The answers as plain values (for the audit log)."""
        return {
            "affected": self.affected.value,
            "workaround": self.workaround,
            "deadline": self.deadline,
            "risk": self.risk,
            "request": self.request,
        }


@dataclass(frozen=True)
class Triage:
    """The priority the answers lead to, and why."""

    priority: Priority
    impact: Level | None
    urgency: Level | None
    reason: str


def urgency_of(workaround: bool, deadline: bool) -> Level:
    """No workaround is HIGH; a workaround with a deadline MEDIUM; a workaround and no deadline LOW."""
    if not workaround:
        return Level.HIGH
    return Level.MEDIUM if deadline else Level.LOW


def triage(answers: TriageAnswers) -> Triage:
    """The priority of a portal request, by the policy's rules and the impact x urgency matrix."""
    if answers.risk:
        return Triage(Priority.P1, None, None, "security breach, data loss or legal/regulatory risk")
    if answers.request:
        return Triage(Priority.P5, None, None, "request or enhancement with no business impact")
    impact = IMPACT[answers.affected]
    urgency = urgency_of(answers.workaround, answers.deadline)
    return Triage(MATRIX[(impact, urgency)], impact, urgency, f"impact {impact.value}, urgency {urgency.value}")


def _yes_no(raw: Mapping[str, str], key: str) -> bool:
    value = (raw.get(key) or "").strip().lower()
    if value in ("yes", "1", "true", "on"):
        return True
    if value in ("no", "0", "false", "off"):
        return False
    raise ValueError(unanswered(key))


QUESTIONS = {
    "affected": "Who is affected?",
    "workaround": "Can people keep working some other way for now?",
    "deadline": "Is there a deadline (must it be fixed by a certain time)?",
    "risk": "Is this a security breach, lost data, or a legal or regulatory risk?",
    "request": "Is this a request or an improvement, with nothing broken?",
}


def unanswered(key: str) -> str:
    """What the form says about a question left unanswered, as a sentence the client reads."""
    return f"Please answer the question \u201c{QUESTIONS[key]}\u201d (further down the form)."


def parse_answers(raw: Mapping[str, str]) -> TriageAnswers:
    """The answers of a submitted form; ValueError names the first unanswered question.

    A request with no business impact, or a reported risk, needs no answer to the other questions.
    """
    risk = (raw.get("risk") or "").strip().lower() in ("yes", "1", "true", "on")
    request = (raw.get("request") or "").strip().lower() in ("yes", "1", "true", "on")
    affected_raw = (raw.get("affected") or "").strip()
    if risk or request:
        affected = Affected(affected_raw) if affected_raw in {a.value for a in Affected} else Affected.JUST_ME
        workaround = (raw.get("workaround") or "").strip().lower() != "no"
        deadline = (raw.get("deadline") or "").strip().lower() == "yes"
        return TriageAnswers(affected, workaround, deadline, risk=risk, request=request)
    try:
        affected = Affected(affected_raw)
    except ValueError:
        raise ValueError(unanswered("affected")) from None
    return TriageAnswers(affected, _yes_no(raw, "workaround"), _yes_no(raw, "deadline"))

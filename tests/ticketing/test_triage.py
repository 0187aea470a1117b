"""The portal's triage: the policy's rules and the impact x urgency matrix, table-tested (pure code)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from ticketing.priority import Priority
from ticketing.triage import Affected, Level, TriageAnswers, parse_answers, triage, urgency_of

ROOT = Path(__file__).resolve().parents[2]

# who is affected, workaround?, deadline? -> priority
MATRIX_TABLE = [
    (Affected.EVERYONE, False, False, Priority.P1),  # whole office down, no workaround: P1
    (Affected.EVERYONE, False, True, Priority.P1),
    (Affected.EVERYONE, True, True, Priority.P2),
    (Affected.EVERYONE, True, False, Priority.P3),
    (Affected.SEVERAL, False, False, Priority.P2),  # multiple users, no workaround: P2
    (Affected.SEVERAL, False, True, Priority.P2),
    (Affected.SEVERAL, True, True, Priority.P3),
    (Affected.SEVERAL, True, False, Priority.P4),
    (Affected.JUST_ME, False, False, Priority.P3),
    (Affected.JUST_ME, False, True, Priority.P3),
    (Affected.JUST_ME, True, True, Priority.P4),
    (Affected.JUST_ME, True, False, Priority.P4),
]


@pytest.mark.parametrize(("affected", "workaround", "deadline", "expected"), MATRIX_TABLE)
def test_the_impact_urgency_matrix(affected: Affected, workaround: bool, deadline: bool, expected: Priority) -> None:
    assert triage(TriageAnswers(affected, workaround, deadline)).priority == expected


@pytest.mark.parametrize("affected", list(Affected))
@pytest.mark.parametrize("workaround", [True, False])
@pytest.mark.parametrize("deadline", [True, False])
def test_a_security_breach_data_loss_or_legal_risk_is_always_p1(
    affected: Affected, workaround: bool, deadline: bool
) -> None:
    result = triage(TriageAnswers(affected, workaround, deadline, risk=True))
    assert result.priority == Priority.P1
    assert "security" in result.reason
    # ... even when also ticked as a request: risk wins.
    assert triage(TriageAnswers(affected, workaround, deadline, risk=True, request=True)).priority == Priority.P1


@pytest.mark.parametrize("affected", list(Affected))
def test_a_request_with_no_business_impact_is_p5(affected: Affected) -> None:
    assert triage(TriageAnswers(affected, True, False, request=True)).priority == Priority.P5


def test_urgency_comes_from_workaround_then_deadline() -> None:
    assert urgency_of(workaround=False, deadline=False) == Level.HIGH
    assert urgency_of(workaround=True, deadline=True) == Level.MEDIUM
    assert urgency_of(workaround=True, deadline=False) == Level.LOW


def test_form_answers_are_parsed_and_unanswered_questions_named() -> None:
    assert parse_answers({"affected": "several", "workaround": "no", "deadline": "yes"}) == TriageAnswers(
        Affected.SEVERAL, False, True
    )
    with pytest.raises(ValueError, match="Who is affected"):
        parse_answers({"workaround": "no", "deadline": "no"})
    with pytest.raises(ValueError, match="keep working"):
        parse_answers({"affected": "me", "deadline": "no"})
    with pytest.raises(ValueError, match="deadline"):
        parse_answers({"affected": "me", "workaround": "yes", "deadline": "maybe"})
    with pytest.raises(ValueError, match="Who is affected"):
        parse_answers({"affected": "the cat", "workaround": "yes", "deadline": "no"})
    # A risk or a request needs no other answer.
    assert triage(parse_answers({"risk": "yes"})).priority == Priority.P1
    assert triage(parse_answers({"request": "yes"})).priority == Priority.P5


def test_triage_is_pure_it_imports_no_framework_and_reads_no_clock() -> None:
    frameworks = ["flask", "sqlalchemy", "twilio", "rq", "redis", "requests"]
    code = f"import sys, ticketing.triage\nprint(','.join(sorted(m for m in {frameworks!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
    tree = ast.parse((ROOT / "ticketing" / "triage.py").read_text())
    names = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert not names & {"now", "utcnow", "today", "time"}


def test_an_unanswered_question_is_named_in_a_plain_sentence() -> None:
    with pytest.raises(ValueError) as missing:
        parse_answers({"affected": "me", "workaround": "yes"})
    assert str(missing.value) == (
        "Please answer the question \u201cIs there a deadline (must it be fixed by a certain time)?\u201d "
        "(further down the form)."
    )
    with pytest.raises(ValueError, match=r"^Please answer the question \u201cWho is affected\?\u201d"):
        parse_answers({})

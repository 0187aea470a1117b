"""Ticket priorities P1-P5 as the support policy names them."""

from __future__ import annotations

import enum


class Priority(str, enum.Enum):
    """A ticket priority; the value is the policy's short code."""

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"
    P5 = "P5"

    @property
    def rank(self) -> int:
        """1 for P1 (most urgent) to 5 for P5; sorts first come, first served queues."""
        return int(self.value[1])

    @property
    def label(self) -> str:
        """The policy's label, e.g. 'P1 - Critical'."""
        return f"{self.value} - {_NAMES[self]}"

    @classmethod
    def parse(cls, value: object) -> Priority:
        """Accept a Priority, 'P1'..'P5' (any case) or 1..5; raise ValueError otherwise."""
        if isinstance(value, Priority):
            return value
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5:
            return cls(f"P{value}")
        if isinstance(value, str):
            text = value.strip().upper()
            if text.isdigit():
                text = f"P{text}"
            try:
                return cls(text[:2]) if len(text) >= 2 and text[2:3] in ("", " ", "-") else cls(text)
            except ValueError:
                pass
        raise ValueError(f"unknown priority {value!r}: expected one of P1, P2, P3, P4, P5")


_NAMES = {
    Priority.P1: "Critical",
    Priority.P2: "High",
    Priority.P3: "Medium",
    Priority.P4: "Low",
    Priority.P5: "No SLA",
}

# Requests nobody has triaged yet (voicemails, email) start as P3 - Medium.
DEFAULT_PRIORITY = Priority.P3

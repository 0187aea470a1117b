"""Domain exceptions; adapters map them to TwiML, JSON errors or flash messages."""

from __future__ import annotations


class DomainError(Exception):
    """Base class for every error the domain raises on purpose."""


class PolicyError(DomainError, ValueError):
    """The support-policy configuration is malformed; the message names the key."""


class OnCallError(PolicyError):
    """The on-call configuration is malformed; the message names the key."""


class UnknownTicket(DomainError, LookupError):
    """No ticket has that number."""


class InvalidTransition(DomainError, ValueError):
    """The requested change is not allowed in the ticket's current state."""


class InvalidInput(DomainError, ValueError):
    """A parameter is missing or malformed."""

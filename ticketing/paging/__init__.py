"""P1 paging, persisted: escalations, pages and acknowledgements (being cut into one module per concern)."""

from ticketing.paging.escalation import *  # noqa: F403

"""The summary the client sees (email subjects, the portal): a person writes it on the ticket page."""

from __future__ import annotations

from werkzeug.datastructures import MultiDict

from ticketing import summaries
from ticketing.models import Ticket
from web.console.shared import ActionContext, action


@action("client-summary")
def _client_summary(t: Ticket, form: MultiDict[str, str], c: ActionContext) -> str:
    value = summaries.write_client_summary(c.session, t, form.get("client_summary"), actor=c.actor, now=c.now)
    return f"The client now sees: {value}" if value else "The client sees the automatic summary again."

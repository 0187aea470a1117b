"""The Mail page: quarantined inbound messages first (with why), then the latest messages and what became of them."""

from __future__ import annotations

from flask import render_template
from sqlalchemy import select

from ticketing import portal
from ticketing.models import InboundMail, Ticket
from web.console.auth import blueprint, rt


@blueprint.get("/mail")
def mail_intake() -> str:
    """Inbound email: quarantined messages first (with why), then the latest messages and what became of them."""
    runtime = rt()
    with runtime.sessions() as s:
        columns = (
            InboundMail.id, InboundMail.via, InboundMail.received_at, InboundMail.size, InboundMail.state,
            InboundMail.outcome, InboundMail.dedupe_key, InboundMail.ticket_id,
        )  # fmt: skip
        quarantined = s.execute(
            select(*columns).where(InboundMail.state == "quarantined").order_by(InboundMail.id.desc()).limit(200)
        ).all()
        recent = s.execute(select(*columns).order_by(InboundMail.id.desc()).limit(100)).all()
        numbers = dict(
            s.execute(select(Ticket.id, Ticket.number).where(Ticket.id.in_([r.ticket_id for r in recent]))).all()
        )
        refused = portal.refused_links(s)
        return render_template(
            "console/mail_intake.html", quarantined=quarantined, recent=recent, numbers=numbers, refused_links=refused
        )

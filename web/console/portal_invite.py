"""Console side of the client portal: invite a contact (emails a sign-in link), the directory's contacts, attachments."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from ticketing import accounts, conversation, directory, portal
from ticketing.db import transaction
from ticketing.errors import DomainError
from ticketing.models import Client, Contact, PortalSignInEvent, Ticket, TicketAttachment
from web.console.auth import blueprint, role_required, rt, safe_next, viewer

TRIAGE = (accounts.COORDINATOR, accounts.ADMIN)


@blueprint.get("/contacts")
def contacts() -> str:
    """Every client's contacts, with their portal access (primary contact) and an invite button."""
    runtime = rt()
    with runtime.sessions() as s:
        clients = s.scalars(select(Client).options(selectinload(Client.contacts)).order_by(Client.name)).all()
        signed_in = dict(
            s.execute(
                select(PortalSignInEvent.contact_id, func.max(PortalSignInEvent.at))
                .where(PortalSignInEvent.event == "signed in")
                .group_by(PortalSignInEvent.contact_id)
            ).all()
        )
        return render_template("console/contacts.html", clients=clients, signed_in=signed_in)


@blueprint.post("/contacts/<int:contact_id>/portal-invite")
@role_required(*TRIAGE)
def portal_invite(contact_id: int) -> Response:
    """Email the contact a single-use sign-in link to the client portal (the same link as asking for one)."""
    from web.portal.auth import link_limits
    from workers.dispatch import hand_off_after_response

    runtime = rt()
    back = safe_next(request.form.get("next") or url_for("console.contacts"))
    try:
        with transaction(runtime.sessions) as s:
            contact = s.get(Contact, contact_id)
            if contact is None:
                abort(404)
            portal.invite(s, contact, now=runtime.now(), limits=link_limits(runtime), actor=viewer().display_name)
            name, email = contact.name, contact.email
    except DomainError as exc:
        flash(f"Not invited: {exc}.", "error")
        return redirect(back, code=303)
    flash(
        f"Portal invitation emailed to {name} ({email}): the link works once, for "
        f"{runtime.settings.portal_link_minutes} minutes.",
        "ok",
    )
    response = redirect(back, code=303)
    hand_off_after_response(response, runtime)
    return response


@blueprint.post("/contacts/<int:contact_id>/active")
@role_required(*TRIAGE)
def contact_active(contact_id: int) -> Response:
    """Disable a contact who left the client (history kept, nothing new matches it), or enable it again."""
    active = request.form.get("active") == "true"
    with transaction(rt().sessions) as s:
        contact = s.get(Contact, contact_id)
        if contact is None:
            abort(404)
        directory.set_active(s, contact, active)
        name = contact.name
    if active:
        flash(f"{name} enabled: calls, mail and portal sign-ins match the contact again.", "ok")
    else:
        flash(f"{name} disabled: the tickets stay; no call, mail or portal sign-in matches the contact.", "ok")
    return redirect(url_for("console.contacts"), code=303)


@blueprint.get("/tickets/<int:number>/attachments/<int:attachment_id>")
def ticket_attachment(number: int, attachment_id: int) -> Response:
    """A file a client attached, for any signed-in console user."""
    from web.portal.files import attachment_response

    runtime = rt()
    with runtime.sessions() as s:
        row = s.get(TicketAttachment, attachment_id)
        ticket = s.get(Ticket, row.ticket_id) if row is not None else None
        if row is None or ticket is None or ticket.number != number:
            abort(404)
    return attachment_response(row, runtime.settings.recordings_dir)


@blueprint.app_template_global("client_files")
def client_files(ticket: Ticket) -> list[conversation.ClientFile]:
    """The files the client sent on a ticket, by portal or email (for the ticket page's "Client files")."""
    with rt().sessions() as s:
        return conversation.client_files(s, ticket)

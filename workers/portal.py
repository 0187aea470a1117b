"""The client portal's mail job: email a contact their single-use sign-in link."""

from __future__ import annotations

import logging
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formataddr

from rq import get_current_job

import runtime as rt
from providers.mail import MailSendError, send_message
from ticketing import outbox, portal
from ticketing.db import transaction
from ticketing.models import PortalLink

log = logging.getLogger(__name__)


def _retries_left() -> int:
    job = get_current_job()
    return int(getattr(job, "retries_left", 0) or 0) if job is not None else 0


def sign_in_message(*, company: str, mail_from: str, to_name: str, to: str, url: str, minutes: int) -> EmailMessage:
    """The sign-in email: the link, how long it works, and what to do if nobody asked for it."""
    msg = EmailMessage()
    msg["From"] = mail_from
    msg["To"] = formataddr((to_name, to))
    msg["Subject"] = f"Your sign-in link for the {company} client portal"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(
        f"Hello {to_name},\n\n"
        f"Here is your link to sign in to the {company} client portal, where you can submit a ticket "
        "and follow your tickets:\n\n"
        f"{url}\n\n"
        f'The link works once, for {minutes} minutes. Opening it shows a page with a "Sign in" button.\n\n'
        "If you did not ask for this, you can ignore this email: nobody can sign in without the link.\n\n"
        f"{company} support\n"
    )
    return msg


def send_sign_in_link(link: int | None = None, request: int | None = None) -> str:
    """Draw the link's token, store its hash, and email the link; idempotent (a sent link is never sent again).

    ``link``: a coordinator's invitation. ``request``: the sign-in event of someone asking for a link, whose
    link is made here when the address is a contact's (nothing is sent otherwise).
    """
    runtime = rt.current()
    settings = runtime.settings
    key = f"{outbox.PORTAL_LINK}:request:{request}" if request is not None else f"{outbox.PORTAL_LINK}:{link}"
    if request is not None:
        with transaction(runtime.sessions) as s:
            link = portal.link_for_request(s, request, lifetime=timedelta(minutes=settings.portal_link_minutes))
            if link is None:
                outbox.complete(s, key, runtime.now())
                return "nothing to send"
    assert link is not None
    with transaction(runtime.sessions) as s:
        armed = portal.arm_link(s, link, now=runtime.now())
        if armed is None:
            outbox.complete(s, key, runtime.now())
            return "nothing to send"
        row, token = armed
        to, name, contact_id = row.email, row.contact.name, row.contact_id
        minutes = max(1, int((row.expires_at - row.created_at).total_seconds() // 60))
    base = settings.portal_base_url or settings.public_base_url
    message = sign_in_message(
        company=settings.company_name,
        mail_from=settings.mail_from,
        to_name=name,
        to=to,
        url=f"{base}/portal/sign-in/link?token={token}",
        minutes=minutes,
    )
    try:
        where = send_message(message, smtp_url=settings.smtp_url, dev_mailbox=settings.dev_mailbox_dir)
    except MailSendError as exc:
        if exc.retryable and _retries_left() > 0:
            raise
        with transaction(runtime.sessions) as s:
            portal.log_event(
                s, portal.SEND_FAILED, now=runtime.now(), email=to, contact_id=contact_id, error=str(exc)[:300]
            )
            outbox.complete(s, key, runtime.now())
        log.error("sign-in link %s to %s could not be sent: %s", link, to, exc)
        return "failed"
    with transaction(runtime.sessions) as s:
        sent = s.get(PortalLink, link)
        if sent is not None:
            sent.sent_at = runtime.now()
        portal.log_event(s, "sent", now=runtime.now(), email=to, contact_id=contact_id, via=where.split(":")[0])
        outbox.complete(s, key, runtime.now())
    return "sent"

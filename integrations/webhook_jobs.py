"""The RQ job of outbound webhooks: one attempt of one delivery, then the next due deliveries of its endpoint."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import runtime as rt
from integrations import webhooks
from integrations.webhook_models import WebhookDelivery, WebhookEndpoint
from providers.mail import MailSendError, send_message
from ticketing import outbox
from ticketing.db import transaction

log = logging.getLogger(__name__)


def wall_clock() -> datetime:
    """The real time: ``webhook-timestamp`` is checked against the receiver's clock, never a simulated one."""
    return datetime.now(UTC)


def deliver(delivery: int, attempt: int) -> str:
    """Make attempt ``attempt`` of a delivery (a stale or out-of-turn job does nothing); returns what happened."""
    runtime = rt.current()
    key = f"webhook:{delivery}:{attempt}"
    with transaction(runtime.sessions) as s:
        now = runtime.now()
        row = s.get(WebhookDelivery, delivery)
        if row is None or row.state != "pending" or row.attempts + 1 != attempt or not row.endpoint.enabled:
            outbox.complete(s, key, now)
            return "nothing to do"
        if not webhooks.is_head(s, row):
            outbox.complete(s, key, now)  # an earlier event of the ticket goes first; the sweeper posts this later
            return "waiting for an earlier event"
        request = webhooks.prepare(row, now, wall_clock())
    outcome = webhooks.send(request, dev_mode=runtime.settings.dev_mode)
    with transaction(runtime.sessions) as s:
        now = runtime.now()
        row = s.get(WebhookDelivery, delivery)
        if row is None or row.attempts + 1 != attempt:
            outbox.complete(s, key, now)
            return "recorded by another attempt"
        disabled = webhooks.record(s, row, outcome, now)
        endpoint_id = row.endpoint_id
        if disabled is None:
            webhooks.post_next_in_lane(s, row, now, outbox.WEBHOOK)  # the ticket's next event, right away
        outbox.complete(s, key, now)
    if disabled is not None:
        alert_admins(endpoint_id)
    if outcome.error:
        log.info("webhook %s attempt %d: %s", delivery, attempt, outcome.error)
        return f"failed: {outcome.error}"
    return f"delivered: {outcome.status}"


def alert_admins(endpoint_id: int) -> None:
    """Email the admin accounts that have an address: an endpoint was disabled (the page and /metrics show it too)."""
    runtime = rt.current()
    settings = runtime.settings
    with runtime.sessions() as s:
        endpoint = s.get(WebhookEndpoint, endpoint_id)
        to = webhooks.admin_addresses(s)
        if endpoint is None or not to:
            log.error("webhook endpoint %s disabled; no admin has an email address to tell", endpoint_id)
            return
        console = f"{settings.public_base_url.rstrip('/')}/integrations/webhooks/{endpoint_id}"
        message = webhooks.disabled_alert(endpoint, to=to, mail_from=settings.mail_from, console_url=console)
    try:
        send_message(message, smtp_url=settings.smtp_url, dev_mailbox=settings.dev_mailbox_dir)
    except MailSendError:
        log.exception("webhook endpoint %s disabled; the admins' email was not sent", endpoint_id)

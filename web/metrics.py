"""Prometheus metrics at /metrics, derived from the database and Redis at scrape time.

Nothing is counted in process memory, so any number of web processes on any
number of machines report the same figures, and a restart loses nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from redis.exceptions import RedisError
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from integrations import webhooks
from runtime import Runtime
from runtime.web import rt
from ticketing.models import (
    OPEN_STATUSES,
    AuditEntry,
    CallEvent,
    Escalation,
    InboundMail,
    Milestone,
    OutboxMessage,
    Page,
    PortalSignInEvent,
    Ticket,
    TicketMessage,
)
from ticketing.portal import SEND_FAILED
from ticketing.queue import QueueFilter, count_open, overdue

blueprint = Blueprint("metrics", __name__)
LATENCY_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)
WINDOW = timedelta(days=7)  # latency histograms cover the last week


def _histogram(
    name: str, doc: str, values: list[float], buckets: tuple[float, ...] = LATENCY_BUCKETS
) -> HistogramMetricFamily:
    counts = [(str(b), float(sum(1 for v in values if v <= b))) for b in buckets] + [("+Inf", float(len(values)))]
    return HistogramMetricFamily(name, doc, buckets=counts, sum_value=float(sum(values)))


class SupportlineCollector:
    """Collects every supportline metric from the runtime's database and Redis."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        """Yield the metric families (a scrape)."""
        up = GaugeMetricFamily(
            "supportline_dependency_up", "1 when the dependency answered this scrape", labels=["dependency"]
        )
        try:
            yield from self._database()
            database_up = self._database_takes_writes()
        except SQLAlchemyError:
            database_up = 0
        up.add_metric(["database"], database_up)
        try:
            yield from self._queue()
            up.add_metric(["redis"], 1)
        except (RedisError, OSError):
            up.add_metric(["redis"], 0)
        yield up

    def _database(self) -> Iterator[Metric]:
        now = self.runtime.now()
        since = now - WINDOW
        with self.runtime.sessions() as s:
            yield from self._tickets(s)
            yield from self._mail_and_messages(s)
            yield from self._calls(s)
            yield from self._sla(s, now)
            yield from self._paging(s)
            yield from self._unreached(s)
            yield from self._sign_in_mail(s)
            yield from self._outbox_failed(s)
            yield from self._webhooks(s)
            yield from self._paging_latency(s, since)
            yield from self._transcriptions(s, since)

    # --- tickets, mail and calls ----------------------------------------------------------------------------

    def _tickets(self, s: Session) -> Iterator[Metric]:
        """Tickets opened (by priority at creation and source), and open now (by current priority)."""
        # Counted at creation, by the priority the ticket was opened with: a re-triage never moves a ticket
        # from one count to another (supportline_open_tickets shows the current priorities).
        tickets = CounterMetricFamily(
            "supportline_tickets",
            "Tickets opened, by priority at creation and source",
            labels=["priority", "source"],
        )
        created = (
            select(AuditEntry.ticket_id, AuditEntry.detail["priority"].as_string().label("priority"))
            .where(AuditEntry.action == "created")
            .subquery()
        )
        opened_as = func.coalesce(created.c.priority, Ticket.priority)
        for prio, source, n in s.execute(
            select(opened_as, Ticket.source, func.count())
            .select_from(Ticket)
            .outerjoin(created, created.c.ticket_id == Ticket.id)
            .group_by(opened_as, Ticket.source)
        ):
            tickets.add_metric([prio, source], n)
        yield tickets
        open_ = GaugeMetricFamily("supportline_open_tickets", "Open tickets by current priority", labels=["priority"])
        for prio, n in s.execute(
            select(Ticket.priority, func.count()).where(Ticket.status.in_(OPEN_STATUSES)).group_by(Ticket.priority)
        ):
            open_.add_metric([prio], n)
        yield open_

    def _mail_and_messages(self, s: Session) -> Iterator[Metric]:
        """Inbound email by what became of it, and messages to clients by channel and state."""
        inbound = CounterMetricFamily(
            "supportline_inbound_mail", "Inbound email by what became of it", labels=["via", "state"]
        )
        for via, state, n in s.execute(
            select(InboundMail.via, InboundMail.state, func.count()).group_by(InboundMail.via, InboundMail.state)
        ):
            inbound.add_metric([via, state], n)
        yield inbound
        outgoing = CounterMetricFamily(
            "supportline_client_messages", "Messages to clients by channel and state", labels=["channel", "state"]
        )
        for channel, state, n in s.execute(
            select(TicketMessage.channel, TicketMessage.state, func.count())
            .where(TicketMessage.direction == "out")
            .group_by(TicketMessage.channel, TicketMessage.state)
        ):
            outgoing.add_metric([channel, state], n)
        yield outgoing

    def _calls(self, s: Session) -> Iterator[Metric]:
        """Calls by outcome: received, answered by the coordinator, voicemail, no message, rate limited."""
        calls = CounterMetricFamily("supportline_calls", "Calls by outcome", labels=["outcome"])
        answered = select(func.count(func.distinct(CallEvent.call_sid))).where(
            CallEvent.event == "coordinator accepted"
        )
        outcomes = {
            "received": select(func.count()).where(CallEvent.event == "incoming"),
            "coordinator answered": answered,
            "voicemail": select(func.count()).where(Ticket.call_sid.is_not(None), Ticket.recording_sid.is_not(None)),
            "no message": select(func.count()).where(Ticket.call_sid.is_not(None), Ticket.recording_sid.is_(None)),
            "rate limited": select(func.count()).where(CallEvent.event == "rate limited"),
        }
        for outcome, query in outcomes.items():
            calls.add_metric([outcome], s.scalar(query) or 0)
        yield calls

    # --- SLA and paging -------------------------------------------------------------------------------------

    def _sla(self, s: Session, now: datetime) -> Iterator[Metric]:
        """Milestones met, met late and breached (``ticketing.queue.breached``), and the breached open tickets."""
        sla = CounterMetricFamily(
            "supportline_sla_milestones", "SLA milestones by outcome", labels=["milestone", "outcome"]
        )
        for name, in_time, n in s.execute(
            select(Milestone.name, Milestone.met_in_time, func.count())
            .where(Milestone.met_at.is_not(None))
            .group_by(Milestone.name, Milestone.met_in_time)
        ):
            sla.add_metric([name, "met" if in_time else "met late"], n)
        for name, n in s.execute(
            select(Milestone.name, func.count())
            .join(Ticket, Ticket.id == Milestone.ticket_id)
            .where(overdue(now), Ticket.status.in_(OPEN_STATUSES))
            .group_by(Milestone.name)
        ):
            sla.add_metric([name, "breached"], n)
        yield sla
        tickets = GaugeMetricFamily(
            "supportline_breached_tickets",
            "Open tickets with a breached milestone (met late, or overdue while its clock ran): the queue's filter",
        )
        tickets.add_metric([], count_open(s, QueueFilter(breached_at=now)))
        yield tickets

    def _paging(self, s: Session) -> Iterator[Metric]:
        """Pages by channel and state, and P1 escalations by state."""
        pages = CounterMetricFamily("supportline_pages", "Pages by channel and state", labels=["channel", "state"])
        for channel, state, n in s.execute(
            select(Page.channel, Page.state, func.count()).group_by(Page.channel, Page.state)
        ):
            pages.add_metric([channel, state], n)
        yield pages
        escalations = CounterMetricFamily("supportline_escalations", "P1 escalations by state", labels=["state"])
        for state, n in s.execute(select(Escalation.state, func.count()).group_by(Escalation.state)):
            escalations.add_metric([state], n)
        yield escalations

    def _paging_latency(self, s: Session, since: datetime) -> Iterator[Metric]:
        """How long a P1 waited for its first page, and paging for its acknowledgement, over the window."""
        first_pages = s.execute(
            select(Ticket.opened_at, func.min(Page.sent_at))
            .join(Escalation, Escalation.ticket_id == Ticket.id)
            .join(Page, Page.escalation_id == Escalation.id)
            .where(Page.sent_at.is_not(None), Ticket.opened_at >= since)
            .group_by(Ticket.id, Ticket.opened_at)
        ).all()
        yield _histogram(
            "supportline_page_latency_seconds",
            "P1 ticket opened to first page sent",
            [_seconds(b - a) for a, b in first_pages],
        )
        acks = s.execute(
            select(Escalation.started_at, Escalation.acknowledged_at).where(
                Escalation.acknowledged_at.is_not(None), Escalation.started_at >= since
            )
        ).all()
        yield _histogram(
            "supportline_ack_latency_seconds",
            "Paging started to acknowledgement",
            [_seconds(b - a) for a, b in acks],
        )

    def _transcriptions(self, s: Session, since: datetime) -> Iterator[Metric]:
        """Transcription latency and real-time factor over the window, and tickets by transcription state."""
        done = s.execute(
            select(Ticket.transcription_requested_at, AuditEntry.at, AuditEntry.detail)
            .join(AuditEntry, AuditEntry.ticket_id == Ticket.id)
            .where(AuditEntry.action == "transcribed", AuditEntry.at >= since)
        ).all()
        yield _histogram(
            "supportline_transcription_latency_seconds",
            "Recording complete to transcript on the ticket",
            [_seconds(at - requested) for requested, at, _d in done if requested is not None],
        )
        rtf = [
            float(d["seconds"]) / float(d["audio_seconds"])
            for _r, _a, d in done
            if _positive(d, "seconds") and _positive(d, "audio_seconds")
        ]
        yield _histogram(
            "supportline_transcription_rtf",
            "Transcription real-time factor (wall / audio seconds)",
            rtf,
            (0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
        )
        states = GaugeMetricFamily("supportline_transcriptions", "Tickets by transcription state", labels=["state"])
        for state, n in s.execute(
            select(Ticket.transcription_state, func.count()).group_by(Ticket.transcription_state)
        ):
            states.add_metric([state], n)
        yield states

    # --- failed writes and refused sign-in mail -------------------------------------------------------------

    def _database_takes_writes(self) -> int:
        """1 when the database commits a write (the readiness check's): a full disk still answers reads."""
        from web.health import database_write_failure

        return 0 if database_write_failure(self.runtime) is not None else 1

    def _sign_in_mail(self, s: Any) -> Iterator[Metric]:
        """Sign-in link emails the mail server refused (or that could not be handed to it), from the audit trail."""
        failed = CounterMetricFamily(
            "supportline_sign_in_link_failures",
            "Portal sign-in link emails that could not be sent (the mail server refused or was unreachable)",
        )
        failed.add_metric(
            [], s.scalar(select(func.count(PortalSignInEvent.id)).where(PortalSignInEvent.event == SEND_FAILED)) or 0
        )
        yield failed

    def _unreached(self, s: Any) -> Iterator[Metric]:
        """P1 escalations whose step wait passed with no page delivered: open now, and ever."""
        from ticketing.paging import ACKNOWLEDGEABLE, provider_failing

        now_open = s.scalar(
            select(func.count(Escalation.id)).where(
                Escalation.unreached_since.is_not(None),
                Escalation.acknowledged_at.is_(None),
                Escalation.state.in_(ACKNOWLEDGEABLE),
            )
        )
        gauge = GaugeMetricFamily(
            "supportline_p1_unreached",
            "Open P1 tickets still being paged with no page delivered after the first step's wait",
        )
        gauge.add_metric([], now_open or 0)
        yield gauge
        ever = s.scalar(
            select(func.count(func.distinct(AuditEntry.ticket_id))).where(AuditEntry.action == "nobody reached")
        )
        counter = CounterMetricFamily(
            "supportline_p1_nobody_reached", "P1 tickets that had no page delivered after the first step's wait"
        )
        counter.add_metric([], ever or 0)
        yield counter
        waiting, _error = provider_failing(s)
        retrying = GaugeMetricFamily("supportline_pages_retrying", "Pages waiting for Twilio or the mail server")
        retrying.add_metric([], waiting)
        yield retrying

    def _outbox_failed(self, s: Any) -> Iterator[Metric]:
        """Outbox messages given up after OUTBOX_MAX_ATTEMPTS (until someone sends them again), by kind."""
        failed = GaugeMetricFamily(
            "supportline_outbox_failed", "Outbox messages marked failed after their last attempt", labels=["kind"]
        )
        for kind, n in s.execute(
            select(OutboxMessage.kind, func.count())
            .where(OutboxMessage.failed_at.is_not(None))
            .group_by(OutboxMessage.kind)
        ):
            failed.add_metric([kind], n)
        yield failed

    def _webhooks(self, s: Any) -> Iterator[Metric]:
        """Outbound webhooks: endpoints disabled after 24 hours of failures, deliveries pending and failed."""
        counts = webhooks.counts(s)
        disabled = GaugeMetricFamily(
            "supportline_webhook_endpoints_disabled", "Webhook endpoints disabled after failing for 24 hours"
        )
        disabled.add_metric([], counts["disabled"])
        yield disabled
        deliveries = GaugeMetricFamily(
            "supportline_webhook_deliveries", "Webhook deliveries not delivered, by state", labels=["state"]
        )
        for state in ("pending", "failed"):
            deliveries.add_metric([state], counts[state])
        yield deliveries

    def _queue(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "supportline_queue_jobs",
            "Jobs in the RQ queues (paging, main and second readings) by state",
            labels=["state"],
        )
        queues = self.runtime.queues()
        depth.add_metric(["queued"], sum(q.count for q in queues))
        depth.add_metric(["started"], sum(StartedJobRegistry(queue=q).count for q in queues))
        depth.add_metric(["scheduled"], sum(ScheduledJobRegistry(queue=q).count for q in queues))
        depth.add_metric(["failed"], sum(FailedJobRegistry(queue=q).count for q in queues))
        yield depth


def _seconds(delta: timedelta) -> float:
    return max(delta.total_seconds(), 0.0)


def _positive(detail: Any, key: str) -> bool:
    try:
        return float(detail.get(key) or 0) > 0
    except (TypeError, ValueError, AttributeError):
        return False


@blueprint.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition."""
    registry = CollectorRegistry()
    registry.register(SupportlineCollector(rt()))  # type: ignore[arg-type]
    return Response(generate_latest(registry), mimetype="text/plain; version=0.0.4")

"""The one job table: each kind of outbox message, the job function that does it and the queue it waits on.

Jobs are named by reference here; RQ stores a job's dotted name (``workers.jobs.transcribe_recording``) in
Redis, so a job function that moves leaves an alias at its old name for one release (the test of this table
resolves every name a previous release could have queued).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from integrations import bridge as psa_bridge
from integrations import webhook_jobs
from runtime import PAGING_QUEUE_NAME, QUEUE_NAME, REFINE_QUEUE_NAME, TEXTS_QUEUE_NAME
from ticketing import outbox
from workers import jobs, mail, paging, portal
from workers import texts as text_jobs


@dataclass(frozen=True)
class Job:
    """A job function and the name of the queue it goes on."""

    function: Callable[..., Any]
    queue: str


# outbox kind -> job. Pages and their follow-ups have a queue of their own (served first, and by the pager);
# the caller's "new ticket created" SMS never waits behind a transcription (its own queue, served by the pager
# too); translations of transcripts follow them on the main queue; second readings wait behind everything else.
JOBS: dict[str, Job] = {
    outbox.TRANSCRIBE: Job(jobs.transcribe_recording, QUEUE_NAME),
    outbox.CONFIRM: Job(jobs.send_confirmation, TEXTS_QUEUE_NAME),
    outbox.TRANSLATE: Job(jobs.translate_transcript, QUEUE_NAME),
    outbox.PAGE: Job(jobs.page_on_call, PAGING_QUEUE_NAME),
    outbox.TRANSCRIPT_READY: Job(jobs.transcript_ready, PAGING_QUEUE_NAME),
    outbox.NUMBERS_TO_CHECK: Job(jobs.numbers_to_check, PAGING_QUEUE_NAME),
    outbox.REFINE: Job(jobs.refine_transcript, REFINE_QUEUE_NAME),
    outbox.PORTAL_LINK: Job(portal.send_sign_in_link, QUEUE_NAME),
    outbox.NOTIFY: Job(mail.notify_ticket_event, QUEUE_NAME),
    outbox.DELIVER: Job(mail.deliver_message, QUEUE_NAME),
    outbox.MAIL_IN: Job(mail.ingest_mail, QUEUE_NAME),
    outbox.SMS_MEDIA: Job(text_jobs.fetch_text_media, QUEUE_NAME),
    outbox.PSA_SYNC: Job(psa_bridge.sync, QUEUE_NAME),
    outbox.WEBHOOK: Job(webhook_jobs.deliver, QUEUE_NAME),
}

# Jobs queued without an outbox message: the timers of an escalation (RQ scheduled jobs).
SCHEDULED: dict[str, Job] = {
    "escalation step": Job(paging.escalation_step, PAGING_QUEUE_NAME),
}


def job_for(kind: str) -> Job:
    """The job of an outbox kind."""
    return JOBS[kind]

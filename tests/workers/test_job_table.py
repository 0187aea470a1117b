"""The job table: every outbox kind has a job, and every job name a previous release queued still resolves."""

from __future__ import annotations

import pytest
from rq.utils import import_attribute

from ticketing import outbox
from workers.table import JOBS, SCHEDULED

# The dotted names the previous release put in Redis (outbox dispatch and the escalation timers). RQ resolves
# a queued job's ``func_name`` with ``import_attribute`` when it runs it, so each must keep working one release.
QUEUED_BEFORE = {
    "workers.jobs.transcribe_recording": outbox.TRANSCRIBE,
    "workers.jobs.send_confirmation": outbox.CONFIRM,
    "workers.jobs.page_on_call": outbox.PAGE,
    "workers.jobs.transcript_ready": outbox.TRANSCRIPT_READY,
    "workers.jobs.numbers_to_check": outbox.NUMBERS_TO_CHECK,
    "workers.jobs.refine_transcript": outbox.REFINE,
    "workers.portal.send_sign_in_link": outbox.PORTAL_LINK,
    "workers.mail.notify_ticket_event": outbox.NOTIFY,
    "workers.mail.deliver_message": outbox.DELIVER,
    "workers.mail.ingest_mail": outbox.MAIL_IN,
}
SCHEDULED_BEFORE = {"workers.paging.escalation_step": "escalation step"}


def _outbox_kinds() -> set[str]:
    return {
        value
        for name, value in vars(outbox).items()
        if name.isupper() and isinstance(value, str) and name != "WRITTEN"  # WRITTEN: a Session.info key
    }


def test_the_table_has_a_job_for_every_kind_of_outbox_message() -> None:
    assert set(JOBS) == _outbox_kinds()


@pytest.mark.parametrize("name", sorted(QUEUED_BEFORE))
def test_a_job_queued_under_its_old_name_runs_the_function_the_table_uses(name: str) -> None:
    assert import_attribute(name) is JOBS[QUEUED_BEFORE[name]].function


@pytest.mark.parametrize("name", sorted(SCHEDULED_BEFORE))
def test_a_timer_scheduled_under_its_old_name_runs_the_function_the_table_uses(name: str) -> None:
    assert import_attribute(name) is SCHEDULED[SCHEDULED_BEFORE[name]].function


def test_every_job_goes_on_a_queue_a_worker_serves() -> None:
    from runtime import PAGING_QUEUE_NAME, QUEUE_NAME, REFINE_QUEUE_NAME, TEXTS_QUEUE_NAME

    served = {QUEUE_NAME, PAGING_QUEUE_NAME, TEXTS_QUEUE_NAME, REFINE_QUEUE_NAME}
    assert {job.queue for job in [*JOBS.values(), *SCHEDULED.values()]} <= served


def test_the_callers_confirmation_sms_never_shares_a_queue_with_a_transcription_or_a_translation() -> None:
    from runtime import TEXTS_QUEUE_NAME

    assert JOBS[outbox.CONFIRM].queue == TEXTS_QUEUE_NAME
    assert JOBS[outbox.TRANSCRIBE].queue != TEXTS_QUEUE_NAME and JOBS[outbox.TRANSLATE].queue != TEXTS_QUEUE_NAME

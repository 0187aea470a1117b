"""The sweeper: re-derives pending work from the database, so nothing waits on a lost job.

``python -m workers.sweeper`` runs it every few seconds. Any number may run:
every step claims rows atomically and jobs are idempotent.
- hands undispatched outbox messages to Redis (Redis was down when a webhook ran);
- re-dispatches messages whose job vanished (Redis restarted) or died (worker killed);
- re-derives due escalation steps of P1 pages.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import clean_registries
from rq.scheduler import RQScheduler
from sqlalchemy import select

from ticketing import service
from ticketing.models import OutboxMessage
from workers import runtime as rt
from workers.logs import configure
from workers.outbox import dispatch_pending, job_id_for
from workers.retention import purge_expired
from workers.worker import is_alive

log = logging.getLogger(__name__)
DEAD = {JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}


def requeue_lost(runtime: rt.Runtime, stale_after: timedelta | None = None) -> int:
    """Put back in the outbox every dispatched, unfinished message whose job is gone or dead."""
    stale_after = stale_after or timedelta(minutes=runtime.settings.transcription_pending_minutes)
    cutoff = runtime.now() - stale_after
    try:
        for queue in runtime.queues():
            clean_registries(queue)  # RQ's own maintenance: jobs of killed workers leave 'started'
    except Exception:  # noqa: BLE001 - a broken registry entry must not stop the sweep below
        log.exception("cleaning RQ registries failed")
    requeued = 0
    with runtime.sessions.begin() as s:
        rows = s.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.dispatched_at.is_not(None),
                OutboxMessage.dispatched_at < cutoff,
                OutboxMessage.completed_at.is_(None),
            )
            .limit(200)
        ).all()
        for message in rows:
            try:
                job = Job.fetch(job_id_for(message.key), connection=runtime.redis)
                status = job.get_status(refresh=True)
            except NoSuchJobError:
                job, status = None, None
            if status == JobStatus.STARTED and job is not None and not is_alive(runtime.redis, job.worker_name):
                status = JobStatus.FAILED  # its worker was killed outright; RQ would notice only after the timeout
            if status is not None and status not in DEAD:
                continue
            if message.attempts >= runtime.settings.outbox_max_attempts:
                # The last attempt failed too: mark it failed where people look (the ticket, /metrics), never
                # a silent stop, nor another dispatch that fails the same way for ever.
                reason = job_error(job) or f"the job was {status or 'lost'}"
                service.outbox_failed(s, message, reason, runtime.now())
                log.error("outbox %s: failed after %d attempts: %s", message.key, message.attempts, reason)
                continue
            log.warning("outbox %s: job %s, dispatching again", message.key, status or "lost")
            message.dispatched_at = None
            requeued += 1
    return requeued


def job_error(job: Job | None) -> str | None:
    """The last line of a failed job's traceback (``NoticeConfigError: templates.reply: ...``), if RQ kept it."""
    if job is None:
        return None
    lines = [line.strip() for line in (job.exc_info or "").splitlines() if line.strip()]
    return lines[-1][:500] if lines else None


def stand_in_scheduler(runtime: rt.Runtime) -> None:
    """Move due retries and timers into the queue when no worker's scheduler holds the lock.

    RQ's scheduler process exits on its first Redis error and its worker restarts it
    only in a maintenance pass (up to ten minutes later); a killed worker's lock blocks
    the next one too. The lock makes this a no-op while a live scheduler runs.
    """
    scheduler = RQScheduler(runtime.queues(), connection=runtime.redis)
    if scheduler.acquire_locks():
        try:
            scheduler.enqueue_scheduled_jobs()
        finally:
            scheduler.release_locks()


def sweep_once(runtime: rt.Runtime) -> dict[str, int]:
    """One pass of every sweep; Redis being down only delays the passes that need it."""
    done = {"dispatched": 0, "requeued": 0, "escalations": 0, "purged": 0}
    try:
        done["requeued"] = requeue_lost(runtime)
        done["dispatched"] = dispatch_pending(runtime)
        stand_in_scheduler(runtime)
    except (RedisError, OSError) as exc:
        log.warning("sweeper: redis unavailable (%s)", type(exc).__name__)
    done["purged"] = purge_expired(runtime)
    try:
        from workers.paging import sweep_escalations
    except ImportError:  # paging not installed in this build
        return done
    done["escalations"] = sweep_escalations(runtime)
    return done


def main(interval: float = 5.0) -> None:
    """Sweep forever."""
    runtime = rt.current()
    configure(runtime.settings.log_format)
    while True:
        try:
            sweep_once(runtime)
        except Exception:  # noqa: BLE001 - the sweeper must outlive a database blip
            log.exception("sweep failed")
        time.sleep(interval)


if __name__ == "__main__":
    main()

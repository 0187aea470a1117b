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
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry, clean_registries
from rq.scheduler import RQScheduler
from sqlalchemy import select, update

import runtime as rt
from integrations import bridge as psa_bridge
from integrations import webhooks
from runtime.heartbeat import is_alive
from runtime.logs import configure
from ticketing import lifecycle, outbox
from ticketing.models import OutboxMessage
from workers.dispatch import dispatch_pending, job_id_for
from workers.retention import purge_expired

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
                lifecycle.outbox_failed(s, message, reason, runtime.now())
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
    result = job.latest_result()
    failed = result is not None and result.type == result.Type.FAILED
    lines = [line.strip() for line in ((result.exc_string if failed else None) or "").splitlines() if line.strip()]
    return lines[-1][:500] if lines else None


def requeue_orphaned(runtime: rt.Runtime) -> int:
    """Dispatch again, within seconds, every unfinished message whose job's worker was killed outright.

    A worker's heartbeat key lapses three beats after it dies (``WORKER_HEARTBEAT_SECONDS``), so its job is
    dispatched again about half a minute later, not after RQ's job timeout or TRANSCRIPTION_PENDING_MINUTES.
    The dead execution is taken out of RQ's StartedJobRegistry first: left there, RQ's own clean-up would
    retry the job at its timeout and it would run a second time. A worker must be found silent for one
    and a half beats more before its job is taken: right after a Redis restart every heartbeat key is gone
    until each live worker's next beat, and a live worker's job must not run twice.
    """
    started = [
        (registry, job_id, execution_id)
        for queue in runtime.queues()
        for registry in [StartedJobRegistry(queue=queue)]
        for job_id, execution_id in registry.get_job_and_execution_ids(cleanup=False)
    ]
    if not started:
        return 0
    table = OutboxMessage.__table__
    with runtime.engine.connect() as conn:
        in_flight = {
            job_id_for(key): (row_id, attempts)
            for row_id, key, attempts in conn.execute(
                select(table.c.id, table.c.key, table.c.attempts).where(
                    table.c.dispatched_at.is_not(None), table.c.completed_at.is_(None)
                )
            )
        }
    orphaned: list[tuple[int, int]] = []
    silent: dict[str, float] = runtime.cache.setdefault("silent-workers", {})  # execution -> first seen silent
    grace = 1.5 * runtime.settings.worker_heartbeat_seconds
    seen: set[str] = set()
    for registry, job_id, execution_id in started:
        row = in_flight.get(job_id)
        if row is None or row[1] >= runtime.settings.outbox_max_attempts:
            continue  # not ours, or out of attempts: requeue_lost gives it up, visibly
        try:
            job = Job.fetch(job_id, connection=runtime.redis)
        except NoSuchJobError:
            continue  # requeue_lost dispatches a vanished job again
        if job.get_status(refresh=False) != JobStatus.STARTED or is_alive(runtime.redis, job.worker_name):
            continue
        execution = f"{job_id}:{execution_id}"
        seen.add(execution)
        if time.monotonic() - silent.setdefault(execution, time.monotonic()) < grace:
            continue
        registry.remove_execution(Execution(execution_id, job_id, connection=runtime.redis))
        orphaned.append(row)
        log.warning("outbox job %s: its worker %s is dead, dispatching again", job_id, job.worker_name)
    for execution in set(silent) - seen:
        del silent[execution]  # its worker beats again, or the job finished or was taken
    requeued = 0
    with runtime.engine.begin() as conn:
        for row_id, attempts in orphaned:
            # Only the dispatch seen above: a second sweeper that already dispatched it again (attempts + 1)
            # is not undone, so the job is never in the queue twice.
            requeued += conn.execute(
                update(table)
                .where(table.c.id == row_id, table.c.attempts == attempts, table.c.completed_at.is_(None))
                .values(dispatched_at=None, last_error="its worker died while running it: dispatched again")
            ).rowcount
    return requeued


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


def webhook_pass(runtime: rt.Runtime) -> int:
    """Outbound webhooks: events newly in the audit log (or SLA breaches) become deliveries; due ones get a job."""
    try:
        with runtime.sessions.begin() as s:
            return webhooks.record_events(s, runtime.now(), outbox.WEBHOOK)
    except Exception:  # noqa: BLE001 - webhooks must never stop the sweeps the helpdesk depends on
        log.exception("webhook pass failed")
        return 0


def sweep_once(runtime: rt.Runtime) -> dict[str, int]:
    """One pass of every sweep; Redis being down only delays the passes that need it."""
    done = {"dispatched": 0, "requeued": 0, "escalations": 0, "purged": 0}
    done["webhooks"] = webhook_pass(runtime)
    try:
        with runtime.sessions.begin() as s:
            psa_bridge.post_sync(s, runtime)  # the PSA bridge's pass (nothing when no PSA is configured)
    except Exception:  # noqa: BLE001 - a bad PSA file must not stop the sweep below
        log.exception("recording the PSA bridge's job failed")
    try:
        done["requeued"] = requeue_lost(runtime) + requeue_orphaned(runtime)
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

"""The RQ worker process: ``python -m workers.worker`` (runs the scheduler too).

A worker serves the paging queue first, then the main queue, then the refine queue (second
readings of transcripts, so a first transcript never waits behind one); ``--paging-only`` serves only the
paging queue and the callers' confirmation SMS (the ``pager`` process), which a long transcription can
therefore never hold up.

Jobs run inside the worker process (RQ's SimpleWorker) rather than in a forked
child per job: the Whisper model is loaded once per process at start-up, and
CTranslate2 is not safe to use in a child forked after it loaded (measured
here: the child dies). A heartbeat thread marks this worker alive in Redis, so
the sweeper can tell a job whose worker was killed outright from a slow one.
"""

from __future__ import annotations

import logging
import os
import time

from redis.exceptions import RedisError
from rq import SimpleWorker

import runtime as rt
from runtime.heartbeat import start_heartbeat
from runtime.logs import configure

log = logging.getLogger(__name__)
RECONNECT_WAIT_MAX_SECONDS = 5.0


def main(argv: list[str] | None = None) -> None:
    """Build this process's runtime and model once, then work the queues with the scheduler on.

    ``--paging-only`` (the Procfile's ``pager``): serve the paging queue, then the callers' confirmation
    SMS, and load no model, so a page, an acknowledgement follow-up, an escalation step or a caller's
    "new ticket created" text never waits behind a transcription.
    A plain worker serves the paging queue first, then the main one, then second readings.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m workers.worker")
    parser.add_argument(
        "--paging-only", action="store_true", help="serve only pages and callers' confirmation SMS (no Whisper model)"
    )
    args = parser.parse_args(argv)
    runtime = rt.current()
    configure(runtime.settings.log_format)
    from workers.jobs import warm_up
    from workers.mail import notices

    notices(runtime)  # a broken notices file (config/mail.toml) stops the worker here, naming the key

    if args.paging_only:
        model, queues = None, [runtime.paging_queue(), runtime.texts_queue()]
    else:
        # Transcription and mail parsing are throughput work: on shared cores they wait for the
        # webhooks Twilio and the mail provider time, and for the pager (which keeps its priority).
        lower_priority(runtime.settings.worker_nice)
        model, queues = warm_up(runtime), runtime.queues()
    work_until_stopped(runtime, queues, model)


def lower_priority(increment: int) -> int:
    """Raise this process's nice value by ``increment`` (0 leaves it); returns the nice value now."""
    return os.nice(increment) if increment else os.nice(0)


def work_until_stopped(runtime: rt.Runtime, queues: list, model: str | None) -> None:
    """Work the queues until told to stop (SIGTERM/SIGINT). RQ's worker quits on some Redis errors
    (it logs "found an unhandled exception, quitting"); this process instead starts a fresh worker once
    Redis answers again, keeping the loaded model, so a Redis restart never takes the worker away."""
    pause = 0.5
    while True:
        try:
            worker = SimpleWorker(queues, connection=runtime.redis)
        except RedisError as exc:  # RQ names its connection at once: Redis is still away
            log.warning("worker waiting for Redis (%s): next try in %.1f s", type(exc).__name__, pause)
            time.sleep(pause)
            pause = min(pause * 2, RECONNECT_WAIT_MAX_SECONDS)
            continue
        # RQ waits up to 60 s between reconnection tries once Redis is gone; a page must not sit that long
        # after Redis is back.
        worker.max_connection_wait_time = RECONNECT_WAIT_MAX_SECONDS
        stop = start_heartbeat(runtime.redis, worker.name, runtime.settings.worker_heartbeat_seconds, model)
        try:
            worker.work(with_scheduler=True)
        except RedisError as exc:  # raised by RQ's teardown when Redis went away
            log.warning("worker %s lost Redis (%s)", worker.name, type(exc).__name__)
        finally:
            stop.set()
        # RQ records a SIGTERM/SIGINT here before it stops (an idle worker never sets _stop_requested).
        if worker._shutdown_requested_date is not None or worker._stop_requested:
            return
        log.warning("worker %s stopped without being asked to: starting a fresh one in %.1f s", worker.name, pause)
        time.sleep(pause)
        pause = min(pause * 2, RECONNECT_WAIT_MAX_SECONDS)


if __name__ == "__main__":
    main()

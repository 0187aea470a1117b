"""The RQ worker process: ``python -m workers.worker`` (runs the scheduler too)."""

from __future__ import annotations

from rq import Worker

from workers import runtime as rt
from workers.logs import configure


def main() -> None:
    """Build this process's runtime once, then work the queue with the scheduler on."""
    runtime = rt.current()
    configure(runtime.settings.log_format)
    worker = Worker([runtime.queue()], connection=runtime.redis)
    worker.work(with_scheduler=True)


if __name__ == "__main__":
    main()

"""The RQ worker process: ``python -m workers.worker`` (runs the scheduler too)."""

from __future__ import annotations

import logging

from rq import Worker

from workers import runtime as rt


def main() -> None:
    """Build this process's runtime once, then work the queue with the scheduler on."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    runtime = rt.current()
    worker = Worker([runtime.queue()], connection=runtime.redis)
    worker.work(with_scheduler=True)


if __name__ == "__main__":
    main()

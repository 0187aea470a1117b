"""The bridge as it runs in production: the sweeper records its job, an RQ worker runs it, ConnectWise fails once."""

from __future__ import annotations

from pathlib import Path

from rq import SimpleWorker
from sqlalchemy import select

from integrations.psa_models import PsaOperation
from runtime import Runtime
from tests.conftest import FixedClock
from tests.integrations.conftest import BOARD, CREDENTIALS, Bridge
from tests.integrations.test_connectwise import _three_tickets
from ticketing import outbox
from ticketing.models import OutboxMessage
from workers.sweeper import sweep_once


def test_the_sweeper_and_a_worker_put_each_ticket_into_connectwise_once_despite_a_failure(
    runtime: Runtime, connectwise: Bridge, clock: FixedClock, redis_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "connectwise.toml"
    lines = [f'{k} = "{v}"' for k, v in CREDENTIALS.items()]
    lines += [f'site = "{connectwise.standin.url}"', f"board_id = {BOARD}", "default_company_id = 19297"]
    path.write_text("\n".join([*lines, "[companies]", '"Acme Dental" = 250']) + "\n")
    runtime.settings = runtime.settings.with_overrides(connectwise_file=path)
    numbers = _three_tickets(runtime)
    connectwise.standin.fail_next(503, 502)  # ConnectWise is down for the first two requests
    for _ in range(4):
        sweep_once(runtime)
        SimpleWorker(runtime.queues(), connection=runtime.redis).work(burst=True)
        clock.advance(seconds=61)
    created = connectwise.standin.created()
    assert sorted(int(t["summary"].split()[0][1:]) for t in created) == sorted(numbers.values())
    with runtime.sessions() as s:
        jobs = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == outbox.PSA_SYNC)).all()
        assert jobs and all(j.completed_at is not None and j.failed_at is None for j in jobs)
        retried = s.scalars(select(PsaOperation).where(PsaOperation.op == "create", PsaOperation.attempts > 1)).all()
        assert retried and all(op.state == "done" for op in retried)

"""Health probes and Prometheus metrics, derived from the database and Redis."""

from __future__ import annotations

import time

import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from ivr.simulate import CallPlan, TwilioSimulator
from runtime.heartbeat import start_heartbeat
from tests.e2e.conftest import Service
from ticketing import lifecycle
from ticketing.db import transaction
from ticketing.models import Ticket


def samples(live: Service) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = requests.get(live.url + "/metrics", timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_calls_tickets_and_the_queue(sim: TwilioSimulator, live: Service, voicemail_wav: bytes) -> None:
    sim.call("+18055550142", CallPlan(keys=["2"], audio=voicemail_wav))
    sim.call("+18055550143", CallPlan(keys=[], coordinator="busy", audio=None))
    live.runtime.queue()  # the queue exists before anything is dispatched
    m = samples(live)
    assert m[("supportline_calls_total", (("outcome", "received"),))] == 2
    assert m[("supportline_calls_total", (("outcome", "voicemail"),))] == 1
    assert m[("supportline_calls_total", (("outcome", "no message"),))] == 1
    assert m[("supportline_tickets_total", (("priority", "P1"), ("source", "voicemail")))] == 1
    assert m[("supportline_tickets_total", (("priority", "P3"), ("source", "voicemail")))] == 1
    assert m[("supportline_open_tickets", (("priority", "P1"),))] == 1
    assert m[("supportline_dependency_up", (("dependency", "redis"),))] == 1
    assert m[("supportline_queue_jobs", (("state", "queued"),))] == 0  # jobs still in the outbox

    # A re-triage moves the ticket between the open gauges, never between the counts of tickets opened.
    with transaction(live.runtime.sessions) as s:
        t = s.scalars(select(Ticket).where(Ticket.priority == "P3")).one()
        lifecycle.change_priority(
            s, t, "P2", reason="whole office down", actor="tests", now=live.runtime.now(), policy=live.runtime.policy
        )
    m = samples(live)
    assert m[("supportline_tickets_total", (("priority", "P3"), ("source", "voicemail")))] == 1
    assert ("supportline_tickets_total", (("priority", "P2"), ("source", "voicemail"))) not in m
    assert m[("supportline_open_tickets", (("priority", "P2"),))] == 1
    assert ("supportline_open_tickets", (("priority", "P3"),)) not in m


def test_health_and_readiness(live: Service) -> None:
    assert requests.get(live.url + "/healthz", timeout=5).json() == {"status": "ok"}
    no_worker = requests.get(live.url + "/readyz", timeout=5)
    assert no_worker.status_code == 503 and "model" in no_worker.json()["failing"]
    stop = start_heartbeat(live.runtime.redis, "test-worker", 1, "faster-whisper (tiny.en)")
    try:
        time.sleep(0.2)
        ready = requests.get(live.url + "/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
    finally:
        stop.set()
    live.runtime.settings = live.runtime.settings.with_overrides(redis_url="redis://127.0.0.1:1/0")
    live.runtime._redis = None
    live.runtime.redis_timeout = 0.5
    down = requests.get(live.url + "/readyz", timeout=5)
    assert down.status_code == 503 and "redis" in down.json()["failing"]

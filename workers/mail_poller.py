"""The IMAP poller process (Procfile ``mail``): reads the helpdesk mailbox with ``inbox.imap`` and hands each
stored batch's parsing jobs to Redis at once."""

from __future__ import annotations

import logging
import signal
import threading

from inbox import imap
from runtime import Runtime, build_runtime
from runtime.logs import configure
from settings import ImapTarget, Settings, load_settings
from workers.dispatch import dispatch_pending

log = logging.getLogger(__name__)


def poll_once(runtime: Runtime, client, target: ImapTarget, selected: dict) -> int:  # type: ignore[no-untyped-def]
    """Store every message above the cursor and hand each batch's parsing jobs to Redis; returns how many were new."""
    return imap.poll_once(runtime, client, target, selected, after_batch=lambda: dispatch_pending(runtime))


def run(settings: Settings, stop: threading.Event) -> None:
    """Poll until ``stop`` is set; IDLE when offered. Connection errors back off and reconnect."""
    runtime = build_runtime(settings)
    try:
        _loop(runtime, settings, stop)
    finally:
        runtime.close()


def _loop(runtime: Runtime, settings: Settings, stop: threading.Event) -> None:
    backoff = 1.0
    while not stop.is_set():
        try:
            client, target, selected = imap.connect(settings)
            log.info(
                "IMAP poller reading %s (IDLE %s)", target.mailbox, "yes" if client.has_capability("IDLE") else "no"
            )
            backoff = 1.0
            with client:
                while not stop.is_set():
                    count = poll_once(runtime, client, target, selected)
                    if count:
                        log.info("%s: %d new messages stored", target.mailbox, count)
                    if client.has_capability("IDLE"):
                        client.idle()
                        # Woken by the server (new mail), or every 5 s to notice a stop request.
                        waited = 0
                        while not stop.is_set() and waited < settings.imap_idle_seconds:
                            if client.idle_check(timeout=5):
                                break
                            waited += 5
                        client.idle_done()
                    else:
                        stop.wait(settings.imap_poll_seconds)
                    selected = client.select_folder(target.folder, readonly=True)
        except Exception as exc:  # noqa: BLE001 - any failure: log, back off, reconnect; nothing was marked read
            log.warning("IMAP poller: %s: %s; reconnecting in %.0f s", type(exc).__name__, exc, backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, 300)


def main() -> None:
    """Entry point: ``python -m workers.mail_poller`` (idles quietly when IMAP_URL is not set, so honcho keeps running)."""
    settings = load_settings()
    configure(settings.log_format)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if not settings.imap_url:
        log.info("IMAP poller off: IMAP_URL is not set (mail can still arrive by the inbound webhooks)")
        while not stop.wait(3600):
            pass
        return
    run(settings, stop)


if __name__ == "__main__":
    main()

"""What the limits on hostile mail cost an ordinary message, and what they spare the worker.

    .venv/bin/python -m bench.hostile_mail [--runs 200]

Prints: the header caps' check per message; parsing an ordinary message in this process and through the
parsing child (``inbox.sandbox``: the pipe and pickling are the difference); starting the child; and, for
hostile messages, the time until each is refused and the worker process's peak memory meanwhile.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections.abc import Callable

from inbox.limits import MailLimits, MessageOverLimit, check_headers
from inbox.parse import parse
from inbox.sandbox import Sandbox


def ordinary() -> bytes:
    """A typical client mail: multipart/alternative, a short text and its HTML, a small PDF attached."""
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"] = "Dana Whitfield <dana@acme-dental.example>"
    msg["To"] = "help@itech.example"
    msg["Subject"] = "=?utf-8?q?Drucker_im_Empfang_ist_offline_=E2=80=93_bitte_helfen?="
    msg["Message-ID"] = "<bench-ordinary@acme-dental.example>"
    msg.set_content("The reception printer is offline since this morning.\n" * 20)
    msg.add_alternative("<p>The reception printer is <b>offline</b> since this morning.</p>" * 20, subtype="html")
    msg.add_attachment(b"%PDF-1.4\n" + b"0" * 60_000, maintype="application", subtype="pdf", filename="scan.pdf")
    return msg.as_bytes()


def per_call_ms(call: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median and 95th percentile of ``runs`` calls, in ms."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def main(argv: list[str] | None = None) -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(prog="python -m bench.hostile_mail")
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args(argv)
    limits = MailLimits()
    raw = ordinary()
    print(f"ordinary message: {len(raw)} bytes")
    median, p95 = per_call_ms(lambda: check_headers(raw, limits), args.runs)
    print(f"  header caps checked:           median {median:.3f} ms, p95 {p95:.3f} ms")
    median, p95 = per_call_ms(lambda: parse(raw, limits=limits), args.runs)
    print(f"  parsed in this process:        median {median:.2f} ms, p95 {p95:.2f} ms")
    box = Sandbox(memory_mb=512, timeout_seconds=30)
    started = time.perf_counter()
    box.parse(raw, limits)
    print(f"  parsing child started + first: {(time.perf_counter() - started) * 1000:.0f} ms (once per worker)")
    median, p95 = per_call_ms(lambda: box.parse(raw, limits), args.runs)
    print(f"  parsed in the child:           median {median:.2f} ms, p95 {p95:.2f} ms")

    from testing import hostile_mail as hostile

    cases = {
        "1.66 MiB Subject of encoded words (the incident)": hostile.encoded_word_subject(118_000),
        "6,000 encoded words, caps opened, 64 MiB budget": hostile.encoded_word_subject(6000),
        "4 MiB HTML, HTML cap opened, 1 s limit": hostile.big_html(4 * 1024 * 1024),
        "1,000 attachments": hostile.many_attachments(1000),
        "10,000 attachments": hostile.many_attachments(10_000),
    }
    wide = MailLimits(
        header_max_bytes=1 << 30,
        header_field_max_bytes=1 << 30,
        header_max_encoded_words=1 << 30,
        message_max_encoded_words=1 << 30,
        html_max_bytes=1 << 30,
    )
    tight = Sandbox(memory_mb=64, timeout_seconds=1)
    for name, message in cases.items():
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        if "opened" in name:
            outcome = _outcome(lambda m=message: tight.parse(m, wide))
        else:
            reason = check_headers(message, limits)
            outcome = f"refused: {reason}" if reason else _outcome(lambda m=message: box.parse(m, limits))
        seconds = time.perf_counter() - started
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
        print(f"{name}: {seconds:.2f} s, this process's peak +{grown:.0f} MiB: {outcome[:150]}")
    box.close()
    tight.close()


def _outcome(call: Callable[[], object]) -> str:
    try:
        mail = call()
    except MessageOverLimit as exc:
        return f"quarantined: {exc}"
    return f"parsed ({len(getattr(mail, 'attachments', []))} attachments read)"


if __name__ == "__main__":
    main()

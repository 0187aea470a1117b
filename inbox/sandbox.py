"""Parse mail from outside in a child process held to an address-space budget and a time limit.

The caps in ``inbox.limits`` keep the known costly inputs out; this keeps whatever is left unknown from
taking the worker with it. One child per worker process, started on first use with ``spawn`` (a fresh
interpreter: the worker's loaded transcription model and its threads are not safe to fork), lives for
many messages, and is replaced when it dies. In the child ``RLIMIT_AS`` allows its size after start-up
plus ``MAIL_PARSE_MAX_MEMORY_MB``, so a parse that needs more ends in MemoryError there; a parse that
takes longer than ``MAIL_PARSE_TIMEOUT_SECONDS`` is ended with SIGKILL. Either way the message is
quarantined with the reason and the worker carries on.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import resource
import signal
import threading
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from inbox.limits import MailLimits, MessageOverLimit
from inbox.parse import ParsedMail, UnparsableMessage, parse

log = logging.getLogger(__name__)
# How long a fresh child may take to start (a new interpreter importing the parser) before the parse's own
# clock starts: on a loaded machine that is seconds, and it must never count against a message.
STARTUP_SECONDS = 60.0
READY = "ready"


class ParserUnavailable(OSError):
    """The parsing child could not be started: a fault of this machine, never of the message.

    An OSError, so the mail job retries it with backoff as it does a full disk, and never quarantines
    the message for it.
    """


class Sandbox:
    """A parsing child process, started on first use and replaced when it dies or is ended."""

    def __init__(self, *, memory_mb: int, timeout_seconds: float) -> None:
        self.memory_mb = memory_mb
        self.timeout_seconds = timeout_seconds
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._lock = threading.Lock()  # one message at a time through the one pipe

    def parse(self, raw: bytes, limits: MailLimits) -> ParsedMail:
        """Parse ``raw`` in the child; MessageOverLimit (memory, time, a cap) or UnparsableMessage otherwise."""
        with self._lock:
            conn = self._ensure()
            try:
                kind, value = self._ask(conn, raw, limits)
            except BaseException:
                # Whatever interrupted the wait (RQ's job timeout, a shutdown), the child may still answer
                # this message later: it must never be read as the answer to the next one.
                self._end()
                raise
        if kind == "parsed":
            assert isinstance(value, ParsedMail)
            return value
        if kind == "memory":
            self.close()  # a process that ran out of memory may be left in a bad state: start afresh
            raise MessageOverLimit(f"parsing needed more than MAIL_PARSE_MAX_MEMORY_MB ({self.memory_mb} MiB)")
        if kind == "over-limit":
            raise MessageOverLimit(str(value))
        raise UnparsableMessage(str(value))

    def _ask(self, conn: Connection, raw: bytes, limits: MailLimits) -> tuple[str, Any]:
        try:
            conn.send_bytes(raw)
            conn.send((limits, self.timeout_seconds))
            ready = conn.poll(self.timeout_seconds)
        except OSError:  # the child died before it read the message
            self._end()
            raise MessageOverLimit("the parsing process died before reading the message") from None
        if not ready:
            self._end()
            raise MessageOverLimit(f"parsing took longer than MAIL_PARSE_TIMEOUT_SECONDS ({self.timeout_seconds:g} s)")
        try:
            answer: tuple[str, Any] = conn.recv()
        except (EOFError, OSError):
            code = self._end()
            raise MessageOverLimit(f"the parsing process died (exit code {code})") from None
        return answer

    def close(self) -> None:
        """End the child (if any)."""
        with self._lock:
            self._end()

    def _ensure(self) -> Connection:
        if self._process is not None and self._process.is_alive() and self._conn is not None:
            return self._conn
        self._end()
        context = multiprocessing.get_context("spawn")
        mine, theirs = context.Pipe()
        process = context.Process(target=serve, args=(theirs, self.memory_mb), name="mail-parser", daemon=True)
        process.start()
        theirs.close()
        self._process, self._conn = process, mine
        # The parse's time limit starts once the child has started and set its budget, not before.
        try:
            ready = mine.poll(STARTUP_SECONDS) and mine.recv() == READY
        except (EOFError, OSError):
            ready = False
        if not ready:
            code = self._end()
            raise ParserUnavailable(f"the mail parsing process did not start (exit code {code})")
        return mine

    def _end(self) -> int | None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()
        if process is None:
            return None
        if process.is_alive():
            process.kill()
        process.join(5)
        code = process.exitcode
        with contextlib.suppress(ValueError):
            process.close()
        return code


def serve(conn: Connection, memory_mb: int) -> None:
    """The child: hold this process to its budget, then parse messages from ``conn`` until it closes."""
    import inscriptis  # noqa: F401 - loaded before the budget is set, so its size is not counted against it

    _limit_address_space(memory_mb)
    conn.send(READY)
    while True:
        try:
            raw = conn.recv_bytes()
            limits, timeout = conn.recv()
        except (EOFError, OSError):
            return
        # A backstop should the worker die mid-parse and so never end this child: SIGALRM's default
        # action ends the process a little after the worker would have.
        signal.alarm(int(timeout) + 5)
        try:
            answer: tuple[str, Any] = ("parsed", parse(raw, limits=limits))
        except MemoryError:
            answer = ("memory", None)
        except MessageOverLimit as exc:
            answer = ("over-limit", str(exc))
        except UnparsableMessage as exc:
            answer = ("unparsable", str(exc))
        except RecursionError:
            answer = ("over-limit", "parts nested too deep to read")
        except Exception as exc:  # noqa: BLE001 - any parser failure on hostile input is this message's problem only
            answer = ("unparsable", f"{type(exc).__name__}: {exc}"[:500])
        signal.alarm(0)
        del raw
        try:
            conn.send(answer)
        except MemoryError:
            conn.send(("memory", None))
        if answer[0] == "memory":
            return


def _limit_address_space(memory_mb: int) -> None:
    size = _address_space_now()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    wanted = size + memory_mb * 1024 * 1024
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))
    log.debug("mail parser %s: address space %d MiB allowed (soft was %s)", os.getpid(), wanted >> 20, soft)


def _address_space_now() -> int:
    """This process's virtual size in bytes (Linux); 0 where /proc is not there."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0

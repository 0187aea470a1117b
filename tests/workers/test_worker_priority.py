"""The model-loading worker lowers its own CPU priority, so webhooks and the pager keep the shared cores."""

from __future__ import annotations

import os
import subprocess
import sys

from settings import load_settings


def test_worker_nice_defaults_to_ten_and_is_clamped() -> None:
    assert load_settings({}).worker_nice == 10
    assert load_settings({"WORKER_NICE": "0"}).worker_nice == 0
    assert load_settings({"WORKER_NICE": "40"}).worker_nice == 19


def test_lower_priority_raises_the_process_nice_value() -> None:
    # In a child process: a nice value cannot be lowered again without privileges.
    code = "import os; from workers.worker import lower_priority; print(os.nice(0), lower_priority(7))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    before, after = int(out[0]), int(out[1])
    assert after == min(before + 7, 19)
    assert os.nice(0) == before  # the test process itself is untouched

"""Text rules, pure: what may go into a one-line field (a summary, a mail header, a file name)."""

from __future__ import annotations

import re

# C0 and C1 control characters (CR, LF, TAB, NUL, ESC...) and the Unicode line and paragraph separators:
# none belongs in a header or a one-line field, and Python's email package refuses any line break in a header.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def one_line(text: str | None) -> str:
    """``text`` as one safe line: control characters and line breaks become single spaces, runs of spaces one."""
    return " ".join(_CONTROL.sub(" ", text or "").split())

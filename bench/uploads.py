"""Portal upload sizes: which files Werkzeug's multipart parser takes under the app-wide form limit and under
the portal upload forms' own limit.

    .venv/bin/python -m bench.uploads [--tries 10]

Each size is tried ``--tries`` times with different random bytes (line breaks fall anywhere, as in real
files), parsed as Flask parses a request. Prints how many were accepted at each size.
"""

from __future__ import annotations

import argparse
import io
import random

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from settings import Settings
from web.portal.files import UPLOAD_FORM_MEMORY_BYTES

KIB = 1024
SIZES_KIB = (64, 128, 256, 450, 512, 1024, 4096, 9216, 10240)


def accepted(size: int, form_memory: int, seed: int) -> bool:
    """Whether one multipart body with a ``size``-byte file parses whole under ``form_memory``."""
    data = random.Random(seed).randbytes(size)
    body = {"summary": "Scanner writes broken PDFs", "attachments": (io.BytesIO(data), "scan.pdf")}
    request = Request(EnvironBuilder(method="POST", data=body).get_environ())
    request.max_form_memory_size = form_memory
    try:
        files = request.files
    except RequestEntityTooLarge:
        return False
    upload = files["attachments"]
    try:
        return upload.read() == data
    finally:
        upload.close()


def main() -> None:
    """Print the accepted share per file size under both limits."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tries", type=int, default=10)
    args = parser.parse_args()
    limits = {"app-wide form limit": Settings().max_request_bytes, "portal upload forms": UPLOAD_FORM_MEMORY_BYTES}
    for name, limit in limits.items():
        print(f"{name} ({limit // KIB} KiB):")
        for size_kib in SIZES_KIB:
            ok = sum(accepted(size_kib * KIB, limit, seed * 7919 + size_kib) for seed in range(args.tries))
            print(f"  {size_kib:>6} KiB file: {ok}/{args.tries} accepted")


if __name__ == "__main__":
    main()

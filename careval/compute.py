"""How much of the machine careval may use: threads and DuckDB's memory.

One setting for every part that runs in parallel: the DuckDB connections (``SET threads``,
``SET memory_limit``) and the matched study's pool of model fits
(:func:`careval.impact.parallel.each`). From the environment, so that a user on a shared
server caps a whole run (or a test run) without touching the study's specification, which
describes the study and not the machine:

- ``CAREVAL_THREADS``: a whole number from 1; default, the cores this process may use;
- ``CAREVAL_MEMORY_LIMIT``: DuckDB's memory limit, such as ``4GB`` or ``500MiB``; default,
  DuckDB's own (80% of the machine's memory).

Results do not depend on either: the fits are independent and each is computed alone.
"""

from __future__ import annotations

import os
import re
import threading

from careval.errors import ConfigError

THREADS = "CAREVAL_THREADS"
MEMORY_LIMIT = "CAREVAL_MEMORY_LIMIT"
_MEMORY = re.compile(r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE)


def threads() -> int:
    """The threads careval may use (``CAREVAL_THREADS``, else the cores available to it)."""
    text = os.environ.get(THREADS, "").strip()
    if not text:
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"{THREADS}={text!r}: allowed: a whole number from 1")
    return int(text)


def memory_limit() -> str | None:
    """DuckDB's memory limit (``CAREVAL_MEMORY_LIMIT``), or None for DuckDB's default."""
    text = os.environ.get(MEMORY_LIMIT, "").strip()
    if not text:
        return None
    if not _MEMORY.match(text):
        raise ConfigError(f"{MEMORY_LIMIT}={text!r}: allowed: a size such as 4GB, 1.5GiB or 500MB")
    return text.replace(" ", "")


def duckdb_settings() -> list[str]:
    """The ``SET`` statements that apply these to a DuckDB connection."""
    out = [f"SET threads = {threads()}"]
    if (limit := memory_limit()) is not None:
        out.append(f"SET memory_limit = '{limit}'")
    return out


# Held by code that changes the warning filters around a call (``warnings.catch_warnings`` saves
# and restores the process's filters, so two threads inside at once could leave them changed):
# such sections run one at a time when the matched study's fits share the cores.
WARNING_FILTERS = threading.Lock()

"""Writing outputs so that nothing is ever half-written.

Every command writes into a temporary place beside its output and moves it into place only
when complete: a failure leaves the previous output (or nothing) behind. Folders (datasets,
runs, models) are :mod:`careval.folders`'s.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from careval.errors import ConfigError


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and move it into place."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a directory; give a file name")
    if not path.parent.is_dir():
        raise ConfigError(f"{path}: the directory {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)

"""Writing outputs so that nothing is ever half-written.

Every command writes into a temporary place beside its output and moves it into place only
when complete: a failure leaves the previous output (or nothing) behind. Folders (datasets,
runs, models) are :mod:`careval.folders`'s.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import zipfile
from pathlib import Path

from careval.errors import ConfigError

# Limits on an archive read (a REFI-QDA project, an Excel workbook): beyond them it is refused
# before anything is unpacked, as a zip bomb or a file that is not what it claims.
MAX_ARCHIVE_BYTES = 512 * 1024 * 1024  # unpacked in all (and the most a bare XML file may be)
MAX_MEMBERS = 10_000
MAX_RATIO = 200  # unpacked / packed size of a member larger than RATIO_FROM_BYTES
RATIO_FROM_BYTES = 1024 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")


def sha256(path: Path) -> str:
    """SHA-256 of a file (hex), read a megabyte at a time: the hash provenance records."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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


def check_archive(z: zipfile.ZipFile, source: str, what: str = "an archive") -> None:
    """Refuse an archive whose members could escape it or expand beyond the limits.

    Raises
    ------
    ConfigError
        Naming the archive and the member: an absolute name, a drive letter, a backslash or a
        ``..`` part; more than :data:`MAX_MEMBERS` members; more than
        :data:`MAX_ARCHIVE_BYTES` unpacked in all; a member over :data:`RATIO_FROM_BYTES`
        that expands more than :data:`MAX_RATIO` times.
    """
    infos = z.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ConfigError(
            f"{source}: the archive has {len(infos):,} members; {what} has at most "
            f"{MAX_MEMBERS:,} here"
        )
    for i in infos:
        name = i.filename
        parts = name.split("/")
        if name.startswith("/") or _DRIVE.match(name) or "\\" in name or ".." in parts:
            raise ConfigError(
                f"{source}: archive member {name!r} has an absolute or parent-directory path; "
                "members must be relative paths inside the archive"
            )
        if i.file_size > RATIO_FROM_BYTES and i.file_size > MAX_RATIO * max(i.compress_size, 1):
            raise ConfigError(
                f"{source}: archive member {name!r} expands from {i.compress_size:,} to "
                f"{i.file_size:,} bytes (more than {MAX_RATIO} times): refused as a likely zip "
                "bomb"
            )
    total = sum(i.file_size for i in infos)
    if total > MAX_ARCHIVE_BYTES:
        largest = max(infos, key=lambda i: i.file_size)
        raise ConfigError(
            f"{source}: the archive unpacks to {total:,} bytes, more than {MAX_ARCHIVE_BYTES:,}"
            f" (512 MiB); its largest member is {largest.filename!r} ({largest.file_size:,} "
            "bytes)"
        )

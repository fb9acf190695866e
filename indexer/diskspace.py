"""Free-space checks before the index is written (or opened: see below).

The embedded store (qdrant-edge) memory-maps sparse files and fills them in as it goes: on a disk
that fills up, the first write into a page with no block behind it kills the process with SIGBUS
("Bus error", exit 135) — no exception, no message, nothing Python can catch. It does so even
when opening an index only to read it: opening the 3-movie test index on a tmpfs allocated
110 MiB (measured with ``df`` before and after ``open_store``; qdrant-edge 0.9.0 has no read-only
mode). So every command checks the free space of the index folder's disk first and fails with
one line naming the folder and the space it needs.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from scenesearch.indexer.errors import StoreError

MIB = 1 << 20
# Opening an embedded index, even to read it: 110 MiB measured (module docstring), with margin.
OPEN_RESERVE = 256 * MIB
# Free space kept before each movie is written (its shots, thumbnails and the engine's segment
# growth), on top of which the opening reserve must stay available.
WRITE_RESERVE = 256 * MIB


class DiskFullError(StoreError):
    """Not enough free space on the index folder's disk to go on safely."""


def free_bytes(path: str | os.PathLike) -> int:
    """Free bytes (for an unprivileged user) on the disk holding ``path`` or its nearest
    existing parent folder."""
    p = Path(os.path.abspath(os.fspath(path)))
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def require_free(path: str | os.PathLike, need: int, doing: str) -> None:
    """Raise :class:`DiskFullError` unless ``need`` bytes are free where ``path`` lives."""
    free = free_bytes(path)
    if free < need:
        raise DiskFullError(
            f"not enough free space for {doing} in {path}: {free / MIB:.0f} MiB free, about "
            f"{need / MIB:.0f} MiB needed (the embedded store maps its files and would crash "
            "on a full disk); free some space or use another --index folder"
        )


def is_disk_full(e: BaseException) -> bool:
    """An OSError (or its cause chain) saying the disk or quota is full."""
    for _ in range(8):  # a bounded walk down the cause chain (it may loop)
        if e is None:
            return False
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(e):
            return True
        e = e.__cause__ or e.__context__
    return False

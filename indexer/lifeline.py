"""Decode workers that never outlive the indexer.

``kill -9`` of the indexer runs no cleanup, so it cannot stop its decode worker processes; before
this module they lived on as orphans (≈ 190 MB each, decoding for nothing). Each worker calls
:func:`exit_with_parent` first thing and then ends by itself within about a second of the
indexer's death.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time

WATCH_PARENT_S = 1.0  # how often a decode worker checks that the indexer is still alive


def exit_with_parent(parent_pid: int) -> None:
    """Make this decode worker end when the indexer process ends, even by ``kill -9`` (which
    runs no cleanup, so the indexer cannot stop its workers itself): on Linux the kernel sends
    SIGTERM at once (``prctl(PR_SET_PDEATHSIG)``); everywhere, a thread polls the parent pid
    and exits when the worker has been re-parented — which also covers a parent that died
    before this function ran, and PDEATHSIG firing per thread rather than per process."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            pr_set_pdeathsig = 1
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(WATCH_PARENT_S)
        os._exit(1)

    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=watch, name="watch-parent", daemon=True).start()

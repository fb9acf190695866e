"""Text forms shared by the CLI and the web app (times as ``m:ss.s``); a leaf module, so that
every shell imports it without importing another shell."""

from __future__ import annotations


def fmt_time(s: float) -> str:
    """Seconds → ``m:ss.s`` (``h:mm:ss.s`` past an hour)."""
    h, rem = divmod(max(0.0, s), 3600)
    m, sec = divmod(rem, 60)
    return f"{int(h)}:{int(m):02d}:{sec:04.1f}" if h else f"{int(m)}:{sec:04.1f}"

"""Typed exceptions at the library boundary. The CLI turns any ScenesearchError into one line
and exit code 1; everything else is a bug and shows a traceback."""


class ScenesearchError(Exception):
    """Base class: a known, user-facing failure with a one-line message."""


class ConfigError(ScenesearchError):
    """Bad option or combination of options."""


class InputError(ScenesearchError):
    """A movie or input table that cannot be used (corrupt, no video stream, unreadable...)."""


class ModelError(ScenesearchError):
    """Model weights cannot be loaded (unknown name, missing file, no network for a hub tag)."""


class IndexMismatchError(ScenesearchError):
    """The index was built with a different model / taxonomy / schema than the one asked for."""


class IndexBusyError(ScenesearchError):
    """Another process holds the index (e.g. it is being indexed elsewhere)."""


class StoreError(ScenesearchError):
    """The vector store failed (server unreachable, corrupt shard...)."""


class ShotIdError(ConfigError, ValueError):
    """A string that is not a shot id (``MOVIE_ID:INDEX``)."""


def printable(text: object) -> str:
    """``text`` safe to print on one terminal line: every character that is not printable (a
    newline, a tab, an ESC starting a terminal escape sequence, a bidi override...) is written as
    its Python escape (``\\n``, ``\\x1b``, ``\\u202e``), as ``repr`` would, while ordinary
    letters of any script stay as they are. File names can hold any of these."""
    s = str(text)
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() and c != "\\" else repr(c)[1:-1] for c in s)

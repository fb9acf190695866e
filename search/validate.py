"""Validation of every search input, in one place: the CLI, the web page and the JSON API all
reach the store through :meth:`search.SearchEngine.search`, which calls :func:`check_request`,
and the text forms (``--year 1990-2000``, ``"2-10"``, ``-k 10``) are parsed by the helpers
here. Anything out of bounds is a :class:`ConfigError` with one line saying what is allowed —
never a NaN or a 10^30 handed to the store's Rust code (which panics or overflows on them).

Messages name each input by the library's own word (``offset``, ``label_top_k``); a bad value
is an :class:`InputValueError` that a shell renames with :meth:`InputValueError.named` (the CLI
says ``--offset``, the page "Number of results", the JSON API its argument names).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scenesearch.indexer.errors import ConfigError
from scenesearch.indexer.inputs import YEAR_MAX, YEAR_MIN

MAX_LIMIT = 100_000  # results in one page (browsing lists may be long; the web page stops at 200)
MAX_OFFSET = 100_000  # deepest page start; the engine fetches offset + limit candidates
MAX_DURATION_S = 7 * 24 * 3600.0  # a shot longer than a week is not a filter anyone means
MAX_QUERY_CHARS = 2000  # the text tower truncates at 77 tokens anyway


# Where a message names its input. A NUL: user text in messages is shown with repr(), which
# escapes it, so only this placeholder is ever replaced.
NAME = "\0"


class InputValueError(ConfigError):
    """A bad value of one input. ``field`` is the library's name for the input; the message
    calls it ``name`` (``field`` unless a shell renamed it). ``template`` is the message with
    :data:`NAME` where the name goes."""

    def __init__(self, field: str, template: str, name: str | None = None):
        self.field, self.template = field, template
        self.name = field if name is None else name
        super().__init__(template.replace(NAME, self.name))

    def named(self, names: Mapping[str, str]) -> InputValueError:
        """The same error naming the input as ``names[field]`` (unchanged without an entry)."""
        if self.field not in names:
            return self
        return InputValueError(self.field, self.template, names[self.field])

    def noted(self, note: str) -> InputValueError:
        """The same error with ``note`` after the input's name, e.g. ``" (a cosine)"``."""
        return InputValueError(self.field, self.template.replace(NAME, NAME + note, 1), self.name)


def named(e: BaseException, names: Mapping[str, str]) -> BaseException:
    """``e`` in a shell's words: an :class:`InputValueError` renamed by ``names``; others as is."""
    return e.named(names) if isinstance(e, InputValueError) else e


@dataclass(frozen=True)
class Limits:
    """The bounds applied (the web page narrows ``max_limit``)."""

    max_limit: int = MAX_LIMIT
    max_offset: int = MAX_OFFSET


def as_int(value: Any, what: str, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` (int, integral float or numeric string) as an int within [lo, hi], else a
    one-line ConfigError. Rejects NaN, infinities, bools and fractions."""
    if isinstance(value, bool):
        raise InputValueError(what, f"{NAME} must be a whole number, not {value!r}")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise InputValueError(
                    what, f"{NAME} must be a whole number, not {text[:40]!r}"
                ) from None
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise InputValueError(what, f"{NAME} must be a whole number, not {value!r}")
        value = int(value)
    if not isinstance(value, int):
        raise InputValueError(what, f"{NAME} must be a whole number, not {type(value).__name__}")
    _check_bounds(value, what, lo, hi)
    return value


def as_float(value: Any, what: str, lo: float | None = None, hi: float | None = None) -> float:
    """``value`` as a finite float within [lo, hi], else a one-line ConfigError."""
    if isinstance(value, bool):
        raise InputValueError(what, f"{NAME} must be a number, not {value!r}")
    try:
        x = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        raise InputValueError(what, f"{NAME} must be a number, not {str(value)[:40]!r}") from None
    if not math.isfinite(x):
        raise InputValueError(what, f"{NAME} must be a finite number, not {value!r}")
    _check_bounds(x, what, lo, hi)
    return x


def _check_bounds(x, what: str, lo, hi) -> None:
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        if lo is not None and hi is not None:
            raise InputValueError(what, f"{NAME} must be between {lo} and {hi}, not {_short(x)}")
        if lo is not None:
            raise InputValueError(what, f"{NAME} must be ≥ {lo}, not {_short(x)}")
        raise InputValueError(what, f"{NAME} must be ≤ {hi}, not {_short(x)}")


def _short(x) -> str:
    s = str(x)
    return s if len(s) <= 24 else f"{s[:10]}…({len(s)} digits)"


def opt_int(value: Any, what: str, lo: int | None = None, hi: int | None = None) -> int | None:
    """None / "" stay None; anything else as :func:`as_int`."""
    return (
        None
        if value is None or (isinstance(value, str) and not value.strip())
        else (as_int(value, what, lo, hi))
    )


def opt_float(
    value: Any, what: str, lo: float | None = None, hi: float | None = None
) -> float | None:
    """None / "" stay None; anything else as :func:`as_float`."""
    return (
        None
        if value is None or (isinstance(value, str) and not value.strip())
        else (as_float(value, what, lo, hi))
    )


def parse_range(text: str | None, kind=float, what: str = "range"):
    """``"1990-2000"``, ``"1990-"``, ``"-2000"`` or ``"1995"`` → (min, max), each finite (and
    whole for ``kind=int``); min ≤ max. Bounds are checked by :func:`check_filters`."""
    if text is None or not str(text).strip():
        return None, None
    text = str(text).strip()
    lo, sep, hi = text.partition("-") if not text.startswith("-") else ("", "-", text[1:])
    conv = as_int if kind is int else as_float
    try:
        if not sep:
            v = conv(lo, what)
            return v, v
        a = conv(lo, what) if lo.strip() else None
        b = conv(hi, what) if hi.strip() else None
    except InputValueError as e:
        raise InputValueError(
            what, f"bad {NAME} {text[:40]!r}: use A-B, A-, -B or A ({e.template})"
        ) from None
    if a is not None and b is not None and a > b:
        raise InputValueError(what, f"bad {NAME} {text[:40]!r}: the start is after the end")
    return a, b


def check_filters(f, stored_top_k: int | None = None):
    """Bounds of a :class:`search.SearchFilters` (names are checked by the engine, with
    suggestions). ``stored_top_k``: how many top labels the index keeps per shot."""
    if f.label_source not in ("clean", "top"):
        raise ConfigError(f"label_source must be 'clean' or 'top', not {str(f.label_source)!r}")
    hi_k = stored_top_k or 5
    try:
        as_int(f.label_top_k, "label_top_k", 1, hi_k)
    except InputValueError as e:
        raise e.noted(f" (the index keeps the top {hi_k} labels)") from None
    as_float(f.label_min_score, "label_min_score", 0.0, 1.0)
    for v in (f.year_min, f.year_max):
        if v is not None:
            as_int(v, "year", YEAR_MIN, YEAR_MAX)
    for v in (f.duration_min, f.duration_max):
        if v is not None:
            as_float(v, "shot duration (seconds)", 0.0, MAX_DURATION_S)
    if f.year_min is not None and f.year_max is not None and f.year_min > f.year_max:
        raise ConfigError(f"year range {f.year_min}-{f.year_max}: the start is after the end")
    if (
        f.duration_min is not None
        and f.duration_max is not None
        and f.duration_min > f.duration_max
    ):
        raise ConfigError(
            f"duration range {f.duration_min}-{f.duration_max}: the start is after the end"
        )
    for name in (*f.labels_any, *f.labels_all, *f.genres, *f.movies):
        if not isinstance(name, str):
            raise ConfigError(f"filter values must be text, not {type(name).__name__}")
    return f


def check_request(
    text: Any,
    limit: Any,
    offset: Any,
    per_movie: Any,
    dedup: Any,
    min_score: Any,
    text_weight: Any,
    limits: Limits = Limits(),  # noqa: B008 - frozen, never mutated
) -> dict:
    """The numeric knobs of one search, checked; returns them normalised (ints and floats)."""
    if text is not None and not isinstance(text, str):
        raise ConfigError(f"the query must be text, not {type(text).__name__}")
    if text is not None and len(text) > MAX_QUERY_CHARS:
        raise ConfigError(f"the query is {len(text)} characters; at most {MAX_QUERY_CHARS}")
    knobs = {
        "limit": as_int(limit, "limit", 1, limits.max_limit),
        "offset": as_int(offset, "offset", 0, limits.max_offset),
        "per_movie": opt_int(per_movie, "per_movie", 1, limits.max_limit),
    }
    try:
        knobs["dedup"] = opt_float(dedup, "dedup", -1.0, 1.0)
    except InputValueError as e:
        raise e.noted(" (a cosine similarity)") from None
    return {
        **knobs,
        # compared in Python only (never sent to the store): any finite threshold will do
        "min_score": opt_float(min_score, "min_score"),
        "text_weight": as_float(text_weight, "text weight", 0.0, 1.0),
    }

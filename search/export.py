"""Export a result list to an editing timeline or a table: OpenTimelineIO (``.otio``), CMX 3600
EDL (``.edl``), Final Cut Pro 7 XML (``.xml``, read by Premiere and Resolve) and CSV (``.csv``).

Every hit becomes a clip on one video track, in result order (a selects reel): its source range is
the shot's decoded-frame range ``[start_frame, end_frame)`` at the movie stream's frame rate, on an
``ExternalReference`` to the movie file (``file://`` URL). Rates are snapped to OpenTimelineIO's
nearest standard timecode rate when within 0.05 % (a stream's average rate 29.97002997… is
30000/1001), so NTSC sources round-trip frame-exactly; timecode, drop-frame included (29.97 and
59.94 are written drop-frame, as OpenTimelineIO does by default), comes from OpenTimelineIO. The
score, labels and ids of a hit go into the clip's metadata under ``"scenesearch"``.

The EDL and FCP XML writers are OpenTimelineIO's adapter plugins (``otio-cmx3600-adapter``,
``otio-fcp-adapter``; the ``otio`` extra). An EDL holds a single frame rate: hits from movies at
different rates cannot share one EDL (export ``.otio`` or ``.xml`` instead). The CSV (polars) has
times as seconds (from the frames' timestamps) and as SMPTE timecode at the movie's rate.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

from scenesearch.indexer.errors import ConfigError, InputError
from scenesearch.search.engine import Hit

FORMATS = {".otio": "otio", ".edl": "edl", ".xml": "fcpxml", ".csv": "csv"}
FORMAT_NAMES = ("otio", "edl", "fcpxml", "csv")
RATE_SNAP = 5e-4  # relative distance within which a stream rate is taken as a standard rate
FALLBACK_FPS = 24.0  # only for hits of indexes that stored no frame rate


def _otio():
    try:
        import opentimelineio as otio
    except ImportError as e:  # the otio extra is not installed
        raise ConfigError(
            "exporting timelines needs OpenTimelineIO: pip install 'scenesearch[otio]'"
        ) from e
    return otio


def export_format(path: str | os.PathLike, fmt: str | None = None) -> str:
    """The format name for ``path``: ``fmt`` when given, else from the file extension."""
    if fmt:
        f = fmt.lower().lstrip(".")
        f = {"xml": "fcpxml", "fcp": "fcpxml", "cmx": "edl"}.get(f, f)
        if f not in FORMAT_NAMES:
            raise ConfigError(
                f"unknown export format {fmt!r}; available: {', '.join(FORMAT_NAMES)}"
            )
        return f
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise ConfigError(
            f"cannot tell the export format from {str(path)!r}: use a file ending in "
            f"{', '.join(FORMATS)} or give --export-format"
        )
    return FORMATS[ext]


def timecode_rate(fps: float | None) -> float:
    """The clip rate for a stream's average frame rate: the nearest standard timecode rate
    (24000/1001, 25, 30000/1001, ...) when within ``RATE_SNAP``, else the rate itself."""
    otio = _otio()
    fps = float(fps or FALLBACK_FPS)
    near = otio.opentime.RationalTime.nearest_valid_timecode_rate(fps)
    return near if abs(near - fps) <= RATE_SNAP * fps else fps


def frame_range(hit: Hit) -> tuple[int, int, float]:
    """(first frame, frame count, rate) of a hit; frames from the index when stored, else
    rounded from its times."""
    rate = timecode_rate(hit.fps)
    if hit.start_frame is not None and hit.end_frame is not None:
        first, end = int(hit.start_frame), int(hit.end_frame)
    else:
        first, end = round(hit.start_s * rate), round(hit.end_s * rate)
    return first, max(1, end - first), rate


def file_url(path: str) -> str:
    """``file://`` URL of an absolute movie path (what NLEs and OTIO expect)."""
    return "file://" + quote(os.path.abspath(path)) if path else ""


def build_timeline(
    hits: Sequence[Hit],
    name: str = "scenesearch selects",
    durations: Mapping[str, float] | None = None,
):
    """An OpenTimelineIO timeline with one clip per hit, in order (see the module docstring).
    ``durations`` (movie id → seconds) sets each media reference's available range."""
    otio = _otio()
    RT, TR = otio.opentime.RationalTime, otio.opentime.TimeRange
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    # the media's available range: the movie's duration when known, else up to its last hit's
    # end (FCP XML needs one)
    last: dict[str, int] = {}
    for h in hits:
        first, n, _ = frame_range(h)
        last[h.movie_id] = max(last.get(h.movie_id, 0), first + n)
    for rank, h in enumerate(hits, 1):
        first, n, rate = frame_range(h)
        frames = last[h.movie_id]
        if durations and durations.get(h.movie_id):
            frames = max(frames, round(float(durations[h.movie_id]) * rate))
        avail = TR(RT(0, rate), RT(frames, rate))
        ref = otio.schema.ExternalReference(target_url=file_url(h.path), available_range=avail)
        ref.name = Path(h.path).name if h.path else h.movie_id
        meta = {
            "rank": rank,
            "shot_id": h.shot_id,
            "movie_id": h.movie_id,
            "title": h.title,
            "year": h.year,
            "shot_index": h.shot_index,
            "score": h.score,
            "labels": list(h.labels),
            "top": [{"label": t.label, "score": t.score} for t in h.top],
            "start_s": h.start_s,
            "end_s": h.end_s,
            "fps": h.fps,
        }
        track.append(
            otio.schema.Clip(
                name=f"{h.title} #{h.shot_index}",
                media_reference=ref,
                source_range=TR(RT(first, rate), RT(n, rate)),
                # an EDL reel name: ≤ 8 letters/digits of the file name (Avid's limit)
                metadata={"scenesearch": meta, "cmx_3600": {"reel": _reel(h)}},
            )
        )
    timeline = otio.schema.Timeline(name=name)
    timeline.tracks.append(track)
    return timeline


def _reel(h: Hit) -> str:
    stem = Path(h.path).stem if h.path else h.movie_id
    return (re.sub(r"[^A-Za-z0-9]", "", stem) or "AX")[:8].upper()


def hits_table(hits: Sequence[Hit]):
    """A polars DataFrame, one row per hit: ids, movie, times in seconds and SMPTE timecode
    (at the movie's rate, OpenTimelineIO's drop-frame rule), frames, score, labels."""
    import polars as pl

    otio = _otio()
    rows = []
    for rank, h in enumerate(hits, 1):
        first, n, rate = frame_range(h)
        RT = otio.opentime.RationalTime
        rows.append(
            {
                "rank": rank,
                "score": h.score,
                "shot_id": h.shot_id,
                "movie_id": h.movie_id,
                "title": h.title,
                "year": h.year,
                "shot_index": h.shot_index,
                "start_s": h.start_s,
                "end_s": h.end_s,
                "duration_s": round(h.duration_s, 4),
                "start_tc": RT(first, rate).to_timecode(rate),
                "end_tc": RT(first + n, rate).to_timecode(rate),
                "fps": rate,
                "start_frame": first,
                "end_frame": first + n,
                "labels": "|".join(h.labels),
                "top_labels": "|".join(t.label for t in h.top),
                "path": h.path,
            }
        )
    schema = {"year": pl.Int64, "score": pl.Float64}
    return pl.DataFrame(rows, schema_overrides=schema, infer_schema_length=None)


def check_export_path(path: str | os.PathLike, fmt: str | None = None) -> str:
    """The export format, after checking that ``path`` names a file in an existing, writable
    folder (one-line :class:`InputError` otherwise)."""
    fmt = export_format(path, fmt)
    path = Path(path)
    if path.is_dir():
        raise InputError(f"cannot write {path}: it is a folder")
    if not path.parent.is_dir():
        raise InputError(f"cannot write {path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InputError(f"cannot write {path}: permission denied")
    return fmt


def export_hits(
    hits: Sequence[Hit],
    path: str | os.PathLike,
    fmt: str | None = None,
    name: str = "scenesearch selects",
    durations: Mapping[str, float] | None = None,
) -> str:
    """Write ``hits`` to ``path`` as ``fmt`` (default: from the extension). Returns the format.

    Raises :class:`InputError` (one line) for an empty result or a path that cannot be written,
    :class:`ConfigError` for an unknown format or an EDL of mixed frame rates.
    """
    fmt = check_export_path(path, fmt)
    if not hits:
        raise InputError("nothing to export: the search found no shots")
    path = Path(path)
    if fmt == "csv":
        data = None
        table = hits_table(hits)
    else:
        otio = _otio()
        timeline = build_timeline(hits, name, durations)
        kw = {}
        if fmt == "edl":
            rates = sorted({frame_range(h)[2] for h in hits})
            if len(rates) > 1:
                raise ConfigError(
                    "an EDL holds one frame rate, and these shots come from movies at "
                    f"{', '.join(f'{r:.3f}' for r in rates)} fps: export .otio or .xml, or "
                    "filter to movies of one rate"
                )
            kw["rate"] = rates[0]
        adapter = {"otio": "otio_json", "edl": "cmx_3600", "fcpxml": "fcp_xml"}[fmt]
        data = otio.adapters.write_to_string(timeline, adapter, **kw)
    try:
        if data is None:
            table.write_csv(path)
        else:
            path.write_text(data, encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}") from e
    return fmt


def read_timeline(path: str | os.PathLike, rate: float | None = None):
    """Read an exported timeline back with OpenTimelineIO (EDLs need their ``rate``)."""
    otio = _otio()
    kw = {"rate": rate} if rate and Path(path).suffix.lower() == ".edl" else {}
    return otio.adapters.read_from_file(str(path), **kw)

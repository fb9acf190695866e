"""Scene ground truth: human scene labels per shot, read from a CSV/Parquet table (``movie``,
``start_s``/``end_s`` or ``shot_id`` / ``shot_index``, ``labels`` "a|b") or from MovieCLIP's split
files (``<clip>/<clip>-Scene-NNN.mp4 i j …`` with indices into the 150-label map), and MovieCLIP's
150-label map with its projection of the 179-label taxonomy (used by eval/scenes.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from scenesearch.indexer.errors import InputError
from scenesearch.indexer.inputs import read_table

# MovieCLIP's 150-label map renames these two taxonomy labels (verified by diffing the map
# against the 179-label taxonomy: 150 names kept, these 2 merged, 27 dropped).
MERGED_150 = {"interrogation room": "room", "phone booth": "booth"}

SPLIT_LINE = re.compile(
    r"^(?P<clip>[^/\s]+)/(?P<file>\S+?-Scene-(?P<n>\d+)\.\w+)(?P<idx>(?:\s+\d+)*)\s*$"
)


def bundled_label_map_path() -> Path:
    return Path(
        str(resources.files("scenesearch.indexer") / "data" / "movieclip_label_map_150.json")
    )


def load_label_map_150(path: str | Path | None = None) -> tuple[str, ...]:
    """The 150 label names ordered by their index in MovieCLIP's label-map JSON."""
    p = Path(path) if path else bundled_label_map_path()
    try:
        m = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read label map {p}: {e}") from e
    names = sorted(m, key=lambda k: m[k])
    if [m[k] for k in names] != list(range(len(names))):
        raise InputError(f"label map {p} indices are not 0..{len(names) - 1}")
    return tuple(names)


def projection_matrix(
    src: Sequence[str], dst: Sequence[str], merges: dict[str, str] = MERGED_150
) -> np.ndarray:
    """0/1 matrix M [len(src), len(dst)]: ``M[i, j] = 1`` when source label i is target label j
    (same name, or merged into it). ``S @ M`` projects score vectors (merged scores add up)."""
    j_of = {n: j for j, n in enumerate(dst)}
    M = np.zeros((len(src), len(dst)), dtype=np.float64)
    for i, n in enumerate(src):
        j = j_of.get(merges.get(n, n))
        if j is not None:
            M[i, j] = 1.0
    return M


def project_names(
    names: Sequence[str], dst: Sequence[str], merges: dict[str, str] = MERGED_150
) -> tuple[str, ...]:
    """Label names in the target space (merged names renamed, labels outside it dropped)."""
    keep = set(dst)
    return tuple(dict.fromkeys(n2 for n in names if (n2 := merges.get(n, n)) in keep))


# ---------------------------------------------------------------------------- ground truth


@dataclass(frozen=True)
class GtShot:
    """One labelled shot of the ground truth."""

    movie: str  # how the ground truth names the movie (id, title, stem, path, or MovieCLIP clip)
    labels: tuple[str, ...]
    start_s: float | None = None
    end_s: float | None = None
    shot_id: str | None = None
    shot_index: int | None = None
    source: str = ""  # file:line, for messages


@dataclass
class GroundTruth:
    shots: list[GtShot]
    space: str  # "taxonomy" (label names of the index taxonomy) or "movieclip-150"
    path: str = ""


def _split_labels(v) -> tuple[str, ...]:
    if v is None:
        return ()
    items = v if isinstance(v, list | tuple) else re.split(r"[|;]", str(v))
    return tuple(dict.fromkeys(s.strip().lower() for s in map(str, items) if s.strip()))


def read_movieclip_split(
    path: str | Path,
    label_map: Sequence[str] | None = None,
    times: dict[tuple[str, str], tuple[float, float]] | None = None,
) -> GroundTruth:
    """MovieCLIP split file: ``<clip>/<clip>-Scene-NNN.mp4 i j …``, label indices into the
    150-label map. ``Scene-NNN`` is PySceneDetect's 1-based scene number, so it names shot
    index NNN−1 — the same shot only if the index was cut with the same detector settings;
    pass ``times`` (from :func:`read_movieclip_times`) to match by time overlap instead."""
    names = tuple(label_map) if label_map else load_label_map_150()
    p = Path(path)
    shots = []
    for i, line in enumerate(p.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = SPLIT_LINE.match(line)
        if not m:
            raise InputError(f"{p}:{i}: not a MovieCLIP split line: {line[:80]!r}")
        idx = [int(x) for x in m["idx"].split()]
        bad = [x for x in idx if x >= len(names)]
        if bad:
            raise InputError(f"{p}:{i}: label index {bad[0]} outside the {len(names)}-label map")
        t = (times or {}).get((m["clip"], m["file"]))
        shots.append(
            GtShot(
                movie=m["clip"],
                labels=tuple(names[x] for x in idx),
                start_s=t[0] if t else None,
                end_s=t[1] if t else None,
                shot_index=None if t else int(m["n"]) - 1,
                source=f"{p.name}:{i}",
            )
        )
    return GroundTruth(shots, "movieclip-150", str(p))


def read_movieclip_times(path: str | Path) -> dict[tuple[str, str], tuple[float, float]]:
    """(clip, scene file) → (start_time, end_time) from MovieCLIP's ``movieCLIP_dataset.json``."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read MovieCLIP shot times {path}: {e}") from e
    out = {}
    for clip, shots in data.items():
        for fname, rec in shots.items():
            out[(clip, fname)] = (float(rec["start_time"]), float(rec["end_time"]))
    return out


def read_scene_table(path: str | Path) -> GroundTruth:
    """CSV/Parquet ground truth: ``labels`` ("a|b") plus either ``movie`` + ``start_s`` +
    ``end_s`` (a time range), or ``shot_id`` (``movie:0007``), or ``movie`` + ``shot_index``.
    ``#`` lines are comments."""
    p = Path(path)
    df, cols = read_table(p, "scene labels")
    if "labels" not in cols:
        raise InputError(
            f"scene labels {p} need a 'labels' column; it has: {', '.join(df.columns)}"
        )
    has_range = {"start_s", "end_s"} <= set(cols)
    if not (has_range or "shot_id" in cols or "shot_index" in cols):
        raise InputError(f"scene labels {p} need start_s and end_s, shot_id, or shot_index columns")
    shots = []
    for i, r in enumerate(df.iter_rows(named=True), start=2):

        def g(k, r=r):
            return r.get(cols[k]) if k in cols else None

        movie = str(g("movie") or "").strip()
        sid = str(g("shot_id") or "").strip() or None
        if not movie and sid:
            movie = sid.rpartition(":")[0]
        if not movie:
            raise InputError(f"{p}:{i}: no movie")
        try:
            s = float(g("start_s")) if has_range and g("start_s") not in (None, "") else None
            e = float(g("end_s")) if has_range and g("end_s") not in (None, "") else None
            si = int(g("shot_index")) if g("shot_index") not in (None, "") else None
        except ValueError as ex:
            raise InputError(f"{p}:{i}: {ex}") from ex
        if s is not None and e is not None and e <= s:
            raise InputError(f"{p}:{i}: end_s {e} is not after start_s {s}")
        shots.append(GtShot(movie, _split_labels(g("labels")), s, e, sid, si, f"{p.name}:{i}"))
    return GroundTruth(shots, "taxonomy", str(p))


def read_ground_truth(
    path: str | Path, label_map: Sequence[str] | None = None, times_path: str | Path | None = None
) -> GroundTruth:
    """Read scene labels in either format (a MovieCLIP split file is recognised by its lines)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"scene labels not found: {p}")
    if p.suffix.lower() not in (".csv", ".parquet", ".pq", ".tsv"):
        first = next(
            (ln for ln in p.read_text().splitlines() if ln.strip() and not ln.startswith("#")), ""
        )
        if SPLIT_LINE.match(first.strip()):
            times = read_movieclip_times(times_path) if times_path else None
            return read_movieclip_split(p, label_map, times)
    return read_scene_table(p)

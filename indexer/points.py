"""Store points of one movie's shots: vectors, labels and payload (every executor builds them here)."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import numpy as np

from scenesearch.indexer.records import (
    Movie,
    MovieEnd,
    ShotEnd,
    ShotLabels,
    make_shot_id,
    point_id,
)
from scenesearch.indexer.store import (
    VECTOR_CLIP,
    VECTOR_FRAMES,
    VECTOR_SCENES,
    StorePoint,
)
from scenesearch.indexer.thumbnails import thumb_rel

log = logging.getLogger(__name__)


def shot_payload(movie: Movie, se: ShotEnd, lab: ShotLabels, sid: str, thumb: str, fps: float,
                 model_id: str) -> dict:  # fmt: skip
    """The payload of one shot point (schema documented in indexer/store/base.py)."""
    shot = se.shot
    return {
        "shot_id": sid,
        "movie_id": movie.movie_id,
        "path": movie.path,
        "title": movie.title,
        "year": movie.year,
        "genres": list(movie.genres),
        "shot_index": shot.index,
        "start_s": round(shot.start_s, 4),
        "end_s": round(shot.end_s, 4),
        "duration_s": round(shot.end_s - shot.start_s, 4),
        "start_frame": shot.start_frame,
        "end_frame": shot.end_frame,
        "fps": fps,
        "labels": list(lab.clean),
        "top_labels": [t.label for t in lab.top],
        "top": [
            {"label": t.label, "score": round(t.score, 6), "rank": r}
            for r, t in enumerate(lab.top, start=1)
        ],
        "thumb": thumb,
        "model": model_id,
        "n_frames_used": len(se.frame_idx),
    }


def shot_points(movie: Movie, end: MovieEnd, shots: list[ShotEnd], feats: dict[int, np.ndarray],
                labeler, model_id: str, frames=None) -> list[StorePoint]:  # fmt: skip
    """The store points of one movie's shots from its frames' embeddings (``feats``: frame index
    → L2-normalised vector): the shot vector, its labels and its payload. Every executor (the
    local run, Ray actors) builds points here. With ``frames`` (the SampleConfig), each point
    also keeps its sampled frames' vectors (multivector "frames") and their times (``frame_s``)."""
    from scenesearch.indexer.sampling import frame_times, vector_frames

    points: list[StorePoint] = []
    for se in shots:
        f = np.stack([feats[i] for i in se.frame_idx.tolist()])
        v = f.mean(axis=0)
        v = (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)
        lab = labeler.label_shot(f)
        sid = make_shot_id(movie.movie_id, se.shot.index)
        vectors = {VECTOR_CLIP: v, VECTOR_SCENES: lab.scores}
        thumb = thumb_rel(movie.movie_id, se.shot.index)
        payload = shot_payload(movie, se, lab, sid, thumb, end.info.fps, model_id)
        if frames is not None:
            rows = vector_frames(se.shot, se.frame_idx, frames)
            vectors[VECTOR_FRAMES] = np.stack([feats[i] for i in rows.tolist()])
            payload["frame_s"] = frame_times(se.shot, rows)
        points.append(StorePoint(point_id(sid), vectors, payload))
    return points


def movie_record(movie: Movie, end: MovieEnd, n_shots: int) -> dict:
    """The per-movie state record stored once a movie's points are durable."""
    return {
        "movie_id": movie.movie_id,
        "path": movie.path,
        "title": movie.title,
        "year": movie.year,
        "genres": list(movie.genres),
        "fingerprint": movie.fingerprint,
        "size": movie.size,
        "status": "done",
        "shots": n_shots,
        "duration_s": end.info.duration_s,
        "fps": end.info.fps,
        "width": end.info.width,
        "height": end.info.height,
        "codec": end.info.codec,
        "corrupt_frames": end.info.corrupt_frames,
        "truncated": end.info.truncated,
        "declared_s": end.info.declared_s,
        "indexed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }

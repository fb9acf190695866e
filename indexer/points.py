"""Shot records of one movie from its frames' embeddings: the shot vector, labels and payload.

Every executor (the local run, Ray actors) builds a movie's :class:`~indexer.stored.ShotRecord`
list here and its :class:`~indexer.stored.MovieRecord` with :meth:`MovieRecord.of_movie`.
"""

from __future__ import annotations

import numpy as np

from scenesearch.indexer.records import Movie, MovieEnd, ShotEnd
from scenesearch.indexer.sampling import frame_times, vector_frames
from scenesearch.indexer.store import VECTOR_CLIP, VECTOR_FRAMES, VECTOR_SCENES
from scenesearch.indexer.stored import ShotRecord
from scenesearch.indexer.thumbnails import thumb_rel


def shot_points(movie: Movie, end: MovieEnd, shots: list[ShotEnd], feats: dict[int, np.ndarray],
                labeler, model_id: str, frames=None) -> list[ShotRecord]:  # fmt: skip
    """The records of one movie's shots from its frames' embeddings (``feats``: frame index →
    L2-normalised vector): the shot vector, its labels and its payload. With ``frames`` (the
    SampleConfig), each record also keeps its sampled frames' vectors (multivector "frames") and
    their times (``frame_s``)."""
    out: list[ShotRecord] = []
    for se in shots:
        f = np.stack([feats[i] for i in se.frame_idx.tolist()])
        v = f.mean(axis=0)
        v = (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)
        lab = labeler.label_shot(f)
        vectors = {VECTOR_CLIP: v, VECTOR_SCENES: lab.scores}
        frame_s = None
        if frames is not None:
            rows = vector_frames(se.shot, se.frame_idx, frames)
            vectors[VECTOR_FRAMES] = np.stack([feats[i] for i in rows.tolist()])
            frame_s = frame_times(se.shot, rows)
        thumb = thumb_rel(movie.movie_id, se.shot.index)
        out.append(ShotRecord.of_shot(movie, se, lab, thumb, end.info.fps, model_id, frame_s,
                                      vectors))  # fmt: skip
    return out

"""What a search returns: :class:`Hit` (one shot in a result list, with the fields every shell
shows and exports) and :class:`SearchResult` (a page of hits and the result flags)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from scenesearch.indexer.records import LabelScore


@dataclass(frozen=True)
class Hit:
    """One shot in a result list."""

    shot_id: str
    movie_id: str
    title: str
    year: int | None
    genres: tuple[str, ...]
    shot_index: int
    start_s: float
    end_s: float
    labels: tuple[str, ...]  # clean labels
    top: tuple[LabelScore, ...]  # top-k labels with scores
    thumb: str  # absolute path of the thumbnail JPEG
    path: str  # the movie file
    score: float | None = None  # cosine similarity to the query (None when browsing)
    match_s: float | None = None  # time of the shot's best-matching frame (best-frame ranking)
    # decoded-frame range [start_frame, end_frame) and the stream's average frame rate: what
    # frame-exact exports (search/export.py) need; None in indexes without them
    start_frame: int | None = None
    end_frame: int | None = None
    fps: float | None = None

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "shot_id": self.shot_id,
            "movie_id": self.movie_id,
            "title": self.title,
            "year": self.year,
            "genres": list(self.genres),
            "shot_index": self.shot_index,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "duration_s": round(self.duration_s, 4),
            "labels": list(self.labels),
            "top": [{"label": t.label, "score": t.score} for t in self.top],
            "thumb": self.thumb,
            "path": self.path,
            "score": self.score,
            "match_s": self.match_s,
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "fps": self.fps,
        }


@dataclass
class SearchResult:
    hits: list[Hit] = field(default_factory=list)
    mode: str = "text"  # text | image | text+image | like | browse
    no_good_match: bool = False  # min_score given and no shot reached it
    best_score: float | None = None  # best score seen, even when below min_score
    exhausted: bool = True  # no further page exists


HIT_FIELDS = frozenset(f.name for f in fields(Hit))


def hit_from_dict(d: dict[str, Any]) -> Hit:
    """A :class:`Hit` back from its ``to_dict()`` form (keys it does not know, such as
    ``duration_s``, are ignored)."""
    kw = {k: v for k, v in d.items() if k in HIT_FIELDS}
    kw["genres"] = tuple(kw.get("genres") or ())
    kw["labels"] = tuple(kw.get("labels") or ())
    kw["top"] = tuple(LabelScore(t["label"], float(t["score"])) for t in kw.get("top") or ())
    kw["shot_index"] = int(kw["shot_index"])
    kw["start_s"], kw["end_s"] = float(kw["start_s"]), float(kw["end_s"])
    return Hit(**kw)

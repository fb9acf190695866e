"""The search engine: text, image and "more like this shot" queries over an index, with filters
inside the vector search and result shaping (pages, group by movie, near-duplicate collapse,
score threshold). Also browsing without a query (a movie's shots in time order, label-only).

It opens an index through the store interface (never a Qdrant client), loads the model the index
was built with — refusing another one — and keeps it warm for every query.
"""

from __future__ import annotations

import difflib
import os
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scenesearch.indexer.config import StoreConfig
from scenesearch.indexer.errors import ConfigError, IndexMismatchError, InputError
from scenesearch.indexer.records import LabelScore, parse_shot_id, point_id
from scenesearch.indexer.store import (
    VECTOR_CLIP,
    Filter,
    MatchAny,
    Range,
    Rescore,
    SearchParams,
    ShotStore,
    StoredRecord,
    TopLabel,
    open_store,
)
from scenesearch.search.validate import check_filters, check_request

MAX_CANDIDATES = 5000  # most candidates fetched to fill a page after grouping/dedup
FACET_MOVIES = 1000  # movies counted to tell when grouping has seen every matching movie
# Best-frame ranking: shots nearest by their mean vector (HNSW, filter inside) rescored by their
# best frame (MAX_SIM over the "frames" multivector). Measured in docs/benchmarks.md (bench
# search with frame vectors): recall@10 against exact best-frame ranking vs prefetch size.
FRAME_CANDIDATES = 256
MEAN_RANKING_NOTE = (
    "this index has no per-frame vectors (built before scenesearch ranked shots by their "
    "best-matching frame): results rank by each shot's mean vector; re-index into a new "
    "folder for best-frame ranking and match times"
)


@dataclass(frozen=True)
class SearchFilters:
    """Filters applied inside the vector search (all optional; empty means no constraint).

    Labels: ``labels_any`` (at least one) and ``labels_all`` (every one). With
    ``label_source="clean"`` they match MovieCLIP's clean label set; with ``"top"`` they match
    the shot's top ``label_top_k`` labels whose score is ≥ ``label_min_score``.
    """

    labels_any: tuple[str, ...] = ()
    labels_all: tuple[str, ...] = ()
    label_source: str = "clean"  # clean | top
    label_top_k: int = 5
    label_min_score: float = 0.0
    genres: tuple[str, ...] = ()  # any of
    movies: tuple[str, ...] = ()  # movie ids or titles, any of
    year_min: int | None = None
    year_max: int | None = None
    duration_min: float | None = None  # seconds
    duration_max: float | None = None

    def is_empty(self) -> bool:
        return self == SearchFilters()


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


# Said when a clean-label filter meets an index where no shot has a clean label (random weights,
# or a weak model: no top-1 score reaches MovieCLIP's 0.4): otherwise such a search is just empty.
NO_CLEAN_LABELS = (
    "no shot in this index has a confident (clean) label{why}, so a clean-label filter matches "
    "nothing; match each shot's top 5 labels instead (CLI: --top-labels 5; web app: "
    "'any of its top 5')"
)


def _format_suggestion(kind: str, name: str, known: list[str]) -> str:
    """``unknown genre 'x'; did you mean: a, b?`` — or, with nothing close, the known names (all
    of them when there are few)."""
    close = difflib.get_close_matches(name.lower(), [k.lower() for k in known], n=3, cutoff=0.6)
    by_lower = {k.lower(): k for k in known}
    if close:
        hint = f"; did you mean: {', '.join(by_lower[c] for c in close)}?"
    elif not known:
        hint = f"; the index has no {kind}s"
    elif len(known) <= 12:
        hint = f"; known {kind}s: {', '.join(sorted(known, key=str.lower))}"
    else:
        shown = ", ".join(sorted(known, key=str.lower)[:8])
        hint = f"; {len(known)} known {kind}s, e.g. {shown} (scenesearch info lists them)"
    return f"unknown {kind} {name!r}{hint}"


class SearchEngine:
    """Queries one index. Thread-safe for concurrent queries (the web app serves several)."""

    def __init__(self, store: ShotStore, index_dir: str, encoder=None, device: str = "cpu"):
        self.store = store
        self.index_dir = index_dir
        self.meta = store.get_meta() if store.exists() else None
        self.device = device
        self._encoder = encoder
        self._lock = threading.Lock()
        if encoder is not None and self.meta and encoder.spec.model_id != self.meta["model_id"]:
            raise IndexMismatchError(
                f"index was built with {self.meta['model_id']}, not {encoder.spec.model_id}; "
                "query it with the same model"
            )
        self._movie_cache: dict[str, dict] | None = None
        self._count: int | None = None
        self._genres: list[str] | None = None
        self._label_counts: dict[str, dict[str, int]] = {}
        self.frame_candidates = FRAME_CANDIDATES  # 0: rank every matching shot by MAX_SIM

    @property
    def frame_vector(self) -> str | None:
        """The index's per-frame multivector (None: an index with shot mean vectors only)."""
        return (self.meta or {}).get("frame_vectors") or None

    @property
    def ranking(self) -> str:
        """How text and image queries rank shots: "frames" (best-matching frame) or "mean"."""
        return "frames" if self.frame_vector else "mean"

    @property
    def ranking_note(self) -> str | None:
        """One line for users of an older index (mean-vector ranking), else None."""
        return MEAN_RANKING_NOTE if self.meta and not self.frame_vector else None

    @classmethod
    def open(cls, cfg: StoreConfig, device: str = "cpu", encoder=None, load_model: bool = True):
        """Open an index (embedded folder or server) and, unless told not to, load its model."""
        store = open_store(cfg)
        try:
            eng = cls(store, cfg.index_dir, encoder, device)
            if load_model and eng.meta:
                eng.encoder  # noqa: B018 - load now so the first query is fast
        except BaseException:
            store.close()
            raise
        return eng

    def close(self) -> None:
        self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ model
    @property
    def encoder(self):
        """The index's own model, loaded on first use and kept."""
        if self._encoder is None:
            if not self.meta:
                raise InputError("the index is empty: nothing to search yet")
            from scenesearch.indexer.encoder import ClipEncoder

            m = self.meta
            name = m.get("model_config_path") or m["model"]
            if m["pretrained"].startswith("file:"):
                weights = m.get("weights_path")
                if not weights or not os.path.isfile(weights):
                    raise InputError(
                        f"the index was built with weights file {m['pretrained'][5:]}, which is "
                        f"no longer at {weights}"
                    )
            else:
                weights = m["pretrained"]
            enc = ClipEncoder(name, weights, self.device)
            if enc.spec.model_id != m["model_id"]:
                raise IndexMismatchError(
                    f"the model loaded ({enc.spec.model_id}) differs from the index's "
                    f"({m['model_id']})"
                )
            self._encoder = enc
        return self._encoder

    @property
    def is_empty(self) -> bool:
        """No shots to search (cached: counting points is not free on every query)."""
        if self._count is None:
            self._count = self.store.count() if self.meta else 0
        return self._count == 0

    @property
    def random_weights(self) -> bool:
        return bool(self.meta) and self.meta["pretrained"] == "random"

    # ------------------------------------------------------------------ vocabulary
    def labels(self) -> list[str]:
        return list(self.meta["taxonomy"]["labels"]) if self.meta else []

    def genres(self) -> list[str]:
        """Genres present in the index (cached until :meth:`refresh`)."""
        if self._genres is None:
            self._genres = sorted(self.store.facet("genres")) if self.meta else []
        return self._genres

    def label_counts(self, source: str = "clean") -> dict[str, int]:
        """Label → number of shots carrying it: as a clean label (``"clean"``) or among the
        shot's top labels (``"top"``); cached until :meth:`refresh`."""
        if source not in self._label_counts:
            key = "labels" if source == "clean" else "top_labels"
            n = max(1, len(self.labels()))
            counts = self.store.facet(key, limit=n) if self.meta and not self.is_empty else {}
            self._label_counts[source] = {str(k): int(v) for k, v in counts.items()}
        return self._label_counts[source]

    def movies(self) -> list[dict]:
        """Movie records (id, title, year, genres, path, shots...), sorted by title."""
        if self._movie_cache is None:
            self._movie_cache = self.store.get_movies() if self.meta else {}
        done = [m for m in self._movie_cache.values() if m.get("status") == "done"]
        return sorted(done, key=lambda m: (str(m.get("title")), m["movie_id"]))

    def refresh(self) -> None:
        """Forget cached movie lists (after the index changed)."""
        self._movie_cache = None
        self._count = None
        self._genres = None
        self._label_counts = {}
        self.meta = self.store.get_meta() if self.store.exists() else None

    # ------------------------------------------------------------------ filters
    def build_filter(self, f: SearchFilters | None) -> Filter | None:
        """Validate names (with suggestions) and translate to the store's filter conditions."""
        if f is None:
            return None
        stored_k = (self.meta or {}).get("top_k")  # absent in indexes made before it was kept
        check_filters(f, stored_k)
        if f.is_empty():
            return None
        must: list = []
        known = set(self.labels())
        for name in (*f.labels_any, *f.labels_all):
            if name not in known:
                raise ConfigError(_format_suggestion("label", name, sorted(known)))
        if f.label_source == "clean" and (f.labels_any or f.labels_all) and not self.label_counts():
            why = " (it was built with random weights)" if self.random_weights else ""
            raise ConfigError(NO_CLEAN_LABELS.format(why=why))

        def label_cond(names: tuple[str, ...]):
            if f.label_source == "clean":
                return MatchAny("labels", names)
            if stored_k is not None and f.label_top_k >= stored_k and f.label_min_score <= 0:
                # Every stored top label passes rank and score (scores are probabilities, ≥ 0),
                # so this is "the label is among top_labels": a keyword-index lookup, where the
                # nested condition checks each candidate's top[] (1 M shots, a label among the
                # top 5 of 5 % of them: p95 81 ms nested, 17 ms this way; docs/benchmarks.md).
                return MatchAny("top_labels", names)
            conds = tuple(TopLabel(n, f.label_min_score, f.label_top_k) for n in names)
            return conds[0] if len(conds) == 1 else Filter(should=conds)

        if f.labels_any:
            must.append(label_cond(tuple(f.labels_any)))
        for name in f.labels_all:
            must.append(label_cond((name,)))
        if f.genres:
            known_g = self.genres()
            wanted = tuple(g.strip().lower() for g in f.genres)
            for g in wanted:
                if g not in known_g:
                    raise ConfigError(_format_suggestion("genre", g, known_g))
            must.append(MatchAny("genres", wanted))
        if f.movies:
            must.append(MatchAny("movie_id", tuple(self.resolve_movie(m) for m in f.movies)))
        if f.year_min is not None or f.year_max is not None:
            must.append(Range("year", f.year_min, f.year_max))
        if f.duration_min is not None or f.duration_max is not None:
            must.append(Range("duration_s", f.duration_min, f.duration_max))
        return Filter(must=tuple(must))

    def resolve_movie(self, ref: str) -> str:
        """A movie id, title or file name → movie id. Case-insensitive; an exact title or file
        name wins, then a title that starts with ``ref``, then one that contains it — each only
        when it names one movie (``Sintel`` finds "Sintel (excerpt)"); otherwise a ConfigError
        with suggestions or the candidates."""
        movies = self.movies()
        for m in movies:
            if ref == m["movie_id"]:
                return ref
        low = ref.strip().lower()
        titles = [str(m.get("title", "")).lower() for m in movies]
        exact = [
            m
            for m, t in zip(movies, titles)
            if t == low or os.path.basename(m.get("path", "")).lower() == low
        ]
        if exact:
            return exact[0]["movie_id"]
        for match in (str.startswith, str.__contains__):
            hits = [m for m, t in zip(movies, titles) if low and match(t, low)]
            if len(hits) == 1:
                return hits[0]["movie_id"]
            if len(hits) > 1:
                names = ", ".join(repr(str(m.get("title"))) for m in hits[:6])
                raise ConfigError(f"movie {ref!r} is ambiguous: {names}; give more of the title")
        raise ConfigError(_format_suggestion("movie", ref, [str(m.get("title")) for m in movies]))

    # ------------------------------------------------------------------ queries
    def query_vector(self, text: str | None = None, image=None, text_weight: float = 0.5):
        """The query embedding: text, image, or their normalised weighted sum."""
        vecs = []
        if text:
            vecs.append((text_weight if image is not None else 1.0, self._encode_text(text)))
        if image is not None:
            vecs.append((1.0 - text_weight if text else 1.0, self._encode_image(image)))
        if not vecs:
            raise ConfigError("give a text query, an image, or a shot to search like")
        v = sum(w * x for w, x in vecs)
        return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)

    def _encode_text(self, text: str) -> np.ndarray:
        with self._lock:  # one forward pass at a time keeps CPU threads from fighting
            return self.encoder.encode_text([text])[0]

    def _encode_image(self, image) -> np.ndarray:
        with self._lock:
            return self.encoder.encode_images([image])[0]

    def shot_vector(self, shot_id: str) -> np.ndarray:
        parse_shot_id(shot_id)  # readable error for malformed ids
        recs = self.store.retrieve([point_id(shot_id)], with_vectors=[VECTOR_CLIP])
        if not recs:
            raise InputError(f"no shot {shot_id} in the index")
        return np.asarray(recs[0].vectors[VECTOR_CLIP], dtype=np.float32)

    def search(
        self,
        text: str | None = None,
        image=None,
        like: str | None = None,
        filters: SearchFilters | None = None,
        limit: int = 12,
        offset: int = 0,
        per_movie: int | None = None,
        dedup: float | None = None,
        min_score: float | None = None,
        text_weight: float = 0.5,
        params: SearchParams | None = None,
    ) -> SearchResult:
        """Search by text, image (path, bytes, PIL or array) and/or like=SHOT_ID; with none of
        them, browse the shots matching ``filters`` in (movie, time) order.

        ``per_movie`` keeps at most that many shots per movie; ``dedup`` collapses shots of one
        movie whose vectors have cosine ≥ dedup with a better-ranked kept shot; ``min_score``
        drops hits below it and sets ``no_good_match`` when none is left. Pages (``limit``,
        ``offset``) count shots after grouping and dedup.
        """
        # every bound in one place (search/validate.py), before anything reaches the store
        knobs = check_request(text, limit, offset, per_movie, dedup, min_score, text_weight)
        limit, offset, per_movie = knobs["limit"], knobs["offset"], knobs["per_movie"]
        dedup, min_score, text_weight = knobs["dedup"], knobs["min_score"], knobs["text_weight"]
        if self.is_empty:
            return SearchResult([], "browse" if not (text or image is not None or like) else "text")
        flt = self.build_filter(filters)
        if not text and image is None and not like:
            return self.browse(flt, limit, offset)
        if like:
            if text or image is not None:
                raise ConfigError("--like cannot be combined with a text or image query")
            vec, mode = self.shot_vector(like), "like"
        else:
            vec = self.query_vector(text, image, text_weight)
            mode = "text+image" if text and image is not None else ("text" if text else "image")
        need = offset + limit
        frames = mode != "like"  # "more like this shot" compares shots as wholes (mean vectors)
        shaped = self.nearest(vec, flt, need, per_movie, dedup, params, frames=frames)
        best = shaped[0].score if shaped else None
        if min_score is not None:
            shaped = [r for r in shaped if r.score is not None and r.score >= min_score]
        page = shaped[offset:need]
        moments = self.match_times(vec, page) if frames else {}
        return SearchResult(
            [self._hit(r, moments.get(r.id)) for r in page],
            mode,
            no_good_match=min_score is not None and not shaped,
            best_score=best,
            exhausted=len(shaped) <= need,
        )

    def nearest(
        self,
        vec: np.ndarray,
        flt: Filter | None,
        need: int,
        per_movie: int | None = None,
        dedup: float | None = None,
        params: SearchParams | None = None,
        frames: bool = True,
    ) -> list[StoredRecord]:
        """The best shots for a query vector under ``flt`` (from :meth:`build_filter`), grouped
        and deduplicated as in :meth:`search`, best first: more than ``need`` when that many
        exist within ``MAX_CANDIDATES`` candidates, so a caller can tell whether a next page
        exists. With ``frames`` and an index that has frame vectors, a shot's score is its
        best frame's cosine (the nearest ``frame_candidates`` shots by mean vector, rescored)."""
        shaping = per_movie is not None or dedup is not None
        fetch = need + 1 if not shaping else max(4 * need, 50)
        most: int | None = None  # shots grouping can keep at all (per_movie without dedup)
        while True:
            rescore = None
            if frames and self.frame_vector:
                cand = max(self.frame_candidates, 2 * fetch) if self.frame_candidates else 0
                rescore = Rescore(self.frame_vector, cand)
            recs = self.store.search(
                vec, VECTOR_CLIP, flt, limit=fetch,
                with_vectors=[VECTOR_CLIP] if dedup else False, params=params, rescore=rescore,
            )  # fmt: skip
            shaped = self._shape(recs, per_movie, dedup)
            if len(shaped) > need or len(recs) < fetch or fetch >= MAX_CANDIDATES:
                return shaped
            if per_movie is not None and dedup is None:
                # Fewer movies match than the page asks for (a small index, a narrow filter):
                # once every movie has its quota, fetching more candidates finds nothing new.
                if most is None:
                    most = self._group_capacity(flt, per_movie)
                if len(shaped) >= most:
                    return shaped
            fetch = min(fetch * 4, MAX_CANDIDATES)

    def match_times(self, vec: np.ndarray, recs: list[StoredRecord]) -> dict[str, float]:
        """Point id → time (s) of its best-matching frame, for shots with frame vectors: one
        retrieve of the page's frame rows and a dot product per row (rows align with the
        payload's ``frame_s``)."""
        if not self.frame_vector or not recs:
            return {}
        got = self.store.retrieve([r.id for r in recs], with_vectors=[self.frame_vector])
        out: dict[str, float] = {}
        for r in got:
            times = r.payload.get("frame_s") or []
            rows = np.asarray((r.vectors or {}).get(self.frame_vector, []), dtype=np.float32)
            if rows.ndim == 2 and len(rows) == len(times) and len(times):
                out[r.id] = float(times[int(np.argmax(rows @ vec))])
        return out

    def _group_capacity(self, flt: Filter | None, per_movie: int) -> int:
        """How many shots grouping with at most ``per_movie`` per movie can keep under ``flt``
        (``MAX_CANDIDATES`` when more movies match than one facet request lists)."""
        counts = self.store.facet("movie_id", flt, limit=FACET_MOVIES)
        if len(counts) >= FACET_MOVIES:
            return MAX_CANDIDATES
        return sum(min(int(c), per_movie) for c in counts.values())

    def _shape(self, recs: list[StoredRecord], per_movie: int | None, dedup: float | None):
        if per_movie is None and dedup is None:
            return recs
        kept: list[StoredRecord] = []
        per: dict[str, int] = {}
        kept_vecs: dict[str, list[np.ndarray]] = {}
        for r in recs:
            mid = r.payload["movie_id"]
            if per_movie is not None and per.get(mid, 0) >= per_movie:
                continue
            if dedup is not None:
                v = np.asarray(r.vectors[VECTOR_CLIP], dtype=np.float32)
                if any(float(v @ u) >= dedup for u in kept_vecs.get(mid, [])):
                    continue
                kept_vecs.setdefault(mid, []).append(v)
            per[mid] = per.get(mid, 0) + 1
            kept.append(r)
        return kept

    def browse(self, flt: Filter | None, limit: int = 12, offset: int = 0) -> SearchResult:
        """Shots matching ``flt`` in (title, movie, start time) order, without a query."""
        recs = list(self.store.iter_points(flt))
        recs.sort(
            key=lambda r: (str(r.payload.get("title")), r.payload["movie_id"],
                           r.payload["start_s"])
        )  # fmt: skip
        page = recs[offset : offset + limit]
        return SearchResult(
            [self._hit(r) for r in page], "browse", exhausted=offset + limit >= len(recs)
        )

    def shot(self, shot_id: str) -> Hit:
        """One shot's details by id."""
        parse_shot_id(shot_id)
        recs = self.store.retrieve([point_id(shot_id)])
        if not recs:
            raise InputError(f"no shot {shot_id} in the index")
        return self._hit(recs[0])

    def _hit(self, r: StoredRecord, match_s: float | None = None) -> Hit:
        p = r.payload
        return Hit(
            shot_id=p["shot_id"],
            movie_id=p["movie_id"],
            title=p.get("title") or p["movie_id"],
            year=p.get("year"),
            genres=tuple(p.get("genres") or ()),
            shot_index=p["shot_index"],
            start_s=float(p["start_s"]),
            end_s=float(p["end_s"]),
            labels=tuple(p.get("labels") or ()),
            top=tuple(LabelScore(t["label"], float(t["score"])) for t in p.get("top") or ()),
            thumb=os.path.join(self.index_dir, p["thumb"]) if p.get("thumb") else "",
            path=p.get("path", ""),
            score=None if r.score is None else float(r.score),
            match_s=match_s,
            start_frame=p.get("start_frame"),
            end_frame=p.get("end_frame"),
            fps=p.get("fps"),
        )

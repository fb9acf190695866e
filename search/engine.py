"""The search engine: text, image and "more like this shot" queries over an index, with filters
inside the vector search and result shaping (pages, group by movie, near-duplicate collapse,
score threshold). Also browsing without a query (a movie's shots in time order, label-only).

It opens an index through the store interface (never a Qdrant client), loads the model the index
was built with — refusing another one — and keeps it warm for every query. Its parts: filters
(search/filters.py), ranking (search/ranking.py), results (search/hits.py), input bounds
(search/validate.py).
"""

from __future__ import annotations

import os
import threading

import numpy as np

from scenesearch.indexer import encoder as clip  # no torch until a model loads
from scenesearch.indexer.config import StoreConfig
from scenesearch.indexer.errors import ConfigError, IndexMismatchError, InputError
from scenesearch.indexer.model_spec import LEGACY_FRAME_SHORT_SIDE, ModelSpec
from scenesearch.indexer.records import LabelScore, parse_shot_id, point_id
from scenesearch.indexer.store import (
    VECTOR_CLIP,
    Filter,
    SearchParams,
    ShotStore,
    StoredRecord,
    open_store,
)
from scenesearch.indexer.stored import ShotRecord
from scenesearch.search.filters import SearchFilters, build_filter, resolve_movie
from scenesearch.search.hits import Hit, SearchResult
from scenesearch.search.ranking import ShotRanking
from scenesearch.search.validate import NAME, InputValueError, check_request

# Best-frame ranking: shots nearest by their mean vector (HNSW, filter inside) rescored by their
# best frame (MAX_SIM over the "frames" multivector). Measured in docs/benchmarks.md (bench
# search with frame vectors): recall@10 against exact best-frame ranking vs prefetch size.
FRAME_CANDIDATES = 256
# ... except under a filter that passes so many shots that the store walks the HNSW graph under
# it (ACORN) instead of scanning them: such a walk costs ~10x more per candidate. At 1 M shots
# (genre on 22 %, m 24, int8 walk) 96 candidates (ef 96) kept 0.967 of the top 10 that an exact
# prefetch of 256 gives, at p95 25 ms against 55 ms for 256 (64: 0.949 at 17 ms); a narrow
# filter (scanned exactly) keeps 256 — at 64 its recall fell to 0.84.
WALK_CANDIDATES = 96
MEAN_RANKING_NOTE = (
    "this index has no per-frame vectors (built before scenesearch ranked shots by their "
    "best-matching frame): results rank by each shot's mean vector; re-index into a new "
    "folder for best-frame ranking and match times"
)


class SearchEngine(ShotRanking):
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
        self.walk_candidates = WALK_CANDIDATES  # 0: frame_candidates under every filter

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
            spec = ModelSpec.from_meta(self.meta)  # older metas: what they were built with
            enc = clip.ClipEncoder(spec.config(self.device), frame_short_side=spec.frame_short_side)
            why = spec.mismatch(enc.spec)
            if why:
                raise IndexMismatchError(why)
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
        return build_filter(self, f)

    def resolve_movie(self, ref: str) -> str:
        """A movie id, title or file name → movie id (see :func:`search.filters.resolve_movie`)."""
        return resolve_movie(self, ref)

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
        # scaled as this index's frames were (also with an encoder handed in from outside)
        side = int((self.meta or {}).get("frame_short_side") or LEGACY_FRAME_SHORT_SIDE)
        with self._lock:
            return self.encoder.encode_images([image], side)[0]

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
                raise InputValueError(
                    "like", f"{NAME} cannot be combined with a text or image query"
                )
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
        s = ShotRecord.from_payload(r.payload)
        return Hit(
            shot_id=s.shot_id,
            movie_id=s.movie_id,
            title=s.title or s.movie_id,
            year=s.year,
            genres=tuple(s.genres or ()),
            shot_index=s.shot_index,
            start_s=float(s.start_s),
            end_s=float(s.end_s),
            labels=tuple(s.labels or ()),
            top=tuple(LabelScore(t.label, float(t.score)) for t in s.top or ()),
            thumb=os.path.join(self.index_dir, s.thumb) if s.thumb else "",
            path=s.path or "",
            score=None if r.score is None else float(r.score),
            match_s=match_s,
            start_frame=s.start_frame,
            end_frame=s.end_frame,
            fps=s.fps,
        )

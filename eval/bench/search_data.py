"""``bench search``'s workload: N synthetic shots (clustered vectors, realistic payloads) written
into a store and to a float32 file, the queries, the filters and the numpy brute force."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DIM = 512
CHUNK = 20_000  # points generated / upserted per chunk (bounds memory)
SHOTS_PER_MOVIE = 1000  # ~a feature film's shot count
GENRES = (
    "drama", "comedy", "thriller", "action", "romance", "crime", "horror", "adventure",
    "sci-fi", "fantasy", "mystery", "family", "animation", "biography", "history", "war",
    "music", "western", "sport", "documentary",
)  # fmt: skip
TEXT_QUERIES = (
    "a rainy street at night", "two people talking in a kitchen", "a car chase on a highway",
    "a crowded bar", "an empty beach at sunset", "a hospital corridor", "a courtroom",
    "a spaceship cockpit", "a forest in the snow", "a office with computers",
)  # fmt: skip


# ------------------------------------------------------------------------------ data
@dataclass
class Corpus:
    """What the generator made: where the vectors are and the facts filters need."""

    vectors_path: str  # float32 [N, DIM], row i = point i
    n: int
    centers: np.ndarray  # [C, DIM] cluster centres (queries are drawn near them)
    label_counts: dict[str, int]
    genre_counts: dict[str, int]
    movie_of: np.ndarray  # int32 [N] movie index of each point
    labels_of: list[tuple[int, ...]]  # clean label indices per point
    genres_of_movie: list[tuple[int, ...]]
    top: np.ndarray  # int16 [N, 5] top-5 label indices per point, best first
    top_score: np.ndarray  # float64 [N, 5] their scores (as stored: rounded to 6 decimals)
    year: np.ndarray  # int32 [N] the point's movie year
    duration: np.ndarray  # float32 [N] shot duration in seconds (as stored: 4 decimals)


def zipf(n: int, s: float = 1.0) -> np.ndarray:
    """Zipf-like probabilities p_i ∝ 1 / i^s over n items (i = 1..n), summing to 1."""
    p = 1.0 / np.arange(1, n + 1) ** s
    return p / p.sum()


def generate(
    n: int, work: Path, labels: tuple[str, ...], seed: int, store, log, dim: int = DIM
) -> tuple[Corpus, float]:
    """Generate N points in chunks and upsert them; returns (corpus, seconds inside the store)."""
    from scenesearch.indexer.records import LabelScore, make_shot_id
    from scenesearch.indexer.store import VECTOR_CLIP, VECTOR_SCENES
    from scenesearch.indexer.stored import ShotRecord

    rng = np.random.default_rng(seed)
    n_clusters = max(8, n // 200)
    centers = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    n_movies = max(1, n // SHOTS_PER_MOVIE)
    L = len(labels)
    label_order = rng.permutation(L)  # which label is frequent is arbitrary
    label_p = np.zeros(L)
    label_p[label_order] = zipf(L, 1.0)
    genre_p = zipf(len(GENRES), 1.1)
    genres_of_movie = []
    for _ in range(n_movies):
        k = int(rng.integers(1, 4))
        genres_of_movie.append(tuple(sorted(rng.choice(len(GENRES), k, replace=False, p=genre_p))))
    years = rng.integers(1930, 2025, n_movies)
    vec_path = str(work / "vectors.f32")
    mm = np.lib.format.open_memmap(vec_path, mode="w+", dtype=np.float32, shape=(n, dim))
    movie_of = np.minimum(np.arange(n) // SHOTS_PER_MOVIE, n_movies - 1).astype(np.int32)
    labels_of: list[tuple[int, ...]] = []
    label_counts = np.zeros(L, np.int64)
    top_all = np.zeros((n, 5), np.int16)
    top_score_all = np.zeros((n, 5), np.float64)
    dur_all = np.zeros(n, np.float32)
    store_s = 0.0
    t_log = time.perf_counter()
    for a in range(0, n, CHUNK):
        b = min(n, a + CHUNK)
        m = b - a
        cl = rng.integers(0, n_clusters, m)
        v = centers[cl] + rng.standard_normal((m, dim)).astype(np.float32) * (0.5 / np.sqrt(dim))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        mm[a:b] = v
        n_lab = rng.choice(4, m, p=[0.15, 0.35, 0.35, 0.15])  # clean labels per shot: 0..3
        # Top-5 labels drawn without replacement with Zipf weights (Gumbel top-k, vectorised).
        gumbel = np.log(label_p)[None, :] - np.log(-np.log(rng.random((m, L))))
        tops = np.argsort(-gumbel, axis=1)[:, :5]
        scores = -np.sort(-rng.dirichlet(np.ones(5) * 0.7, size=m), axis=1) * 0.9
        top_all[a:b] = tops
        top_score_all[a:b] = np.round(scores, 6)
        points = []
        for j in range(m):
            i = a + j
            top, sc = tops[j], scores[j]
            clean = tuple(int(x) for x in top[: n_lab[j]])
            labels_of.append(clean)
            label_counts[list(clean)] += 1
            mi = int(movie_of[i])
            idx = i - mi * SHOTS_PER_MOVIE
            start = idx * 4.0
            dur = float(rng.uniform(0.6, 8.0))
            dur_all[i] = round(dur, 4)
            scenes = np.zeros(L, np.float32)
            scenes[top] = sc
            sid = make_shot_id(f"m{mi:05d}", idx)
            shot = ShotRecord(
                shot_id=sid,
                movie_id=f"m{mi:05d}",
                path=f"/movies/m{mi:05d}.mp4",
                title=f"Movie {mi:05d}",
                year=int(years[mi]),
                genres=tuple(GENRES[g] for g in genres_of_movie[mi]),
                shot_index=idx,
                start_s=start,
                end_s=round(start + dur, 4),
                duration_s=round(dur, 4),
                start_frame=int(start * 24),
                end_frame=int((start + dur) * 24),
                fps=24.0,
                labels=tuple(labels[x] for x in clean),
                top_labels=tuple(labels[x] for x in top),
                top=tuple(LabelScore(labels[x], round(float(s), 6)) for x, s in zip(top, sc)),
                thumb=f"thumbs/m{mi:05d}/{idx:04d}.jpg",
                model="synthetic",
                n_frames_used=3,
                vectors={VECTOR_CLIP: v[j], VECTOR_SCENES: scenes},
            )
            points.append(shot.to_point())
        t0 = time.perf_counter()
        store.upsert(points)
        store_s += time.perf_counter() - t0
        if time.perf_counter() - t_log > 15 or b == n:
            log(
                f"[ingest] {b:,}/{n:,} points ({b / max(store_s, 1e-9):,.0f} points/s in the store)"
            )
            t_log = time.perf_counter()
    t0 = time.perf_counter()
    store.flush()
    store_s += time.perf_counter() - t0
    mm.flush()
    del mm
    gc = np.zeros(len(GENRES), np.int64)
    per_movie = np.bincount(movie_of, minlength=n_movies)
    for mi, gs in enumerate(genres_of_movie):
        for g in gs:
            gc[g] += per_movie[mi]
    corpus = Corpus(
        vec_path, n, centers,
        {labels[i]: int(c) for i, c in enumerate(label_counts)},
        {GENRES[i]: int(c) for i, c in enumerate(gc)},
        movie_of, labels_of, genres_of_movie,
        top_all, top_score_all, years[movie_of].astype(np.int32), dur_all,
    )  # fmt: skip
    return corpus, store_s


def make_queries(corpus: Corpus, q: int, seed: int) -> np.ndarray:
    """Query vectors near random cluster centres (a text query lands near some kind of shot)."""
    rng = np.random.default_rng(seed + 1)
    return near_centres(corpus.centers, rng.integers(0, len(corpus.centers), q), rng)


def near_centres(centers: np.ndarray, idx: np.ndarray, rng) -> np.ndarray:
    """Unit query vectors near ``centers[idx]`` (Gaussian noise of 0.6/√dim per coordinate),
    the synthetic benches' queries."""
    c = centers[idx]
    v = c + rng.standard_normal(c.shape).astype(np.float32) * (0.6 / np.sqrt(c.shape[1]))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def label_mask(corpus: Corpus, i: int) -> np.ndarray:
    """Which points have clean label ``i``."""
    return np.fromiter((i in ls for ls in corpus.labels_of), bool, corpus.n)


def genre_mask(corpus: Corpus, g: int) -> np.ndarray:
    """Which points belong to a movie of genre ``g``."""
    return np.array([g in gs for gs in corpus.genres_of_movie])[corpus.movie_of]


def boundary_filter(corpus: Corpus, labels: tuple[str, ...], thr_points: int):
    """(SearchFilters, mask, fraction, description) of the clean label or genre matching the
    fewest shots above ``thr_points`` (the engine's full-scan threshold), or None."""
    from scenesearch.search import SearchFilters

    above = [(c, "label", k) for k, c in corpus.label_counts.items() if c > thr_points]
    above += [(c, "genre", k) for k, c in corpus.genre_counts.items() if c > thr_points]
    if not above:
        return None
    count, kind, name = min(above)
    if kind == "label":
        mask = label_mask(corpus, labels.index(name))
        sf = SearchFilters(labels_any=(name,))
    else:
        mask = genre_mask(corpus, GENRES.index(name))
        sf = SearchFilters(genres=(name,))
    return sf, mask, count / corpus.n, f"{kind} {name}"


def other_filters(corpus: Corpus, labels: tuple[str, ...]) -> dict[str, tuple]:
    """The filter kinds a user sets beside a clean label or a genre, each as (SearchFilters, mask,
    fraction, description): a label among the top 5 (the app's "top" label mode), a label in the
    top 3 with score ≥ 0.2 (a nested condition on ``top[]``), and a decade + duration range."""
    from scenesearch.search import SearchFilters

    n = corpus.n
    out = {}
    counts = np.bincount(corpus.top.ravel(), minlength=len(labels))
    name, frac = closest({lb: int(c) for lb, c in zip(labels, counts)}, n, 0.05)
    i = labels.index(name)
    out["top_label"] = (SearchFilters(labels_any=(name,), label_source="top"),
                        (corpus.top == i).any(axis=1), frac, f"label {name} among the top 5")  # fmt: skip
    good = corpus.top_score[:, :3] >= 0.2
    counts = np.bincount(corpus.top[:, :3][good], minlength=len(labels))
    name, frac = closest({lb: int(c) for lb, c in zip(labels, counts)}, n, 0.05)
    i = labels.index(name)
    out["top_label_scored"] = (
        SearchFilters(labels_any=(name,), label_source="top", label_top_k=3, label_min_score=0.2),
        ((corpus.top[:, :3] == i) & good).any(axis=1),
        frac,
        f"label {name} in the top 3 with score ≥ 0.2",
    )
    lo = int(np.sort(corpus.year)[n // 2]) // 10 * 10  # the decade of the median shot
    mask = (corpus.year >= lo) & (corpus.year <= lo + 9)
    mask &= (corpus.duration >= 2.0) & (corpus.duration <= 4.0)
    out["year_duration"] = (
        SearchFilters(year_min=lo, year_max=lo + 9, duration_min=2.0, duration_max=4.0),
        mask, float(mask.mean()), f"year {lo}–{lo + 9} and duration 2–4 s",
    )  # fmt: skip
    return out


def closest(counts: dict[str, int], n: int, frac: float) -> tuple[str, float]:
    present = [k for k in counts if counts[k] > 0]  # a filter must name something indexed
    name = min(present, key=lambda k: abs(counts[k] / n - frac))
    return name, counts[name] / n


# ------------------------------------------------------------------------------ brute force
class BruteForce:
    """Exact search with numpy: float32 matmul over all vectors (in RAM), then top-k."""

    def __init__(self, path: str):
        self.v = np.load(path)  # [N, D] float32, in RAM

    def scores(self, q: np.ndarray) -> np.ndarray:
        return self.v @ q

    def top(self, q: np.ndarray, k: int, mask: np.ndarray | None = None) -> np.ndarray:
        s = self.scores(q)
        if mask is not None:
            s = np.where(mask, s, -np.inf)
        k = min(k, int(np.isfinite(s).sum()) if mask is not None else len(s))
        idx = np.argpartition(-s, k - 1)[:k] if k else np.empty(0, np.int64)
        return idx[np.argsort(-s[idx])]

    def top_movies(self, q: np.ndarray, k: int, movie_of: np.ndarray) -> list[int]:
        """Best shot per movie, the k best movies (exact group-by)."""
        s = self.scores(q)
        best = np.full(movie_of.max() + 1, -np.inf, np.float32)
        np.maximum.at(best, movie_of, s)
        return [int(x) for x in np.argsort(-best)[:k]]


def shot_ids(corpus: Corpus):
    """A function from a point's row to its shot id (as :func:`generate` made it)."""

    def sid(i: int) -> str:
        from scenesearch.indexer.records import make_shot_id

        mi = int(corpus.movie_of[i])
        return make_shot_id(f"m{mi:05d}", i - mi * SHOTS_PER_MOVIE)

    return sid

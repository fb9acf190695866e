"""``scenesearch bench stills``: find the shot a screenshot came from, old scheme vs new.

For every corpus film a still is taken every 2 s, re-encoded as a user's screenshot would be
(640 px wide, JPEG q=75) and used as an image query restricted to that film. The hit is the shot
that contains the still's frame. Side by side, in ONE run on the same machine: the old index (the
mean of k=3 frames per shot, no frame vectors), the new default (duration-aware frames, ranked by
the best-matching frame through the store's prefetch + MAX_SIM rescore), and exact brute force
over the embedding of every decoded frame (the upper bound). Also: indexing wall time of each
scheme (the long film timed alone, twice, interleaved), images embedded, index disk and resident
memory, query p95, and — from the every-frame embeddings — a sweep of sampling settings
(interval, cap) scored offline with the same shots, to choose the default.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import io
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scenesearch.eval.bench.common import (
    Log,
    dir_size,
    machine_info,
    now_iso,
    percentiles,
    write_report,
)
from scenesearch.eval.bench.config import StillsBenchConfig
from scenesearch.eval.bench.stills_report import markdown
from scenesearch.eval.bench.stores import index_memory
from scenesearch.indexer.config import ModelConfig

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "video"
LONG_FILM = "bbb_full_1280x720_24p.mp4"
LENGTHS = (("<4 s", 0.0, 4.0), ("4-12 s", 4.0, 12.0), (">12 s", 12.0, float("inf")))
# (frame interval s, cap, edge frame s) settings scored offline
SWEEP = ((None, 16, 0.0), (2.0, 16, 0.0), (2.0, 32, 0.0), (2.0, 32, 0.1), (1.5, 32, 0.1),
         (1.0, 16, 0.0), (1.0, 32, 0.1), (4.0, 16, 0.0), (0.75, 64, 0.1), (0.5, 64, 0.1))  # fmt: skip
# every n-th brute-force frame of each shot (no cap): how dense sampling must be
DENSITY = (1, 2, 3, 4, 8)


# ------------------------------------------------------------------------------ every frame
def all_frame_embeddings(
    path: str, encoder, cache_dir: str, stride: int = 1, log=None
) -> dict[str, np.ndarray]:
    """Embedding of every ``stride``-th decoded frame of ``path`` (1: every frame; the indexer's
    decoder and encoder) with its time: ``{"t": [n], "feats": [n, D]}``, cached on disk by file,
    model and stride."""
    st = os.stat(path)
    ident = f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}|{encoder.spec.model_id}"
    key = hashlib.sha1(f"{ident}|{stride}".encode()).hexdigest()[:16]
    cache = Path(cache_dir) / f"{Path(path).stem}-{key}.npz"
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    with open(f"{cache}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process filling the same cache: wait for it
        if cache.exists():
            with np.load(cache) as z:
                return {"t": z["t"], "feats": z["feats"]}
        return _embed_every_frame(path, encoder, cache, stride, log)


def _embed_every_frame(path, encoder, cache: Path, stride: int, log) -> dict[str, np.ndarray]:
    from scenesearch.indexer.decode import VideoReader

    t0 = time.perf_counter()
    times, feats, batch = [], [], []
    for f in VideoReader(path):
        if f.index % stride:
            continue
        times.append(f.t)
        batch.append(f.rgb)
        if len(batch) == 64:
            feats.append(encoder.encode_frames(np.stack(batch)))
            batch = []
    if batch:
        feats.append(encoder.encode_frames(np.stack(batch)))
    out = {"t": np.asarray(times, np.float64), "feats": np.concatenate(feats).astype(np.float32)}
    np.savez(str(cache)[: -len(".npz")] + ".tmp.npz", **out)
    os.replace(str(cache)[: -len(".npz")] + ".tmp.npz", cache)
    if log:
        log(f"every frame of {Path(path).name}: {len(times)} frames in "
            f"{time.perf_counter() - t0:.0f} s")  # fmt: skip
    return out


# ------------------------------------------------------------------------------ stills
def screenshots(path: str, every_s: float, width: int, quality: int) -> list[tuple[float, bytes]]:
    """(time, JPEG bytes) of the first frame at or after every ``every_s`` seconds, decoded at
    full size, scaled to ``width`` px wide and JPEG-encoded at ``quality`` (a user's still)."""
    import av
    from PIL import Image

    out: list[tuple[float, bytes]] = []
    with av.open(path) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        nxt = 0.0
        for frame in c.decode(stream):
            if frame.time is None or frame.time < nxt:
                continue
            img = frame.to_image()
            h = max(1, round(img.height * width / img.width))
            buf = io.BytesIO()
            img.resize((width, h), Image.LANCZOS).save(buf, "JPEG", quality=quality)
            out.append((float(frame.time), buf.getvalue()))
            nxt = float(frame.time) + every_s
    return out


@dataclass
class ShotRow:
    point_id: str
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def shot_rows(store) -> dict[str, list[ShotRow]]:
    """movie_id → its shots in time order."""
    out: dict[str, list[ShotRow]] = {}
    for r in store.iter_points():
        p = r.payload
        out.setdefault(p["movie_id"], []).append(ShotRow(r.id, p["start_s"], p["end_s"]))
    return {k: sorted(v, key=lambda s: s.start_s) for k, v in out.items()}


def shot_of(shots: list[ShotRow], t: float) -> int:
    """Index of the shot containing time t (the last one starting at or before it)."""
    starts = np.array([s.start_s for s in shots])
    return max(0, int(np.searchsorted(starts, t + 1e-6, side="right")) - 1)


def length_class(d: float) -> str:
    return next(name for name, lo, hi in LENGTHS if lo <= d < hi)


def sampled_frames(store) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """point id → (times, vectors) of the frames the index keeps for that shot."""
    from scenesearch.indexer.store import VECTOR_FRAMES

    return {r.id: (np.asarray(r.payload["frame_s"], np.float64),
                   np.asarray(r.vectors[VECTOR_FRAMES], np.float32))
            for r in store.iter_points(with_vectors=True)}  # fmt: skip


def explain_miss(q, t, shots, truth, got, sampled, feats, times, owner) -> dict:
    """Why the best-frame index missed a still that brute force found: the true and returned
    shots, how far (s) the still is from the true shot's nearest sampled frame and from its edges,
    and the cosines: best sampled frame of the true shot, of the returned one, best of every
    frame of the true shot (brute force) and when that frame is."""
    ts, vs = sampled[shots[truth].point_id]
    own = np.flatnonzero(owner == truth)
    cos_all = feats[own] @ q
    sh = shots[truth]
    return {
        "shot": [round(sh.start_s, 2), round(sh.end_s, 2)],
        "returned": [round(shots[got].start_s, 2), round(shots[got].end_s, 2)],
        "nearest_sampled_dt": round(float(np.min(np.abs(ts - t))), 2),
        "edge_dt": round(min(t - sh.start_s, sh.end_s - t), 2),
        "cos_true_sampled": round(float(np.max(vs @ q)), 4),
        "cos_returned_sampled": round(float(np.max(sampled[shots[got].point_id][1] @ q)), 4),
        "cos_true_brute": round(float(cos_all.max()), 4),
        "brute_frame_t": round(float(times[own[int(np.argmax(cos_all))]]), 2),
    }


# ------------------------------------------------------------------------------ brute force
def frame_shots(times: np.ndarray, shots: list[ShotRow]) -> np.ndarray:
    """Shot index of every decoded frame (by time)."""
    starts = np.array([s.start_s for s in shots])
    return np.clip(np.searchsorted(starts, times + 1e-6, side="right") - 1, 0, len(shots) - 1)


def rank_best_frame(q: np.ndarray, feats: np.ndarray, owner: np.ndarray, n_shots: int):
    """Shots ranked by their best frame's cosine with q (exact, every frame given)."""
    scores = np.full(n_shots, -np.inf)
    np.maximum.at(scores, owner, feats @ q)
    return np.argsort(-scores, kind="stable")


def sweep(films: dict, settings=SWEEP, density=DENSITY) -> list[dict]:
    """hit@1 pooled and on shots > 12 s, and images embedded, for each (interval, cap, edge)
    setting, scored offline from the every-frame embeddings with the same stills and shots (the
    product's rule, :func:`indexer.sampling.sample_targets`, over the embedded frames); then the
    ``density`` series: every n-th embedded frame of each shot, whatever its length (how close to
    a still a sampled frame must be). A setting never samples a still's own decoded frame (the
    indexer would only by chance; brute force has it): its neighbours stand in for it."""
    from scenesearch.indexer.config import SampleConfig
    from scenesearch.indexer.sampling import sample_targets

    def by_rule(cfg):
        return lambda idx, d: idx[sample_targets(0, len(idx), d, 3, cfg)]

    def every(n):
        return lambda idx, d: idx[n // 2 :: n] if len(idx) > n else idx

    runs = [((i, c, e), by_rule(SampleConfig(frame_interval_s=i, max_frames_per_shot=c,
                                             edge_frame_s=e))) for i, c, e in settings]  # fmt: skip
    runs += [(n, every(n)) for n in density]
    out = []
    for key, pick_of in runs:
        images = 0
        hits = {"mean": [], "frames": []}
        long_hits = {"mean": [], "frames": []}
        for f in films.values():
            shots, feats, owner = f["shots"], f["feats"], f["owner"]
            own_frame = np.isin(np.round(f["t"], 3), np.round(f["still_t"], 3))
            means, rows = [], []
            for s, sh in enumerate(shots):
                idx = np.flatnonzero((owner == s) & ~own_frame)
                if len(idx) == 0:
                    idx = np.flatnonzero(owner == s)
                if len(idx) == 0:
                    means.append(np.zeros(feats.shape[1], np.float32))
                    rows.append(np.zeros((1, feats.shape[1]), np.float32))
                    continue
                pick = pick_of(idx, sh.duration_s)
                images += len(pick)
                m = feats[pick].mean(0)
                means.append(m / max(np.linalg.norm(m), 1e-12))
                rows.append(feats[pick])
            means = np.stack(means)
            for q, truth in zip(f["queries"], f["truth"]):
                best = {
                    "mean": int(np.argmax(means @ q)),
                    "frames": int(np.argmax([float(np.max(r @ q)) for r in rows])),
                }
                for name, b in best.items():
                    hits[name].append(b == truth)
                    if shots[truth].duration_s >= 12:
                        long_hits[name].append(b == truth)
        row = ({"frame_interval_s": key[0], "max_frames_per_shot": key[1], "edge_frame_s": key[2]}
               if isinstance(key, tuple) else {"every_nth_frame": key})  # fmt: skip
        out.append({
            **row, "images": images,
            "hit1_mean_vector": round(float(np.mean(hits["mean"])), 4),
            "hit1_best_frame": round(float(np.mean(hits["frames"])), 4),
            "hit1_best_frame_long": round(float(np.mean(long_hits["frames"])), 4)
            if long_hits["frames"] else None,
        })  # fmt: skip
    return out


# ------------------------------------------------------------------------------ indexing
SCHEMES = {
    # today's default before this change: the mean of k=3 evenly spaced frames, nothing else
    "mean3": {"frame_interval_s": None, "frame_vectors": False},
    # the new default: duration-aware frames, every frame's vector kept (best-frame ranking)
    "frames": {},
}


def _index(scheme: str, index_dir: str, videos: list[str], encoder, labeler) -> dict:
    from scenesearch.indexer.config import IndexConfig
    from scenesearch.indexer.pipeline import Indexer

    cfg = IndexConfig()
    cfg.store.index_dir = index_dir
    cfg.model.name, cfg.model.pretrained, cfg.model.device = encoder.spec.name, "random", "cpu"
    cfg.run.progress = False
    for k, v in SCHEMES[scheme].items():
        setattr(cfg.sample, k, v)
    s = Indexer(cfg, encoder, labeler).run(videos)
    if s.failed:
        raise RuntimeError(f"indexing failed: {s.failed[0].path}: {s.failed[0].reason}")
    return {"wall_s": round(s.wall_s, 2), "images": s.images_embedded, "shots": s.shots,
            "video_s": round(s.video_s, 2), "stage_s": {k: round(v, 2) for k, v in
                                                          s.stage_s.items()}}  # fmt: skip


# ------------------------------------------------------------------------------ the run
def run_stills_bench(bc: StillsBenchConfig) -> dict:
    from scenesearch.indexer.config import LabelConfig, StoreConfig
    from scenesearch.indexer.encoder import ClipEncoder
    from scenesearch.indexer.labels import SceneLabeler
    from scenesearch.indexer.store import Filter, MatchAny
    from scenesearch.search import SearchEngine

    log = Log(bc.out_dir, bc.quiet)
    videos = bc.videos or sorted(str(p) for p in CORPUS.iterdir() if p.is_file())
    long_film = next((v for v in videos if Path(v).name == LONG_FILM), videos[0])
    rest = [v for v in videos if v != long_film]
    work = bc.work_dir or tempfile.mkdtemp(prefix="scenesearch-stills-")
    cache = bc.cache_dir or os.path.join(tempfile.gettempdir(), "scenesearch-stills")
    report: dict = {"started": now_iso(), "machine": machine_info(), "config": dataclasses.asdict(bc),
                    "videos": [Path(v).name for v in videos]}  # fmt: skip
    encoder = ClipEncoder(ModelConfig(bc.model, bc.pretrained, "cpu"))
    labeler = SceneLabeler(encoder, LabelConfig())
    dirs = {s: os.path.join(work, s) for s in SCHEMES}

    # 1. indexing: the long film alone, each scheme `repeats` times, interleaved (shared machine)
    saved = os.path.join(work, "indexing.json")
    if bc.reuse and os.path.exists(saved):
        with open(saved) as f:
            prev = json.load(f)
        timing, rest_runs = prev["runs"], prev["other_films"]
        log(f"reusing the indexes and indexing figures in {work}")
    else:
        timing = {s: [] for s in SCHEMES}
        for r in range(bc.repeats):
            for scheme in SCHEMES:
                shutil.rmtree(dirs[scheme], ignore_errors=True)
                timing[scheme].append(_index(scheme, dirs[scheme], [long_film], encoder, labeler))
                log(f"index {Path(long_film).name} [{scheme}] run {r + 1}: {timing[scheme][-1]}")
        rest_runs = {s: _index(s, dirs[s], rest, encoder, labeler) for s in SCHEMES} if rest else {}
        log(f"indexed the other {len(rest)} films: {rest_runs}")
        with open(saved, "w") as f:
            json.dump({"runs": timing, "other_films": rest_runs}, f)
    best = {s: min(timing[s], key=lambda x: x["wall_s"]) for s in SCHEMES}
    report["indexing"] = {
        "long_film": Path(long_film).name, "runs": timing, "best": best, "other_films": rest_runs,
        "wall_ratio": round(best["frames"]["wall_s"] / best["mean3"]["wall_s"], 3),
        "disk_mib": {s: round(dir_size(os.path.join(d, "shard")) / 2**20, 2)
                     for s, d in dirs.items()},
        "memory_mib": {s: index_memory(d) for s, d in dirs.items()},
    }  # fmt: skip
    log(
        f"indexing: {report['indexing']['wall_ratio']}× wall, disk {report['indexing']['disk_mib']}"
    )

    # 2. queries
    engines = {s: SearchEngine.open(StoreConfig(index_dir=d), encoder=encoder)
               for s, d in dirs.items()}  # fmt: skip
    exact = SearchEngine(engines["frames"].store, dirs["frames"], encoder)
    exact.frame_candidates = 0  # every shot of the film scored by MAX_SIM: checks the prefetch
    movies = {Path(m["path"]).name: m["movie_id"] for m in engines["frames"].movies()}
    rows_by_movie = shot_rows(engines["frames"].store)
    sampled = sampled_frames(engines["frames"].store)
    assert shot_rows(engines["mean3"].store).keys() == rows_by_movie.keys()
    methods = (
        ("mean3", "frames", "frames_exact", "brute")
        if bc.exact_rescore
        else ("mean3", "frames", "brute")
    )
    records: list[dict] = []
    latency: dict[str, list[float]] = {"mean3": [], "frames": []}
    films: dict[str, dict] = {}
    for v in [*rest, long_film]:  # the long film last: its every-frame pass is the longest
        name, t0 = Path(v).name, time.perf_counter()
        mid = movies[name]
        shots = rows_by_movie[mid]
        stride = (
            bc.long_brute_stride if v == long_film and bc.long_brute_stride else bc.brute_stride
        )
        brute = all_frame_embeddings(v, encoder, cache, stride, log)
        owner = frame_shots(brute["t"], shots)
        flt = Filter(must=(MatchAny("movie_id", (mid,)),))
        qs, truths = [], []
        every = bc.long_still_every_s if v == long_film and bc.long_still_every_s else None
        stills = screenshots(v, every or bc.still_every_s, bc.still_width, bc.still_quality)
        # the engine's image path (encode_images, then L2-normalised as query_vector does),
        # batched per film: one forward pass per film instead of one per still
        vecs = encoder.encode_images([jpeg for _, jpeg in stills])
        vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        for (t, _), q in zip(stills, vecs.astype(np.float32)):
            truth = shot_of(shots, t)
            ranked: dict[str, list[int]] = {}
            idx_of = {s.point_id: i for i, s in enumerate(shots)}
            for m, eng in (("mean3", engines["mean3"]), ("frames", engines["frames"]),
                           ("frames_exact", exact))[: len(methods) - 1]:  # fmt: skip
                t1 = time.perf_counter()
                recs = eng.nearest(q, flt, 5)[:5]
                moment = eng.match_times(q, recs[:1])
                if m in latency:
                    latency[m].append((time.perf_counter() - t1) * 1000)
                ranked[m] = [idx_of[r.id] for r in recs]
                if m == "frames" and recs:
                    match_s = moment.get(recs[0].id)
            ranked["brute"] = rank_best_frame(q, brute["feats"], owner, len(shots))[:5].tolist()
            rec = {
                "film": name,
                "t": round(t, 3),
                "truth": truth,
                "length": length_class(shots[truth].duration_s),
                "match_err_s": round(abs(match_s - t), 3) if match_s is not None else None,
            }
            for m in methods:
                rec[f"{m}_hit1"] = ranked[m][:1] == [truth]
                rec[f"{m}_hit5"] = truth in ranked[m][:5]
            if rec["brute_hit1"] and not rec["frames_hit1"] and ranked["frames"]:
                rec["miss"] = explain_miss(q, t, shots, truth, ranked["frames"][0], sampled,
                                           brute["feats"], brute["t"], owner)  # fmt: skip
            records.append(rec)  # fmt: skip
            qs.append(q)
            truths.append(truth)
        films[name] = {"shots": shots, "feats": brute["feats"], "owner": owner, "t": brute["t"],
                       "still_t": [t for t, _ in stills], "queries": qs, "truth": truths}  # fmt: skip
        log(f"{name}: {len(qs)} stills, {len(shots)} shots, {time.perf_counter() - t0:.0f} s")
    for e in engines.values():
        e.close()

    report["scores"] = score_table(records, methods)
    report["misses"] = [{"film": r["film"], "t": r["t"], **r["miss"]} for r in records
                        if "miss" in r]  # fmt: skip
    report["query_latency"] = {m: percentiles(v) for m, v in latency.items()}
    errs = [r["match_err_s"] for r in records if r["match_err_s"] is not None and r["frames_hit1"]]
    report["match_s_error"] = percentiles([e * 1000 for e in errs]) if errs else {}
    report["sweep"] = sweep(films)
    log(f"sweep: {report['sweep']}")
    report["targets"] = targets(report)
    report["finished"] = now_iso()
    write_report(bc.out_dir, report, markdown(report))
    if not bc.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    return report


def score_table(records: list[dict], methods) -> dict:
    """hit@1 / hit@5 of each method: pooled, per film, per shot-length class."""

    def agg(rs):
        d = {"stills": len(rs)}
        for m in methods:
            d[f"{m}_hit1"] = round(float(np.mean([r[f"{m}_hit1"] for r in rs])), 4)
            d[f"{m}_hit5"] = round(float(np.mean([r[f"{m}_hit5"] for r in rs])), 4)
        return d

    return {
        "pooled": agg(records),
        "by_film": {f: agg([r for r in records if r["film"] == f])
                    for f in dict.fromkeys(r["film"] for r in records)},
        "by_length": {c: agg([r for r in records if r["length"] == c])
                      for c, _, _ in LENGTHS if any(r["length"] == c for r in records)},
    }  # fmt: skip


def targets(report: dict) -> list[dict]:
    sc = report["scores"]
    pooled = sc["pooled"]
    groups = {**{f"film {k}": v for k, v in sc["by_film"].items()},
              **{f"shots {k}": v for k, v in sc["by_length"].items()}}  # fmt: skip
    worse = [k for k, v in groups.items() if v["frames_hit1"] < v["mean3_hit1"]]
    ratio = report["indexing"]["wall_ratio"]
    return [
        {"target": "pooled hit@1 ≥ 0.98 × brute force",
         "measured": f"{pooled['frames_hit1']:.3f} vs {pooled['brute_hit1']:.3f} "
                     f"({pooled['frames_hit1'] / max(pooled['brute_hit1'], 1e-9):.3f}×)",
         "met": pooled["frames_hit1"] >= 0.98 * pooled["brute_hit1"]},
        {"target": "hit@1 ≥ mean vector's on every film and length class",
         "measured": "worse on: " + (", ".join(worse) if worse else "none"), "met": not worse},
        {"target": f"indexing wall time of {report['indexing']['long_film']} ≤ 1.3× today's",
         "measured": f"{ratio:.2f}×", "met": ratio <= 1.3},
    ]  # fmt: skip

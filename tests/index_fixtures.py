"""A small REAL index for tests of search, the CLI and the web app: synthetic movies with known
cuts, titles, years and genres (from a manifest), indexed by the real pipeline with the tiny random
OpenCLIP model on CPU.

``build_test_index(tmp_dir)`` writes, under ``tmp_dir``::

    movies/a/night_harbour.mp4   "Night Harbour" (1994; crime, drama)     4 shots, 7.0 s
    movies/a/sunny_meadow.mp4    "Sunny Meadow"  (2008; comedy, family)   3 shots, 4.75 s
    movies/b/deep_orbit.mp4      "Deep Orbit"    (2019; sci-fi, thriller) 5 shots, 7.25 s
    private/secret.mp4           a movie NOT in the index (for "not served" checks)
    private/secret.txt
    manifest.csv                 path,title,year,genres,id (ids night-harbour, sunny-meadow,
                                 deep-orbit)
    index/                       the index (embedded store, thumbs/, config.json)

and returns ``(index_dir, info)``; ``info.movies`` lists every movie with its expected shot start
times. The videos are 320x180 (16:9), 24 fps, H.264 yuv420p MP4 with the index at the front
(``+faststart``): browsers play them. Shots alternate dark and bright levels (≥ 110 apart), so the
content detector finds exactly the written cuts. Labels and scores come from RANDOM weights: they
are deterministic (seeded) but meaningless — assert on structure and filters, not on meaning.
Building takes a few seconds on 2 CPU cores.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import TINY_MODEL
from tests.videos import Segment, write_video

FPS = 24.0
SIZE = (320, 180)


@dataclass(frozen=True)
class FixtureMovie:
    """One synthetic movie: where it is, its manifest metadata and its known shots."""

    movie_id: str
    title: str
    year: int
    genres: tuple[str, ...]
    rel_path: str  # under tmp_dir
    segments: tuple[Segment, ...]
    path: str = ""  # absolute, filled by build_test_index

    @property
    def n_shots(self) -> int:
        return len(self.segments)

    @property
    def shot_starts(self) -> tuple[float, ...]:
        """Expected start time of every shot, seconds (frame index / fps)."""
        out, f = [], 0
        for s in self.segments:
            out.append(f / FPS)
            f += s.n_frames
        return tuple(out)

    @property
    def duration_s(self) -> float:
        return sum(s.n_frames for s in self.segments) / FPS

    def shot_bounds(self, i: int) -> tuple[float, float]:
        starts = (*self.shot_starts, self.duration_s)
        return starts[i], starts[i + 1]


def _segs(*spec: tuple[int, int, str]) -> tuple[Segment, ...]:
    return tuple(
        Segment(n, level, pattern, seed=k + 1) for k, (n, level, pattern) in enumerate(spec)
    )


MOVIES: tuple[FixtureMovie, ...] = (
    FixtureMovie(
        "night-harbour", "Night Harbour", 1994, ("crime", "drama"), "movies/a/night_harbour.mp4",
        _segs((36, 40, "bars"), (48, 200, "noise"), (36, 70, "bars"), (48, 230, "bars")),
    ),
    FixtureMovie(
        "sunny-meadow", "Sunny Meadow", 2008, ("comedy", "family"), "movies/a/sunny_meadow.mp4",
        _segs((40, 170, "bars"), (30, 30, "noise"), (44, 200, "bars")),
    ),
    FixtureMovie(
        "deep-orbit", "Deep Orbit", 2019, ("sci-fi", "thriller"), "movies/b/deep_orbit.mp4",
        _segs((30, 60, "noise"), (36, 220, "bars"), (40, 40, "bars"), (30, 180, "noise"),
              (38, 90, "bars")),
    ),
)  # fmt: skip


@dataclass
class BuiltIndex:
    """What :func:`build_test_index` made (see the module docstring)."""

    index_dir: str
    movies: list[FixtureMovie]
    movie_dirs: list[str]  # the folders holding the indexed movies
    manifest: str
    outside_files: list[str]  # real files NOT under any allowed folder
    summary: object = None  # the indexer's RunSummary
    by_id: dict[str, FixtureMovie] = field(default_factory=dict)

    @property
    def n_shots(self) -> int:
        return sum(m.n_shots for m in self.movies)


def write_movies(
    tmp_dir: str | Path, movies: tuple[FixtureMovie, ...] = MOVIES
) -> list[FixtureMovie]:
    """Write the movie files and return the movies with absolute paths."""
    tmp = Path(tmp_dir)
    out = []
    for m in movies:
        p = tmp / m.rel_path
        p.parent.mkdir(parents=True, exist_ok=True)
        write_video(p, m.segments, fps=FPS, size=SIZE,
                    container_options={"movflags": "+faststart"})  # fmt: skip
        out.append(FixtureMovie(**{**m.__dict__, "path": str(p.resolve())}))
    return out


def build_test_index(
    tmp_dir: str | Path,
    movies: tuple[FixtureMovie, ...] = MOVIES,
    encoder=None,
    labeler=None,
) -> tuple[str, BuiltIndex]:
    """Write the synthetic movies and a manifest under ``tmp_dir`` and index them for real.

    ``encoder`` / ``labeler`` (e.g. the session's ``tiny_encoder`` / ``tiny_labeler``) are reused
    when given, otherwise built from the tiny model config. Returns ``(index_dir, info)``.
    """
    from scenesearch.indexer.config import IndexConfig, ModelConfig, RunConfig, StoreConfig
    from scenesearch.indexer.pipeline import Indexer

    tmp = Path(tmp_dir)
    written = write_movies(tmp, movies)
    manifest = tmp / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "title", "year", "genres", "id"])
        for m in written:
            w.writerow([m.rel_path, m.title, m.year, "|".join(m.genres), m.movie_id])
    private = tmp / "private"
    private.mkdir(exist_ok=True)
    shutil.copyfile(written[0].path, private / "secret.mp4")
    (private / "secret.txt").write_text("not for the web\n")

    index_dir = str(tmp / "index")
    cfg = IndexConfig(
        model=ModelConfig(name=TINY_MODEL, pretrained="random", device="cpu", batch_size=32),
        store=StoreConfig(index_dir=index_dir),
        run=RunConfig(workers=-1, progress=False),  # -1: decode inline, no worker processes
    )
    summary = Indexer(cfg, encoder=encoder, labeler=labeler).run([], manifest=str(manifest))
    if summary.failed or summary.count("indexed") != len(written):
        raise RuntimeError(f"test index build failed: {summary.lines()}")
    info = BuiltIndex(
        index_dir=index_dir,
        movies=written,
        movie_dirs=sorted({str(Path(m.path).parent) for m in written}),
        manifest=str(manifest),
        outside_files=[str(private / "secret.mp4"), str(private / "secret.txt")],
        summary=summary,
        by_id={m.movie_id: m for m in written},
    )
    return index_dir, info

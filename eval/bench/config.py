"""The options of each benchmark, one dataclass per ``scenesearch bench`` command, and where the
reports go by default.

Defaults the product also has (model, precision, batch size, frames per shot, decode workers)
come from the indexer's config dataclasses (:mod:`indexer.config`), so a bench measures what
``scenesearch index`` would do. This module is light (no numpy, no torch): the CLI reads the
defaults from it to build its options and help.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from scenesearch.indexer.config import ModelConfig, RunConfig, SampleConfig

_MODEL = ModelConfig()
# Benchmarks run seeded random weights by default: the speed is that of the real weights, and
# nothing needs downloading (the reports say the labels are meaningless).
BENCH_PRETRAINED = "random"


def default_out_dir(name: str) -> str:
    """Where a benchmark writes its report when no ``--out`` is given: ``<user data dir>/bench/
    <name>`` (platformdirs), never the package or the source tree. The reports committed under
    eval/results/ are documentation, copied there on purpose."""
    from platformdirs import user_data_dir

    return os.path.join(user_data_dir("scenesearch", appauthor=False), "bench", name)


def points_name(n: int) -> str:
    """1000000 → ``1m``, 20000 → ``20k``, 1500 → ``1500`` (report folder names)."""
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


@dataclass
class IndexBenchConfig:
    """Options of one ``bench index`` run (the CLI fills it; defaults are the headline run)."""

    video: str
    out_dir: str
    model: str = _MODEL.name
    pretrained: str = BENCH_PRETRAINED
    device: str = "cpu"  # resolved by the caller (the CLI's --device auto → cuda or cpu)
    precision: str = _MODEL.precision  # ours: the product default
    frames_per_shot: str = str(SampleConfig().frames_per_shot)  # our default run
    batch_size: int = _MODEL.batch_size
    workers: int = RunConfig().workers  # 0: automatic (cores - 1), as the product does
    run_all: bool = True  # also run ours with every frame (and the paper's detector)
    baseline: bool = True
    baseline_max_shots: int | None = None  # quick runs: CLIP on the first N split shots only
    limit_seconds: float | None = None  # quick runs: bench the first N seconds of VIDEO only
    copies: int = 10  # scaling test: N copies of a short clip (0: skip)
    scale_seconds: float = 20.0  # length of the clip used for the scaling test
    fidelity_frames: int = 32  # frames compared for preprocessing fidelity (0: skip)
    # extra runs like ours_default with other shot detectors, e.g. "transnet" or
    # "content+threshold+transnet transnet_gate=12" (indexer.detectors.config_from_label labels)
    detectors: tuple[str, ...] = ()
    # run the default and every --detector run this many times, interleaved (default, det 1,
    # ..., default, det 1, ...); each keeps its fastest run, every wall time is reported
    repeats: int = 1
    work_dir: str | None = None  # scratch space (default: a temp dir, removed afterwards)
    keep_work: bool = False
    quiet: bool = False


@dataclass
class SearchBenchConfig:
    """Options of one ``bench search`` run."""

    points: int
    out_dir: str
    queries: int = 200  # queries per measured case
    text_model: str = _MODEL.name  # the index's model (text queries, the web app)
    pretrained: str = BENCH_PRETRAINED
    text_queries: int = 50  # end-to-end text queries (0: skip)
    concurrency_s: float = 0.0  # web app JSON API load test duration (0: skip)
    clients: int = 8
    work_dir: str | None = None
    keep_index: bool = False
    seed: int = 0
    tuning: str = "default"  # default | bench-small (tiny smoke runs: HNSW from a few points)
    quiet: bool = False


@dataclass
class FramesBenchConfig:
    """Options of one ``bench search --frame-vectors`` run."""

    points: int
    out_dir: str
    queries: int = 100
    seed: int = 0
    work_dir: str | None = None
    reuse: bool = False  # query the index an earlier run left in work_dir (no ingest, no build)
    tuning: str = "default"  # default | bench-small | mM-efE (eval.bench.stores.edge_tuning)
    quiet: bool = False


@dataclass
class StillsBenchConfig:
    """Options of one ``bench stills`` run."""

    out_dir: str
    videos: list[str] = dataclasses.field(default_factory=list)  # default: every corpus film
    model: str = _MODEL.name
    pretrained: str = BENCH_PRETRAINED
    still_every_s: float = 2.0
    long_still_every_s: float | None = None  # the long film's still spacing (None: the same)
    still_width: int = 640
    still_quality: int = 75
    # Brute force embeds every brute_stride-th decoded frame (1 = every frame, the exact upper
    # bound; on a shared 2-core machine every frame of the corpus is ~18 k CLIP images)
    brute_stride: int = 1
    long_brute_stride: int | None = None  # the long film's brute stride (None: brute_stride)
    repeats: int = 2  # timed indexing runs of the long film per scheme (interleaved)
    cache_dir: str | None = None  # every-frame embeddings (default: <tmp>/scenesearch-stills)
    work_dir: str | None = None
    # reuse the indexes (and the indexing figures in indexing.json) a run left in work_dir
    reuse: bool = False
    exact_rescore: bool = True  # also score every shot by MAX_SIM (checks the prefetch)
    quiet: bool = False


@dataclass
class TemporalBenchConfig:
    """Options of one ``bench temporal`` run."""

    points: int
    out_dir: str
    queries: int = 100  # query pairs per case
    warmup: int = 100  # other query pairs run untimed before each case (steady state)
    within_s: float = 10.0
    depth: int | None = None  # None: search/temporal.py's DEFAULT_DEPTH
    max_depth: int | None = None  # None: search/temporal.py's MAX_DEPTH
    seed: int = 0
    work_dir: str | None = None
    keep_index: bool = False  # keep the built index (and its data) in work_dir
    reuse: bool = False  # query an index a --keep-index run left in work_dir (no build)
    tuning: str = "default"  # default | bench-small
    quiet: bool = False

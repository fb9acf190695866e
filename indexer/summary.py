"""Run records of an indexing run: one MovieResult per input and the RunSummary printed and logged."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from scenesearch.indexer.errors import (
    printable,
)

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------ run records
@dataclass
class MovieResult:
    path: str
    status: str  # indexed | skipped | failed | updated
    movie_id: str | None = None
    title: str | None = None
    shots: int = 0
    frames: int = 0
    seconds: float = 0.0
    reason: str | None = None
    truncated: bool = False  # indexed, but only the part of the file that could be read


@dataclass
class RunSummary:
    movies: list[MovieResult] = field(default_factory=list)
    wall_s: float = 0.0
    frames_decoded: int = 0
    images_embedded: int = 0
    video_s: float = 0.0
    stage_s: dict[str, float] = field(default_factory=dict)
    model_id: str = ""
    random_weights: bool = False
    stopped: str | None = None  # why the run stopped early (an error that ended the batch)

    def count(self, status: str) -> int:
        return sum(m.status == status for m in self.movies)

    @property
    def shots(self) -> int:
        return sum(m.shots for m in self.movies if m.status == "indexed")

    @property
    def failed(self) -> list[MovieResult]:
        return [m for m in self.movies if m.status == "failed"]

    @property
    def truncated(self) -> list[MovieResult]:
        return [m for m in self.movies if m.truncated and m.status == "indexed"]

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.update(
            indexed=self.count("indexed"),
            skipped=self.count("skipped") + self.count("updated"),
            failed=len(self.failed),
            truncated=len(self.truncated),
            shots=self.shots,
            frames_per_s=self.frames_decoded / self.wall_s if self.wall_s else 0.0,
            images_per_s=self.images_embedded / self.wall_s if self.wall_s else 0.0,
            shots_per_s=self.shots / self.wall_s if self.wall_s else 0.0,
            realtime_factor=self.video_s / self.wall_s if self.wall_s else 0.0,
        )
        return d

    def lines(self) -> list[str]:
        d = self.to_dict()
        cut = f" ({d['truncated']} truncated)" if d["truncated"] else ""
        out = [
            f"movies: {d['indexed']} indexed{cut}, {d['skipped']} already done, {d['failed']} "
            f"failed; {d['shots']} shots in {self.wall_s:.1f} s",
            f"speed: {d['frames_per_s']:.0f} frames/s decoded, {d['images_per_s']:.1f} images/s "
            f"embedded, {d['shots_per_s']:.1f} shots/s, {d['realtime_factor']:.1f}× realtime",
        ]
        if self.random_weights:
            out.append(
                f"model: {self.model_id} — RANDOM WEIGHTS: labels and search results are "
                "meaningless (plumbing demo only)"
            )
        # names and reasons are the user's file names: escaped, so that a newline or a terminal
        # escape sequence in a name can neither forge a line nor reach the terminal raw
        for m in self.truncated:
            out.append(f"TRUNCATED {printable(m.path)}: {printable(m.reason)}")
        for m in self.failed:
            out.append(f"FAILED {printable(m.path)}: {printable(m.reason)}")
        if self.stopped:
            out.append(f"STOPPED: {printable(self.stopped)}")
        return out


def tick(stage_s: dict[str, float], stage: str, t0: float) -> float:
    """Add the seconds since ``t0`` to ``stage_s[stage]``; returns now (the next stage's t0)."""
    t = time.perf_counter()
    stage_s[stage] = stage_s.get(stage, 0.0) + t - t0
    return t


def add_seconds(stage_s: dict[str, float], seconds: dict[str, float]) -> None:
    """Add per-stage ``seconds`` (e.g. a frame source's decode/detect/sample) to ``stage_s``."""
    for k, v in seconds.items():
        stage_s[k] = stage_s.get(k, 0.0) + v


def write_run_log(index_dir: str, summary: RunSummary) -> None:
    """Write the run's summary to ``index_dir/runs/<local time>.json``."""
    runs = Path(index_dir) / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    (runs / f"{stamp}.json").write_text(json.dumps(summary.to_dict(), indent=2))

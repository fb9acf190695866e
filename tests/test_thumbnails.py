"""The thumbnail of a shot is a representative frame, not a faded-out one (issue 19): the picker
on hand-made frames, and the real frame source on a synthetic shot that fades to near-black
after its first quarter (its middle frame is near-black; the old choice, the middle frame, gave a
black thumbnail)."""

from __future__ import annotations

import numpy as np

from scenesearch.indexer.config import SampleConfig
from scenesearch.indexer.records import Movie, ShotEnd
from scenesearch.indexer.sampling import iter_movie
from scenesearch.indexer.thumbnails import is_near_black, luma_stats, thumbnail_index
from tests.videos import Segment, write_video


def _frame(level: float, contrast: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = np.clip(level + contrast * rng.standard_normal((36, 64)), 0, 255).astype(np.uint8)
    return np.repeat(y[..., None], 3, axis=-1)


def test_an_ordinary_shot_keeps_its_middle_frame():
    held = {i: _frame(120, 30, seed=i) for i in range(10, 30, 2)}
    assert thumbnail_index(held, 10, 30) == 20


def test_a_fading_shot_gets_its_clearest_frame_nearest_the_middle():
    # frames 0-9 detailed, 10-13 fading, 14-39 black: the middle (20) is black
    held = {i: _frame(150, 40, seed=i) for i in range(10)}
    held.update({i: _frame(150 * (1 - (i - 9) / 5), 40 * (1 - (i - 9) / 5)) for i in range(10, 14)})
    held.update({i: _frame(0) for i in range(14, 40)})
    assert is_near_black(held[20])
    i = thumbnail_index(held, 0, 40)
    assert not is_near_black(held[i])
    assert luma_stats(held[i])[1] >= 0.5 * max(luma_stats(f)[1] for f in held.values())
    assert i == 10  # the last frame that still has half the best contrast: nearest the middle


def test_a_black_shot_keeps_its_middle_frame():
    held = {i: _frame(0) for i in range(8)}
    assert thumbnail_index(held, 0, 8) == 4


def test_frame_source_thumbnail_of_a_fade_out_shot_is_not_black(tmp_path):
    segs = [
        Segment(30, 60, "noise", 1),
        Segment(48, 200, "fadeout", 2),
        Segment(30, 160, "noise", 3),
    ]
    v = write_video(tmp_path / "fade.mp4", segs, fps=24.0, size=(160, 90))
    movie = Movie("fade", str(v.path), "fade", "fp", 0)
    ends = [m for m in iter_movie(movie, sample_cfg=SampleConfig()) if isinstance(m, ShotEnd)]
    assert [e.shot.start_frame for e in ends] == [0, 30, 78]
    fade = ends[1]
    a, b = fade.shot.start_frame, fade.shot.end_frame
    assert b - a == 48
    # the middle frame of this shot is near-black ...
    from scenesearch.indexer.decode import VideoReader

    with VideoReader(str(v.path)) as r:
        middle = next(f.rgb for f in r if f.index == a + (b - a) // 2)
    assert is_near_black(middle)
    # ... its thumbnail is not
    assert not is_near_black(fade.thumb), luma_stats(fade.thumb)
    assert all(not is_near_black(e.thumb) for e in ends)

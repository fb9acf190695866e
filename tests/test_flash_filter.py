"""The flash filter (ShotConfig.flash_return_s, indexer/shots.py): a cut whose picture comes back
within the window is a flash or strobe and is dropped; real hard cuts, a flash hiding a cut to
another shot, and fades are kept."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from videos import Segment, render_frame, write_fade_video, write_frames

from scenesearch.indexer.config import ShotConfig
from scenesearch.indexer.shots import ShotSegmenter, detect_shots

SIZE = (160, 96)


def _shot(level: int, seed: int, n: int) -> list[np.ndarray]:
    return [render_frame(Segment(n, level, "bars", seed), i, SIZE) for i in range(n)]


def _flash(frames: list[np.ndarray], at: int, k: int, gain: float = 0.85) -> None:
    for i in range(at, at + k):
        f = frames[i].astype(np.float32) * (1 - gain) + 255.0 * gain
        frames[i] = f.astype(np.uint8)


@pytest.fixture(scope="module")
def flash_video(tmp_path_factory):
    """Shot A (frames 0-69) with a 3-frame flash at 20-22 and a 2-frame-period strobe at 45-52,
    hard cut at 70 to shot B; B ends in a flash at 110-112 that hides a hard cut to shot C at 113."""
    frames = _shot(70, 1, 70) + _shot(170, 2, 43) + _shot(90, 3, 40)
    _flash(frames, 20, 3)
    for i in (45, 46, 49, 50):
        frames[i] = np.clip(frames[i].astype(np.float32) * 2.5, 0, 255).astype(np.uint8)
    _flash(frames, 110, 3)
    tmp = tmp_path_factory.mktemp("flash")
    return write_frames(tmp / "flash.mp4", frames)


# The cheap detectors without the filter (and without one cut per fade, which the default adds)
PLAIN = ShotConfig(detector="content+threshold", flash_return_s=0.0, merge_fades=False)


def starts(shots) -> list[int]:
    return [s.start_frame for s in shots]


def test_flash_and_strobe_dropped_real_cuts_kept(flash_video):
    unfiltered = starts(detect_shots(flash_video.path, PLAIN)[0])
    # the flash and the strobe are cuts to the plain detector (so this test can fail)
    assert 20 in unfiltered and any(45 <= c <= 52 for c in unfiltered)
    shots, _ = detect_shots(flash_video.path, replace(PLAIN, flash_return_s=0.5))
    # 70: a hard cut; 110: the flash that hides the cut B -> C (its picture never comes back)
    assert starts(shots) == [0, 70, 110]
    assert shots[-1].end_frame == flash_video.n_frames


def test_flash_filter_streams_in_order_within_its_lag(flash_video):
    """Pushed frame by frame, shots come out in order, tiling the frames, each no later than
    max_lag frames after its end (the filter waits flash_return_s after a cut)."""
    from scenesearch.indexer.decode import VideoReader

    reader = VideoReader(flash_video.path)
    seg = ShotSegmenter(replace(PLAIN, flash_return_s=0.5), reader.fps)
    plain = ShotSegmenter(PLAIN, reader.fps)
    assert seg.max_lag == plain.max_lag + 12
    out = []
    for f in reader:
        for s in seg.push(f.index, f.t, f.rgb):
            assert f.index - s.end_frame <= seg.max_lag
            out.append(s)
    out += seg.finish()
    assert starts(out) == [0, 70, 110]
    assert all(a.end_frame == b.start_frame for a, b in zip(out, out[1:], strict=False))


def test_fade_through_black_is_kept(tmp_path):
    v = write_fade_video(tmp_path / "fade.mp4")
    a, b = v.fades[0]
    shots, _ = detect_shots(v.path, ShotConfig(flash_return_s=0.5))
    assert len(shots) == 2 and a <= shots[1].start_frame <= b

"""One cut per fade through black (indexer/fades.py): the rule on brightness profiles built here,
the streaming segmenter against the whole-movie rule, and the cascade on a written fade video."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from test_shots import scripted  # noqa: F401  (fixture)
from videos import write_fade_video

from scenesearch.indexer.config import ShotConfig
from scenesearch.indexer.fades import MAX_DARK_S, merge_cuts
from scenesearch.indexer.shots import ShotSegmenter, detect_shots
from scenesearch.indexer.thumbnails import BLACK_LUMA, is_near_black, luma_stats

FPS = 24.0
DARK = BLACK_LUMA


def profile(*parts: tuple[str, int, float]) -> list[float]:
    """Brightness per frame from pieces: ("flat", n, level), ("ramp", n, to_level) (linear from
    the previous level, ending at to_level)."""
    out: list[float] = []
    for kind, n, level in parts:
        if kind == "flat":
            out += [level] * n
        else:
            a = out[-1]
            out += [a + (level - a) * (i + 1) / n for i in range(n)]
    return out


def test_every_cut_of_a_dip_moves_to_its_end():
    # picture 0-47, fade-out 48-59, black 60-71, fade-in 72-83, picture from 84
    b = profile(("flat", 48, 120), ("ramp", 12, 0), ("flat", 12, 0), ("ramp", 12, 120))
    b += [120.0] * 60
    end = 1 + max(i for i, v in enumerate(b) if v <= DARK)
    assert 68 < end <= 73
    for cuts in ([48], [60], [66], [end], [83], [48, 60, 83], [50, end, 80]):
        assert merge_cuts(cuts, b, FPS) == [end], cuts
    # cuts away from the dip, on either side, stay where they are
    assert merge_cuts([20, 48, 83, 120], b, FPS) == [20, end, 120]


def test_hard_cuts_to_and_from_black_are_one_transition():
    b = profile(("flat", 50, 90), ("flat", 30, 0), ("flat", 80, 70))
    assert merge_cuts([50, 80], b, FPS) == [80]
    # a real cut one second after the picture came back is its own transition: the picture
    # after a hard cut is steady, not a ramp
    assert merge_cuts([50, 80, 104], b, FPS) == [80, 104]


def test_black_leader_keeps_its_cut_and_a_dip_at_the_end_loses_its_cuts():
    b = profile(("flat", 30, 0), ("flat", 100, 90), ("ramp", 20, 0), ("flat", 10, 0))
    # black leader then a hard cut at 30: kept; the final fade-out's cuts (130, 150) have no
    # next shot
    assert merge_cuts([30, 130, 150], b, FPS) == [30]


def test_long_dark_stretches_and_grey_flat_frames_are_left_alone():
    n_dark = math.ceil(MAX_DARK_S * FPS) + 5
    b = profile(("flat", 50, 90), ("flat", n_dark, 0), ("flat", 80, 90))
    cuts = [50, 50 + n_dark]
    assert merge_cuts(cuts, b, FPS) == cuts
    # flat but not dark (a grey card, a colour block): not a fade
    b = profile(("flat", 50, 90), ("flat", 20, 40), ("flat", 80, 90))  # 40 > DARK
    assert merge_cuts([50, 70], b, FPS) == [50, 70]


def _reference(cuts, b, dark, min_len):
    """Whole-movie rule then the segmenter's minimum-length rule (greedy, and no tiny last
    shot)."""
    out, prev = [], 0
    for c in merge_cuts(cuts, b, FPS, dark):
        if c - prev >= min_len:
            out.append(c)
            prev = c
    if out and len(b) - out[-1] < min_len:
        out.pop()
    return out


@pytest.mark.parametrize("seed", range(12))
def test_streaming_segmenter_equals_the_whole_movie_rule(scripted, seed):  # noqa: F811
    """Random films of pictures, fades, black runs and hard cuts, with a scripted detector that
    reports random cuts (near the dips most of them) up to 5 frames late: the segmenter's shots
    are the whole-movie rule's, and every shot tiles the film."""
    rng = np.random.default_rng(seed)
    parts, dips = [("flat", int(rng.integers(20, 80)), 100.0)], []
    for _ in range(int(rng.integers(2, 6))):
        n0 = sum(p[1] for p in parts)
        kind = rng.choice(["fade", "hard", "long"])
        dark = int(rng.integers(1, 40)) if kind != "long" else int(MAX_DARK_S * FPS) + 10
        ramp = int(rng.integers(4, 30)) if kind == "fade" else 1
        level = float(rng.integers(40, 200))
        parts += [("ramp", ramp, 0.0), ("flat", dark, 0.0), ("ramp", ramp, level)]
        parts.append(("flat", int(rng.integers(10, 90)), level))
        dips.append((n0, n0 + 2 * ramp + dark))
    b = profile(*parts)
    n = len(b)
    cuts = sorted(
        {int(rng.integers(a - 3, c + 4)) for a, c in dips for _ in range(3)}
        | {int(x) for x in rng.integers(1, n, 4)}
    )
    cuts = [c for c in cuts if 0 < c < n]
    lag = 5
    script: dict[int, list[int]] = {}
    for c in cuts:
        script.setdefault(min(n - 1, c + int(rng.integers(0, lag + 1))), []).append(c)
    scripted(script, lag)
    cfg = ShotConfig(detector="scripted", merge_fades=True, flash_return_s=0.0)
    seg = ShotSegmenter(cfg, FPS)
    shots, lum, dark = [], [], []
    for i, v in enumerate(b):
        frame = np.full((8, 8, 3), round(v), np.uint8)
        lum.append(luma_stats(frame)[0])
        dark.append(is_near_black(frame))
        shots += seg.push(i, i / FPS, frame)
    shots += seg.finish()
    assert [s.start_frame for s in shots][0] == 0
    assert all(a.end_frame == c.start_frame for a, c in zip(shots, shots[1:]))
    assert shots[-1].end_frame == n
    min_len = math.ceil(cfg.min_shot_s * FPS - 1e-6)
    assert [s.start_frame for s in shots[1:]] == _reference(cuts, lum, dark, min_len)


def test_cascade_cuts_each_fade_once(tmp_path):
    """TransNetV2 (many head) sees a fade-out and a fade-in; with the threshold detector that
    makes several cuts per fade through black unless they are merged. The default merges them:
    exactly one cut inside each fade, where the picture comes back."""
    v = write_fade_video(
        tmp_path / "fades.mp4", shot_frames=60, fade_frames=18, black_frames=10,
        levels=(170, 200, 150),
    )  # fmt: skip
    cascade = ShotConfig(
        detector="content+threshold+transnet", transnet_gate=8.0, transnet_head="many",
        transnet_low=0.1, flash_return_s=0.5,
    )  # fmt: skip
    merged, _ = detect_shots(v.path, replace(cascade, merge_fades=True))
    raw, _ = detect_shots(v.path, replace(cascade, merge_fades=False))
    cuts = [s.start_frame for s in merged[1:]]
    assert len(cuts) == len(v.fades)
    for c, (a, z) in zip(cuts, v.fades, strict=True):
        assert a <= c <= z
    assert len(raw) > len(merged)  # the merge is what makes it one cut per fade


def test_labels_set_any_shot_option_and_the_gate_needs_a_hard_cut_detector():
    from scenesearch.indexer.detectors import config_from_label, detector_entry
    from scenesearch.indexer.errors import ConfigError

    cfg = config_from_label("content+threshold merge_fades=0 flash_return_s=0 min_shot_s=0.5")
    assert (cfg.detector, cfg.merge_fades, cfg.flash_return_s, cfg.min_shot_s) == (
        "content+threshold", False, 0.0, 0.5,
    )  # fmt: skip
    assert config_from_label("transnet merge_fades=true").merge_fades is True
    for bad in ("content merge_fades=maybe", "content nope=1", "content detector=hash", "nope"):
        with pytest.raises(ConfigError):
            config_from_label(bad)
    # the default's gate applies in a cascade only: transnet alone must see every window
    build = detector_entry("transnet").build
    assert build(ShotConfig(transnet_device="cpu"), 15).gate == 8.0
    assert build(ShotConfig(detector="transnet", transnet_device="cpu"), 15).gate == 0.0

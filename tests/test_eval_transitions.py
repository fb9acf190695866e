"""The transitions benchmark: exact truth of joins and traps, the scoring rule, configuration
labels, the cascade's gate, and one small end-to-end build on corpus footage."""

from __future__ import annotations

import numpy as np
import pytest

from scenesearch.eval.transition_clips import Event, apply_trap, build, join
from scenesearch.eval.transitions import Tally, score_clip, summary_rows
from scenesearch.indexer.detectors import config_from_label
from scenesearch.indexer.errors import ConfigError
from scenesearch.indexer.transnet import CONTEXT, STEP, WINDOW, dissolve_score
from tests.conftest import CORPUS


def _shot(level: int, n: int, seed: int, size=(64, 36)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 60, (size[1], size[0], 3)).astype(np.int16) + level
    return [np.clip(base + i % 3, 0, 255).astype(np.uint8) for i in range(n)]


def test_joins_state_their_exact_span():
    """Cut: the new shot's first frame. Dissolve of d: out's last d frames, blended (first
    blend frame mostly A, last mostly B). Fade: d frames down, hold, d frames up."""
    out = _shot(40, 30, 0)
    assert join(out, _shot(200, 20, 1), "cut", 0) == (30, 30) and len(out) == 50
    out = _shot(40, 30, 0)
    a_last = out[-1].astype(float).mean()
    first, last = join(out, _shot(200, 20, 1), "dissolve", 10)
    assert (first, last, len(out)) == (20, 29, 40)
    means = [f.astype(float).mean() for f in out[18:32]]
    assert means[0] < means[2] < means[6] < means[11] and means[11] > a_last + 100
    out = _shot(120, 30, 0)
    first, last = join(out, _shot(120, 20, 1), "fade_black", 8, hold=3)
    assert (first, last, len(out)) == (22, 40, 53)
    assert all(f.max() == 0 for f in out[30:33])  # the held black frames
    assert out[21].mean() > 100 and out[41].mean() > 100  # full picture either side


@pytest.mark.parametrize("kind", ["flash", "strobe", "title"])
def test_traps_touch_only_their_span(kind):
    frames = _shot(90, 96, 2, (640, 360))  # the clips' size (the title is drawn for it)
    before = [f.copy() for f in frames]
    first, last = apply_trap(kind, frames, np.random.default_rng(0))
    changed = [i for i in range(96) if not np.array_equal(frames[i], before[i])]
    assert changed and changed[0] == first
    if kind == "title":  # the title stays on after fading in
        assert last < changed[-1] == 95
    else:
        assert changed[-1] <= last


def test_scoring_rule():
    """cut at 100 (±1), dissolve 200-230 (± 12 frames at 24 fps), flash trap 300-302."""
    from scenesearch.eval.transition_clips import ClipSpec

    spec = ClipSpec("c", "c.mp4", 400, 24.0, [Event("cut", 100, 100), Event("dissolve", 200, 230),
                                               Event("flash", 300, 302)])  # fmt: skip
    t = Tally()
    score_clip([101, 190, 215, 301, 360], spec, t)
    assert t.found == {"cut": 1, "dissolve": 1, "fade_black": 0, "fade_white": 0}
    assert t.hard_offsets == [1]
    assert t.fp == {"dissolve": 1, "flash": 1, "footage": 1}  # 215 (second in it), 301, 360
    t2 = Tally()
    score_clip([102, 187], spec, t2)  # 2 frames late; 1 frame before the dissolve window
    assert sum(t2.found.values()) == 0 and t2.fp == {"cut": 1, "footage": 1}
    row = summary_rows({"x": t})[0]
    assert row["hard_within_1"] == "1/1" and row["fp_per_10_traps"] == 10.0
    assert row["f1"] == pytest.approx(2 * 0.4 * 1.0 / 1.4)


def test_configuration_labels():
    cfg = config_from_label("content+threshold+transnet transnet_gate=8 min_shot_s=0.5")
    assert (cfg.detector, cfg.transnet_gate, cfg.min_shot_s) == (
        "content+threshold+transnet",
        8,
        0.5,
    )
    with pytest.raises(ConfigError, match="bad override"):
        config_from_label("content nope=1")
    with pytest.raises(ConfigError, match="unknown detector"):
        config_from_label("contnet")


def test_gate_scores_dissolves_high_and_cuts_and_motion_low():
    """Hand-made 100-frame windows: a linear dissolve in the centre scores ≈ its change across
    12 frames; a hard cut and a fast-moving texture score ~0."""
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (27, 48, 3)).astype(np.float32)
    b = rng.integers(0, 256, (27, 48, 3)).astype(np.float32)
    alpha = np.clip((np.arange(WINDOW) - 40) / 30, 0, 1)  # dissolve over frames 40-70
    dissolve = np.stack([(1 - x) * a + x * b for x in alpha]).astype(np.uint8)
    grey_change = np.abs(b.mean(axis=2) - a.mean(axis=2)).mean()
    assert dissolve_score(dissolve) == pytest.approx(grey_change * 12 / 30, rel=0.05)
    cut = np.stack([a if i < 50 else b for i in range(WINDOW)]).astype(np.uint8)
    assert dissolve_score(cut) == 0.0
    tex = rng.integers(0, 256, (27, 400, 3)).astype(np.uint8)
    pan = np.stack([tex[:, 3 * i : 3 * i + 48] for i in range(WINDOW)])
    assert dissolve_score(pan) < 2.0
    assert CONTEXT + STEP + CONTEXT == WINDOW


def test_gate_can_leave_fades_through_black_to_the_threshold_detector():
    """``skip_black``: a fade of a picture to black (and a fade up from black) only rescales the
    picture, so the gate ignores it; a dissolve between two pictures keeps its score, and a
    fade to white stays far above the gate (its nearly white end frames look like a rescaling,
    its middle does not). Without ``skip_black`` every one of them passes the gate."""
    rng = np.random.default_rng(1)
    a = rng.integers(20, 236, (27, 48, 3)).astype(np.float32)
    b = rng.integers(20, 236, (27, 48, 3)).astype(np.float32)
    alpha = np.clip((np.arange(WINDOW) - 40) / 30, 0, 1)

    def mix(x, y):
        return np.stack([(1 - t) * x + t * y for t in alpha]).round().astype(np.uint8)

    black, white = np.zeros_like(a), np.full_like(a, 255)
    for clip in (mix(a, black), mix(black, b)):
        assert dissolve_score(clip) > 20
        assert dissolve_score(clip, skip_black=True) == 0.0
    assert dissolve_score(mix(a, b), skip_black=True) == dissolve_score(mix(a, b)) > 8
    assert dissolve_score(mix(a, white), skip_black=True) > 20
    # without black in the window nothing is skipped: a dissolve between two low-contrast
    # pictures of different brightness is nearly a rescaling too
    dim, bright = 60 + a / 10, 190 + b / 10
    assert dissolve_score(mix(dim, bright), skip_black=True) == dissolve_score(mix(dim, bright))
    # a window holding a fade through black and a dissolve keeps the dissolve's score: A fades
    # to black (frames 0-15), black until 30, cut to C, C dissolves into B over frames 45-75
    fade = np.clip(1 - np.arange(WINDOW) / 15, 0, 1)
    diss = np.clip((np.arange(WINDOW) - 45) / 30, 0, 1)
    c = rng.integers(20, 236, (27, 48, 3)).astype(np.float32)
    both = (
        np.stack(
            [f * a if i < 30 else (1 - d) * c + d * b for i, (f, d) in enumerate(zip(fade, diss))]
        )
        .round()
        .astype(np.uint8)
    )
    alone = np.stack([(1 - d) * c + d * b for d in diss]).round().astype(np.uint8)
    assert dissolve_score(both, skip_black=True) == pytest.approx(dissolve_score(alone), rel=0.05)


def test_gate_wants_the_mix_on_consecutive_frames():
    """One centre frame that happens to be the mean of the frames 6 before and after it (here:
    a frame half-way between A and a single frame B 6 frames later) is not a dissolve: its
    neighbours are not mixes, so the window scores 0. A short dissolve (7 frames, 0.3 s at
    24 fps) is a mix on consecutive frames and passes the gate."""
    rng = np.random.default_rng(5)
    a = rng.integers(20, 236, (27, 48, 3)).astype(np.float32)
    b = rng.integers(20, 236, (27, 48, 3)).astype(np.float32)
    spike = np.stack([a] * WINDOW)
    t = 50
    spike[t + 6], spike[t] = b, (a + b) / 2
    assert dissolve_score(spike.round().astype(np.uint8)) == 0.0
    alpha = np.clip((np.arange(WINDOW) - 47) / 7, 0, 1)
    short = np.stack([(1 - x) * a + x * b for x in alpha]).round().astype(np.uint8)
    assert dissolve_score(short) > 8.0


def test_gate_looks_back_for_the_black_of_a_fade_in():
    """A fade up from black whose black frames lie just before a window (BBB's opening) is still
    a fade through black: the streaming detector remembers near-black frames up to
    ``BLACK_LOOKBACK`` frames before a window, so that window skips the model. The same fade
    from a dark picture that is not black goes to the model."""
    from scenedetect import FrameTimecode

    from scenesearch.indexer.transnet import TransNetDetector

    class Spy:
        calls = 0

        def predict_raw(self, x):
            import torch

            Spy.calls += len(x)
            z = torch.zeros((len(x), WINDOW, 1))
            return z, z

    rng = np.random.default_rng(3)
    b = rng.integers(20, 236, (27, 48, 3)).astype(np.float32)
    i = np.arange(200)  # black 0-19, then up from 0.3 of b over 20-70 (frame 25 is not black)
    alpha = np.where(i < 20, 0.0, np.clip(0.3 + 0.7 * (i - 20) / 50, 0, 1))

    def run(start):
        Spy.calls = 0
        det = TransNetDetector(0.5, "cpu", model=Spy(), gate=8.0, skip_black=True)
        clip = [((1 - t) * start + t * b).round().astype(np.uint8) for t in alpha]
        for i, f in enumerate(clip):
            det.process_frame(FrameTimecode(i, fps=24.0), f[:, :, ::-1])
        det.post_process(FrameTimecode(len(clip) - 1, fps=24.0))
        return det, clip

    det, clip = run(np.zeros_like(b))
    window1 = np.stack(clip[STEP - CONTEXT : STEP - CONTEXT + WINDOW])  # frames 25-124: no black
    assert dissolve_score(window1, skip_black=True) >= 8.0  # on its own it would pass
    assert dissolve_score(window1, skip_black=True, black_before=True) == 0.0
    assert (Spy.calls, det.windows_skipped) == (0, 4)
    det, _ = run(np.full_like(b, 40))  # from dark grey: a change, not a fade through black
    assert Spy.calls >= 1 and det.windows_run == Spy.calls


def test_skip_black_follows_the_threshold_detector(monkeypatch):
    """The gate leaves fades through black alone only when the threshold detector is in the
    cascade (it finds them); ``transnet_skip_black`` overrides, transnet alone has no gate. What
    each detector finds is a field of its registry entry: a newly registered detector that finds
    hard cuts turns the gate on."""
    from dataclasses import replace

    import scenesearch.indexer.detectors as detectors_mod
    from scenesearch.indexer.detectors import detector_entry

    def built(label):
        cfg = config_from_label(label)
        return detector_entry("transnet").build(cfg, 12)

    assert built("content+threshold+transnet").skip_black
    assert not built("content+transnet").skip_black
    assert not built("content+threshold+transnet transnet_skip_black=off").skip_black
    assert config_from_label("content transnet_skip_black=0").transnet_skip_black is False
    assert built("content+transnet transnet_skip_black=on").skip_black
    assert (built("transnet").gate, built("transnet").skip_black) == (0.0, False)
    plain = replace(detector_entry("content"), name="mine", finds=frozenset())
    monkeypatch.setitem(detectors_mod._REGISTRY, "mine", plain)
    assert built("mine+transnet").gate == 0.0
    monkeypatch.setitem(detectors_mod._REGISTRY, "mine", replace(plain, finds=frozenset({"cuts"})))
    assert built("mine+transnet").gate == 8.0


@pytest.mark.slow
def test_build_is_seeded_and_exact(tmp_path):
    """Two cuts, a dissolve and a flash from corpus footage: the same seed gives the same
    truth; the written file decodes to exactly the frames the truth counts."""
    if not (CORPUS / "video" / "bbb_full_1280x720_24p.mp4").is_file():
        pytest.skip("corpus not available")
    from scenesearch.eval.transitions import load_frames
    from scenesearch.indexer.config import DecodeConfig

    counts = {"cut": 2, "dissolve": 1, "flash": 1}
    a = build(tmp_path / "a", CORPUS, seed=3, n_clips=1, counts=counts)
    b = build(tmp_path / "b", CORPUS, seed=3, n_clips=1, counts=counts)
    ev = lambda s: [(e.kind, e.first, e.last) for e in s[0].events]  # noqa: E731
    assert ev(a) == ev(b)
    assert sorted(k for k, _, _ in ev(a)) == ["cut", "cut", "dissolve", "flash"]
    assert len(load_frames(a[0], DecodeConfig()).frames) == a[0].n_frames

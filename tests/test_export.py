"""Exports of a result list (search/export.py) read back with OpenTimelineIO, frame-exactly:
OTIO JSON, CMX 3600 EDL (otio-cmx3600-adapter) and FCP 7 XML (otio-fcp-adapter) at 23.976,
24, 25, 29.97 and 59.94 fps (NTSC rates drop-frame as OpenTimelineIO writes them), ranges past the
10-minute drop-frame boundaries; CSV with seconds and SMPTE timecode; one-line errors; and real
29.97 / 23.976 fps movies indexed by the pipeline, whose known cut frames must come back from the
exported timeline.
"""

from __future__ import annotations

import os
from fractions import Fraction

import polars as pl
import pytest

from scenesearch.indexer.errors import ConfigError, InputError
from scenesearch.indexer.records import LabelScore
from scenesearch.search.engine import Hit
from scenesearch.search.export import export_hits, read_timeline, timecode_rate

otio = pytest.importorskip("opentimelineio")

RATES = [24000 / 1001, 24.0, 25.0, 30000 / 1001, 60000 / 1001]
# (first frame, end frame): the start, the first drop-frame minute (1,800 frames at 29.97), the
# 10-minute mark (17,982 frames at 29.97 DF = 00:10:00;00), past an hour
SPANS = [(0, 37), (1799, 1801), (17982, 18100), (107892, 108000), (2, 3)]


def hit(
    fps: float, first: int, end: int, i: int = 0, movie: str = "m1", path: str = "/films/A b.mp4"
):
    return Hit(
        shot_id=f"{movie}:{i:04d}", movie_id=movie, title="A b", year=1999, genres=("drama",),
        shot_index=i, start_s=first / fps, end_s=end / fps, labels=("street",),
        top=(LabelScore("street", 0.61), LabelScore("alley", 0.2)), thumb="", path=path,
        score=0.31 - i / 100, start_frame=first, end_frame=end, fps=fps,
    )  # fmt: skip


def frames_of(timeline) -> list[tuple[int, int, float]]:
    return [
        (round(c.source_range.start_time.value), round(c.source_range.duration.value),
         c.source_range.start_time.rate)
        for c in timeline.find_clips()
    ]  # fmt: skip


@pytest.mark.parametrize("fps", RATES, ids=lambda r: f"{r:.3f}")
@pytest.mark.parametrize("ext", [".otio", ".edl", ".xml"])
def test_round_trip_is_frame_exact(tmp_path, fps, ext):
    hits = [hit(fps, a, b, i) for i, (a, b) in enumerate(SPANS)]
    out = tmp_path / f"selects{ext}"
    export_hits(hits, out, durations={"m1": 5000.0})
    back = read_timeline(out, rate=timecode_rate(fps))
    got = frames_of(back)
    assert [(a, n) for a, n, _ in got] == [(a, b - a) for a, b in SPANS]
    assert all(r == pytest.approx(fps, rel=1e-9) for _, _, r in got)
    clips = list(back.find_clips())
    assert all(c.media_reference.target_url == "file:///films/A%20b.mp4" for c in clips)
    if ext == ".otio":  # the metadata travels in OTIO
        meta = clips[1].metadata["scenesearch"]
        assert meta["shot_id"] == "m1:0001" and meta["score"] == pytest.approx(0.30)
        # (OTIO gives its own list/dict types back)
        assert list(meta["labels"]) == ["street"]
        assert dict(meta["top"][1]) == {"label": "alley", "score": 0.2}
        ref = clips[0].media_reference
        assert round(ref.available_range.duration.value) == round(5000 * timecode_rate(fps))


def test_ntsc_timecode_is_drop_frame_as_otio_writes_it(tmp_path):
    fps = 30000 / 1001
    export_hits([hit(fps, 17982, 18100)], tmp_path / "a.edl")
    text = (tmp_path / "a.edl").read_text()
    assert "00:10:00;00" in text  # drop-frame: 17,982 frames are exactly ten minutes
    export_hits([hit(fps, 17982, 18100)], tmp_path / "a.csv")
    row = pl.read_csv(tmp_path / "a.csv").row(0, named=True)
    assert row["start_tc"] == "00:10:00;00" and row["start_frame"] == 17982
    assert row["start_s"] == pytest.approx(17982 * 1001 / 30000)
    export_hits([hit(24000 / 1001, 17982, 18100)], tmp_path / "b.csv")
    assert pl.read_csv(tmp_path / "b.csv")["start_tc"][0] == "00:12:29:06"  # 23.976: no drop


def test_csv_has_seconds_timecode_and_labels(tmp_path):
    hits = [hit(25.0, 50, 75, 0), hit(25.0, 100, 160, 1)]
    export_hits(hits, tmp_path / "r.csv")
    df = pl.read_csv(tmp_path / "r.csv")
    assert df["shot_id"].to_list() == ["m1:0000", "m1:0001"]
    assert df["start_s"].to_list() == [2.0, 4.0] and df["end_s"].to_list() == [3.0, 6.4]
    assert df["start_tc"].to_list() == ["00:00:02:00", "00:00:04:00"]
    assert df["end_tc"].to_list() == ["00:00:03:00", "00:00:06:10"]
    assert df["labels"][0] == "street" and df["top_labels"][0] == "street|alley"
    assert df["rank"].to_list() == [1, 2] and df["score"][0] == pytest.approx(0.31)


def test_mixed_rates_fit_otio_and_xml_but_not_one_edl(tmp_path):
    hits = [hit(24.0, 10, 20, 0, "a"), hit(30000 / 1001, 30, 45, 1, "b")]
    export_hits(hits, tmp_path / "m.otio")
    got = frames_of(read_timeline(tmp_path / "m.otio"))
    assert [(a, n) for a, n, _ in got] == [(10, 10), (30, 15)]
    assert got[1][2] == pytest.approx(30000 / 1001)
    export_hits(hits, tmp_path / "m.xml")
    assert [(a, n) for a, n, _ in frames_of(read_timeline(tmp_path / "m.xml"))] == [
        (10, 10),
        (30, 15),
    ]
    with pytest.raises(ConfigError, match="one frame rate"):
        export_hits(hits, tmp_path / "m.edl")
    assert not (tmp_path / "m.edl").exists()


def test_errors_are_one_line(tmp_path):
    h = [hit(24.0, 0, 10)]
    (tmp_path / "d.otio").mkdir()
    cases = [
        ([], tmp_path / "x.otio", InputError, "nothing to export"),
        (h, tmp_path / "missing" / "x.otio", InputError, "does not exist"),
        (h, tmp_path / "d.otio", InputError, "it is a folder"),
        (h, tmp_path / "x.mov", ConfigError, "export format"),
    ]
    for hits, path, exc, words in cases:
        with pytest.raises(exc, match=words) as e:
            export_hits(hits, path)
        assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="unknown export format"):
        export_hits(h, tmp_path / "x.otio", fmt="aaf")
    assert export_hits(h, tmp_path / "x.txt", fmt="edl") == "edl"  # the format given wins
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        with pytest.raises(InputError, match="permission denied"):
            export_hits(h, ro / "x.otio")


def test_rate_snapping():
    assert timecode_rate(float(Fraction(30000, 1001))) == 30000 / 1001
    assert timecode_rate(29.97) == 30000 / 1001  # a rounded rate in an older index
    assert timecode_rate(24.0) == 24.0
    assert timecode_rate(12.345) == 12.345  # nothing standard close: kept
    assert timecode_rate(None) == 24.0


# ------------------------------------------------------------------------------ real movies
@pytest.fixture(scope="module")
def ntsc_index(tmp_path_factory, tiny_encoder, tiny_labeler):
    """Two movies indexed by the real pipeline: 29.97 fps (cuts at frames 30, 75) and 23.976 fps
    (cuts at 24, 60), 160×96 H.264 with brightness steps the detector finds exactly."""
    from scenesearch.indexer.config import IndexConfig, ModelConfig, RunConfig, StoreConfig
    from scenesearch.indexer.pipeline import Indexer
    from scenesearch.search import SearchEngine
    from tests.conftest import TINY_MODEL
    from tests.videos import write_video

    tmp = tmp_path_factory.mktemp("ntsc")
    movies = {
        "ntsc2997.mp4": (Fraction(30000, 1001), [(30, 40), (45, 220), (36, 80)]),
        "film23976.mp4": (Fraction(24000, 1001), [(24, 200), (36, 50), (30, 230)]),
    }
    for name, (fps, segs) in movies.items():
        write_video(tmp / name, segs, fps=float(fps), size=(160, 96))
    cfg = IndexConfig(
        model=ModelConfig(name=TINY_MODEL, pretrained="random", device="cpu", batch_size=32),
        store=StoreConfig(index_dir=str(tmp / "index")),
        run=RunConfig(workers=-1, progress=False),
    )
    summary = Indexer(cfg, encoder=tiny_encoder, labeler=tiny_labeler).run([str(tmp)])
    assert not summary.failed
    eng = SearchEngine.open(StoreConfig(index_dir=str(tmp / "index")), encoder=tiny_encoder)
    yield eng, tmp
    eng.close()


@pytest.mark.parametrize(
    "stem, rate, bounds",
    [("ntsc2997", 30000 / 1001, [(0, 30), (30, 75), (75, 111)]),
     ("film23976", 24000 / 1001, [(0, 24), (24, 60), (60, 90)])],
)  # fmt: skip
@pytest.mark.parametrize("ext", [".otio", ".edl", ".xml"])
def test_indexed_ntsc_movies_round_trip(ntsc_index, tmp_path, stem, rate, bounds, ext):
    from scenesearch.search import SearchFilters

    eng, _ = ntsc_index
    movie = next(m for m in eng.movies() if m["title"] == stem)
    res = eng.search("a shot", filters=SearchFilters(movies=(movie["movie_id"],)), limit=10)
    hits = sorted(res.hits, key=lambda h: h.start_s)
    assert [(h.start_frame, h.end_frame) for h in hits] == bounds
    out = tmp_path / f"{stem}{ext}"
    export_hits(hits, out, durations={movie["movie_id"]: movie["duration_s"]})
    got = frames_of(read_timeline(out, rate=rate))
    assert [(a, a + n) for a, n, _ in got] == bounds
    assert all(r == pytest.approx(rate, rel=1e-9) for _, _, r in got)
    # the exported start times agree with the shots' own timestamps to within half a frame
    for h, (a, _n, r) in zip(hits, got):
        assert abs(a / r - h.start_s) < 0.5 / r

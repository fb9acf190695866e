"""Search input that used to break things (issue 13, items 9–11), through the CLI and the
engine, plus property-based tests (hypothesis): random argument values and random filter values
give a result or one clean error line — never a traceback, a Rust panic or a hang.

The index is tests/index_fixtures.py's (3 synthetic movies, 12 shots, tiny random model).
"""

from __future__ import annotations

import math
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenesearch.indexer.config import StoreConfig
from scenesearch.indexer.errors import ScenesearchError
from scenesearch.search import SearchEngine, SearchFilters
from scenesearch.search.validate import MAX_LIMIT, as_int, parse_range
from scenesearch.ui.cli import main
from tests.app_fixtures import index_fixture

built = index_fixture("val")


def png_header_only(path, w: int, h: int) -> None:
    """A PNG whose header declares w×h pixels (no pixel data): enough for any reader that
    checks the declared size before decoding; a 400-megapixel "image" in 57 bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def cli(capfd, *args: str) -> tuple[int | None, str, str]:
    try:
        code = main(list(args))
    except SystemExit as e:  # argparse's own usage errors
        code = e.code
    out, err = capfd.readouterr()
    return code, out, err


def one_clean_line(err: str) -> bool:
    bad = ("Traceback", "panicked", "RUST_BACKTRACE", "OverflowError", "Bus error")
    return (
        err.count("\n") == 1
        and err.startswith("scenesearch: error: ")
        and not any(b in err for b in bad)
    )


# ------------------------------------------------------------------------------ items 9–11
@pytest.mark.parametrize(
    "args",
    [
        ["--duration", "nan-inf"],
        ["--duration", "nan-"],
        ["--duration", "2-nan"],
        ["--duration=-inf"],
        ["--duration", "1e400-"],
        ["--year", "nan"],
        ["--year", "2000-1990"],
        ["--year", "99999999999999999999999999"],
        ["--duration", "10-2"],
        ["-k", str(10**30)],
        ["-k", "0"],
        ["--offset", "-1"],
        ["--per-movie", "0"],
        ["--top-labels", "99"],
        ["--top-labels", "0"],
        ["--min-label-score", "nan"],
        ["--dedup", "nan"],
        ["--min-score", "inf"],
    ],
)
def test_bad_search_values_are_one_line_errors(built, capfd, args):
    code, out, err = cli(capfd, "search", "--index", built.index_dir, "night", *args)
    assert code == 1 and out == "" and one_clean_line(err), (args, err)


def test_a_400_megapixel_png_is_refused_before_decoding(built, capfd, tmp_path):
    bomb = tmp_path / "bomb.png"
    png_header_only(bomb, 20_000, 20_000)
    code, _, err = cli(capfd, "search", "--index", built.index_dir, "--image", str(bomb))
    assert code == 1 and one_clean_line(err) and "image too large" in err, err
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    code, _, err = cli(capfd, "search", "--index", built.index_dir, "--image", str(text))
    assert code == 1 and one_clean_line(err) and "not a readable image" in err


def test_good_values_still_work(built, capfd):
    code, out, err = cli(capfd, "search", "--index", built.index_dir, "night", "--year",
                         "1990-2010", "--duration", "0.5-", "--per-movie", "1", "--top-labels",
                         "5", "-k", "3", "--json")  # fmt: skip
    assert code == 0 and 1 <= out.count("\n") <= 3, err


def test_range_and_number_parsing():
    assert parse_range("1990-2000", int, "years") == (1990, 2000)
    assert parse_range("1995", int, "years") == (1995, 1995)
    assert parse_range("-2.5", float, "d") == (None, 2.5) and parse_range("2-", float) == (2, None)
    assert parse_range("", float) == (None, None)
    for bad in ("nan-inf", "nan-", "2-nan", "inf", "5-2", "a-b", "1e999-"):
        with pytest.raises(ScenesearchError):
            parse_range(bad, float, "d")
    assert as_int("12", "k") == 12 and as_int(3.0, "k") == 3
    for bad in (math.nan, math.inf, 2.5, True, "10^30", None):
        with pytest.raises(ScenesearchError):
            as_int(bad, "k")


# ------------------------------------------------------------------------------ properties
NUMBERS = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 5, 10**30, 2**63, -(2**63), 1e308, -1e-308]),
)
TEXTS = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "nan",
            "-nan",
            "inf",
            "-inf",
            "nan-inf",
            "2-nan",
            "1e20",
            "10^30",
            "-5",
            "1990-2000",
            "2000-1990",
            "0-0",
            "1e400",
            "",
            " ",
            "-",
            "--",
            "x:0001",
            "night-harbour:0002",
            "night-harbour",
            "street",
            "crime",
        ]
    ),  # fmt: skip
    NUMBERS.map(str),
)
MAYBE_NUM = st.one_of(st.none(), NUMBERS)


@pytest.fixture(scope="module")
def engine(built, tiny_encoder, tmp_path_factory):
    """An engine on a copy of the index (the CLI tests open the original: one process, one
    opener at a time)."""
    import shutil

    copy = tmp_path_factory.mktemp("engine") / "index"
    shutil.copytree(built.index_dir, copy)
    eng = SearchEngine.open(StoreConfig(index_dir=str(copy)), encoder=tiny_encoder)
    yield eng
    eng.close()


@settings(max_examples=150, deadline=10_000, suppress_health_check=[HealthCheck.too_slow])
@given(
    labels=st.lists(TEXTS, max_size=3),
    genres=st.lists(TEXTS, max_size=2),
    movies=st.lists(TEXTS, max_size=2),
    source=st.sampled_from(["clean", "top", "TOP", ""]),
    top_k=NUMBERS,
    min_label=NUMBERS,
    years=st.tuples(MAYBE_NUM, MAYBE_NUM),
    durations=st.tuples(MAYBE_NUM, MAYBE_NUM),
    limit=NUMBERS,
    offset=NUMBERS,
    per_movie=MAYBE_NUM,
    dedup=MAYBE_NUM,
    min_score=MAYBE_NUM,
    query=st.one_of(st.none(), TEXTS),
    like=st.one_of(st.none(), TEXTS),
)
def test_engine_random_filters_give_a_result_or_a_clean_error(
    engine, labels, genres, movies, source, top_k, min_label, years, durations, limit, offset,
    per_movie, dedup, min_score, query, like,
):  # fmt: skip
    f = SearchFilters(
        labels_any=tuple(labels), genres=tuple(genres), movies=tuple(movies),
        label_source=source, label_top_k=top_k, label_min_score=min_label,
        year_min=years[0], year_max=years[1], duration_min=durations[0], duration_max=durations[1],
    )  # fmt: skip
    try:
        res = engine.search(text=query, like=like, filters=f,
                            limit=limit, offset=offset, per_movie=per_movie, dedup=dedup,
                            min_score=min_score)  # fmt: skip
    except ScenesearchError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert len(res.hits) <= min(int(limit), MAX_LIMIT)
    for h in res.hits:
        if f.year_min is not None:
            assert h.year is not None and h.year >= f.year_min


OPTIONS = ["-k", "--offset", "--per-movie", "--dedup", "--min-score", "--year", "--duration",
           "--top-labels", "--min-label-score", "--label", "--all-labels", "--genre", "--movie",
           "--like"]  # fmt: skip


@settings(
    max_examples=60,
    deadline=20_000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    opts=st.lists(st.tuples(st.sampled_from(OPTIONS), TEXTS), max_size=4),
    query=st.sampled_from([[], ["night"], ["a", "dark", "street"]]),
)
def test_cli_random_arguments_give_a_result_or_one_clean_line(built, capfd, opts, query):
    args = [x for o, v in opts for x in (o, v)]
    code, out, err = cli(capfd, "search", "--index", built.index_dir, "--json", *query, *args)
    assert "Traceback" not in err and "panicked" not in err, err
    if code == 2:  # argparse: a usage line plus its error line
        assert "usage:" in err and "error:" in err
    elif code == 1:
        assert one_clean_line(err), err
    else:
        assert code in (0, 3), (code, err)


# ------------------------------------------------------------------------------ wording
@pytest.mark.parametrize(
    "kw, argv, engine_says, cli_says",
    [
        ({"offset": -1}, ["--offset", "-1"], "offset must be between 0 and", "--offset must be between 0 and"),
        ({"per_movie": 0}, ["--per-movie", "0"], "per_movie must be between 1", "--per-movie must be between 1"),
        ({"dedup": 2.0}, ["--dedup", "2"], "dedup (a cosine similarity) must be between",
         "--dedup (a cosine similarity) must be between"),
        ({"filters": SearchFilters(label_source="top", label_top_k=9)}, ["--top-labels", "9"],
         "label_top_k (the index keeps the top 5 labels)", "--top-labels (the index keeps"),
        ({"like": "LIKE"}, ["--like", "LIKE"], "like cannot be combined with a text or image",
         "--like cannot be combined with a text or image query"),
    ],
)  # fmt: skip
def test_the_engine_names_its_inputs_and_the_cli_says_options(built, capfd, kw, argv, engine_says,
                                                              cli_says, tiny_encoder):  # fmt: skip
    """The library speaks of its own inputs (search/validate.py's InputValueError); the CLI
    says the same error with its option names (ui/common.py CLI_NAMES)."""
    from scenesearch.search.validate import InputValueError

    like = "deep-orbit:0001"
    kw = {k: like if v == "LIKE" else v for k, v in kw.items()}
    argv = [like if a == "LIKE" else a for a in argv]
    cfg = StoreConfig(index_dir=built.index_dir)
    with SearchEngine.open(cfg, encoder=tiny_encoder) as eng, pytest.raises(InputValueError) as e:
        eng.search("night", **kw)
    assert engine_says in str(e.value) and "--" not in str(e.value), str(e.value)
    code, out, err = cli(capfd, "search", "--index", built.index_dir, "--no-server", "night",
                         *argv)  # fmt: skip
    assert code == 1 and one_clean_line(err) and cli_says in err, err

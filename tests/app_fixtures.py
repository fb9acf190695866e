"""Fixtures and helpers shared by the shells' tests (the CLI, the web app, the browser tests):
the 3-movie test index (tests/index_fixtures.py) as a module fixture, an engine on it, the CLI
run in-process, a launched app on a free port, headless Chromium.

The fixture factories return a pytest fixture to assign to a module-level name, e.g.
``built = index_fixture("app")``: each test module gets its own index (module scope), built
once, as before.
"""

from __future__ import annotations

import gc
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from scenesearch.indexer.config import StoreConfig
from scenesearch.search import SearchEngine
from tests.index_fixtures import build_test_index

CHROMIUM = shutil.which(
    "chromium"
)  # Debian's chromium (CI installs it); browser tests skip without
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def index_fixture(folder: str, movies=None, pair: bool = False):
    """A module-scoped fixture: the test index built into a fresh ``folder`` under pytest's tmp
    dir, with ``movies`` (default: the fixture's three). It gives the ``BuiltIndex`` (``pair``:
    the ``(index_dir, info)`` pair of :func:`build_test_index`)."""

    @pytest.fixture(scope="module")
    def index(tmp_path_factory, tiny_encoder, tiny_labeler):
        args = (movies,) if movies is not None else ()
        got = build_test_index(tmp_path_factory.mktemp(folder), *args, encoder=tiny_encoder,
                               labeler=tiny_labeler)  # fmt: skip
        return got if pair else got[1]

    return index


def engine_fixture():
    """A module-scoped fixture: a :class:`SearchEngine` on the module's ``built`` index with the
    tiny model, closed after the module."""

    @pytest.fixture(scope="module")
    def engine(built, tiny_encoder):
        with open_engine(built.index_dir, tiny_encoder) as eng:
            yield eng

    return engine


def open_engine(index_dir: str, encoder) -> SearchEngine:
    """An engine on the embedded index at ``index_dir`` (a context manager: it closes it)."""
    return SearchEngine.open(StoreConfig(index_dir=index_dir), encoder=encoder)


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """``scenesearch ARGV...`` in this process: (exit code, stdout, stderr)."""
    from scenesearch.ui.cli import main

    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def launched(engine, **build_kw) -> Iterator[tuple[str, object]]:
    """The app over ``engine`` (an engine or an EngineSlot) launched on a free port:
    ``(url, demo)``; closed (and its garbage collected) afterwards."""
    from scenesearch.ui.app import build_app, launch_app

    demo = build_app(engine, **build_kw)
    try:
        _, url, _ = launch_app(demo, "127.0.0.1", free_port(), prevent_thread_lock=True,
                               quiet=True)  # fmt: skip
        yield url, demo
    finally:
        demo.close()
        del demo
        gc.collect()


def require_chromium() -> None:
    """Skip the test unless Debian's chromium and Python playwright are there."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed")
    pytest.importorskip("playwright.sync_api")


def browser_fixture():
    """A module-scoped fixture: headless Chromium through playwright."""

    @pytest.fixture(scope="module")
    def browser():
        require_chromium()
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            yield b
            b.close()

    return browser


def garbage_fixture():
    """An autouse fixture collecting the garbage after each test: gr.Blocks() leaves asyncio
    event loops open and a launched server leaves sockets; their ResourceWarnings (ignored by
    the modules that use this) must not surface in another module's test under -W error."""

    @pytest.fixture(autouse=True)
    def _collect_garbage():
        yield
        gc.collect()

    return _collect_garbage

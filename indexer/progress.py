"""Progress bars for an indexing run (tqdm on stderr): one for the run, one for the movie in work.
Disabled (no output at all) when ``enabled`` is false or stderr is not a terminal."""

from __future__ import annotations

import sys


class Progress:
    def __init__(self, n_movies: int, enabled: bool = True):
        self.enabled = enabled and n_movies > 0 and sys.stderr.isatty()
        self._run = self._movie = None
        if self.enabled:
            from tqdm import tqdm

            self._tqdm = tqdm
            self._run = tqdm(total=n_movies, desc="movies", unit="movie", position=0)

    def movie_started(self, title: str) -> None:
        if not self.enabled:
            return
        if self._movie is not None:
            self._movie.close()
        self._movie = self._tqdm(desc=title[:40], unit="frame", position=1, leave=False)

    def shot(self, end_frame: int) -> None:
        if self._movie is not None:
            self._movie.update(max(0, end_frame - self._movie.n))
            self._movie.set_postfix_str(f"{end_frame} frames")

    def movie_done(self, title: str) -> None:
        if self._run is not None:
            self._run.update(1)
            self._run.set_postfix_str(title[:30])

    def movie_failed(self, title: str, reason: str) -> None:
        if self._run is not None:
            self._run.update(1)
            self._run.write(f"failed: {title}: {reason}")

    def close(self) -> None:
        for bar in (self._movie, self._run):
            if bar is not None:
                bar.close()

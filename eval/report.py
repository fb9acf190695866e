"""The report folder of one evaluation run: tables, plots, warnings and a ``summary.md``.

Every table is a polars DataFrame written three ways — CSV (list columns joined with ``|``),
Parquet and JSON (records) — and printed; every plot is a PNG drawn with matplotlib's Agg backend
(no display needed). Warnings about degenerate data (too few movies, classes without positives)
are collected here so they end up in the summary next to the numbers they qualify.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl


def _csv_safe(df: pl.DataFrame) -> pl.DataFrame:
    """CSV has no list type: join list columns with '|' (the separator our inputs accept)."""
    out = []
    for name, dtype in df.schema.items():
        if isinstance(dtype, pl.List):
            out.append(pl.col(name).cast(pl.List(pl.String)).list.join("|").alias(name))
        elif isinstance(dtype, pl.Struct | pl.Array | pl.Object):
            out.append(pl.col(name).map_elements(str, return_dtype=pl.String).alias(name))
        else:
            out.append(pl.col(name))
    return df.select(out)


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None  # JSON has no NaN
    if isinstance(v, list):
        return [_json_value(x) for x in v]
    if isinstance(v, dict):
        return {k: _json_value(x) for k, x in v.items()}
    return v


@dataclass
class Report:
    """Writes into ``out_dir`` (created). ``quiet`` suppresses printing tables to stdout."""

    out_dir: Path
    title: str = "scenesearch eval"
    quiet: bool = False
    tables: dict[str, str] = field(default_factory=dict)  # name -> caption
    plots: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    headline: list[tuple[str, pl.DataFrame]] = field(default_factory=list)

    def __post_init__(self):
        self.out_dir = Path(self.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)

    def table(
        self,
        name: str,
        df: pl.DataFrame,
        caption: str = "",
        show: bool = True,
        in_summary: bool = False,
    ) -> None:
        """Write ``df`` as name.csv / name.parquet / name.json; print it when ``show``."""
        df.write_parquet(self.out_dir / f"{name}.parquet")
        _csv_safe(df).write_csv(self.out_dir / f"{name}.csv")
        rows = [_json_value(r) for r in df.to_dicts()]
        (self.out_dir / f"{name}.json").write_text(json.dumps(rows, indent=1, default=str))
        self.tables[name] = caption
        if in_summary:
            self.headline.append((caption or name, df))
        if show and not self.quiet:
            print(f"\n{caption or name}:")
            print(text_table(df))

    def figure(self, name: str, fig, caption: str = "") -> None:
        """Save a matplotlib figure as name.png and close it."""
        plt = pyplot()
        fig.savefig(self.out_dir / f"{name}.png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        self.plots[name] = caption

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def note(self, message: str) -> None:
        self.notes.append(message)

    def write_json(self, name: str, obj: Any) -> None:
        (self.out_dir / f"{name}.json").write_text(
            json.dumps(_json_value(obj), indent=2, default=str)
        )

    def write_summary(self) -> Path:
        """summary.md: headline tables as markdown, notes, warnings, and the list of files."""
        lines = [f"# {self.title}", ""]
        for caption, df in self.headline:
            lines += [f"## {caption}", "", markdown_table(df), ""]
        if self.notes:
            lines += ["## Notes", ""] + [f"- {n}" for n in self.notes] + [""]
        if self.warnings:
            lines += ["## Warnings", ""] + [f"- {w}" for w in self.warnings] + [""]
        lines += ["## Files", ""]
        lines += [f"- `{n}.csv` / `.parquet` / `.json`: {c}" for n, c in self.tables.items()]
        lines += [f"- `{n}.png`: {c}" for n, c in self.plots.items()]
        path = self.out_dir / "summary.md"
        path.write_text("\n".join(lines) + "\n")
        if not self.quiet:
            for w in self.warnings:
                print(f"warning: {w}")
            print(f"\nreport written to {self.out_dir}/ (summary.md)")
        return path


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only; works without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4f}"
    if isinstance(v, list):
        return "|".join(map(str, v))
    return str(v)


def markdown_table(df: pl.DataFrame, max_rows: int = 60) -> str:
    """A GitHub-flavoured markdown table of the first ``max_rows`` rows."""
    head = "| " + " | ".join(df.columns) + " |"
    sep = "|" + "---|" * len(df.columns)
    rows = ["| " + " | ".join(_fmt(v) for v in r) + " |" for r in df.head(max_rows).iter_rows()]
    more = (
        [f"\n({df.height - max_rows} more rows in the table files)"] if df.height > max_rows else []
    )
    return "\n".join([head, sep, *rows, *more])


def bar_plot(
    values: dict[str, dict[str, float]],
    title: str,
    ylabel: str = "AP",
    horizontal: bool | None = None,
):
    """Grouped bars: ``values[series][category]`` (e.g. feature type → genre → AP).

    Horizontal when there are many categories, so long label names stay readable.
    """
    import numpy as np

    plt = pyplot()

    series = list(values)
    cats = list(dict.fromkeys(c for s in series for c in values[s]))
    horizontal = len(cats) > 12 if horizontal is None else horizontal
    n = max(len(series), 1)
    width = 0.8 / n
    pos = np.arange(len(cats))
    if horizontal:
        fig, ax = plt.subplots(figsize=(7, max(3.0, 0.22 * len(cats) * max(1, n / 2) + 1)))
    else:
        fig, ax = plt.subplots(figsize=(max(5.0, min(12.0, 0.3 * len(cats) * n + 1.5)), 4))
    for i, s in enumerate(series):
        v = [values[s].get(c, float("nan")) for c in cats]
        off = pos + (i - (n - 1) / 2) * width
        (ax.barh if horizontal else ax.bar)(off, v, width, label=s)
    if horizontal:
        ax.set_yticks(pos, cats, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(ylabel)
        ax.set_xlim(0, 1.02)
    else:
        ax.set_xticks(pos, cats, rotation=45, ha="right")
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, 1.02)
    ax.set_title(title)
    if n > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def text_table(df: pl.DataFrame, max_rows: int = 40, float_digits: int = 3) -> str:
    """``df`` as a plain aligned text table for a terminal: a header and one line per row, floats
    to ``float_digits`` decimals, text never cut (no dtype row or box drawing as in polars' own
    repr); numbers right-aligned; past ``max_rows`` rows a last line says how many were left
    out."""

    def cell(v) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.{float_digits}f}"
        if isinstance(v, (list, tuple)):
            return ", ".join(map(str, v))
        return str(v)

    head = list(df.columns)
    rows = [[cell(v) for v in r] for r in df.head(max_rows).iter_rows()]
    numeric = [df.schema[c].is_numeric() for c in head]
    widths = [max(len(x) for x in [h, *(r[i] for r in rows)]) for i, h in enumerate(head)]

    def line(vals: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w) for v, w, num in zip(vals, widths, numeric)
        ).rstrip()

    out = [line(head), line(["-" * w for w in widths])] + [line(r) for r in rows]
    if df.height > max_rows:
        out.append(f"... {df.height - max_rows} more rows (all of them are in the CSV)")
    return "\n".join(out)

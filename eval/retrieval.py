"""Text-to-shot retrieval evaluation, decoupled from the search engine.

A query is a text with a set of relevant shot ids. Queries come from a table (``query`` plus
``relevant`` shot ids "id|id" and/or ``labels`` "a|b", meaning every shot whose ground-truth
labels include one of them) or are derived from scene labels: one query per label,
``"a photo of a {label}"`` → the shots labelled with it. Each query is run through a
``search_fn(text, k) -> list[shot_id]`` (the CLI wires the index's CLIP encoder and vector
search; the search engine can be plugged in the same way) and scored with recall@k, hit@k,
precision@k, AP@k, nDCG@k and reciprocal rank; the summary averages over queries.

Which recall@k: ``recall@k`` is the information-retrieval recall ``|top_k ∩ R| / |R|``
(share of all relevant shots found); ``hit@k`` is the "R@k" of text-to-video papers
(1 if any relevant shot is in the top k). With label-derived queries R is often large, so
recall@k is bounded by k/|R| — read hit@k, P@k and nDCG@k next to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from scenesearch.eval.metrics import (
    ap_at_k,
    hit_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
)
from scenesearch.indexer.errors import InputError
from scenesearch.indexer.inputs import read_table

SearchFn = Callable[[str, int], list[str]]
DEFAULT_KS = (1, 5, 10, 50)
DEFAULT_TEMPLATE = "a photo of a {label}"


@dataclass(frozen=True)
class Query:
    text: str
    relevant: frozenset[str]  # shot ids
    source: str = ""  # "table", "label:<name>"


def label_queries(
    shot_labels: dict[str, set[str]],
    template: str = DEFAULT_TEMPLATE,
    min_relevant: int = 1,
    labels: Sequence[str] | None = None,
) -> list[Query]:
    """One query per label present in ``shot_labels`` (shot id → labels): the template filled
    with the label, relevant = the shots carrying it. Labels on fewer than ``min_relevant``
    shots are skipped. Sorted by label for a stable order."""
    if "{label}" not in template:
        raise InputError(f"query template must contain {{label}}: {template!r}")
    by_label: dict[str, set[str]] = {}
    for sid, ls in shot_labels.items():
        for lab in ls:
            by_label.setdefault(lab, set()).add(sid)
    wanted = sorted(by_label) if labels is None else [x for x in labels if x in by_label]
    return [
        Query(template.format(label=lab), frozenset(by_label[lab]), f"label:{lab}")
        for lab in wanted
        if len(by_label[lab]) >= min_relevant
    ]


def read_queries(path: str | Path, shot_labels: dict[str, set[str]] | None = None) -> list[Query]:
    """A CSV/Parquet query table: ``query`` (text) and ``relevant`` (shot ids ``a|b``) and/or
    ``labels`` (``a|b``: every shot whose ground-truth labels include one of them; needs
    ``shot_labels``). Rows with no relevant shot are kept and reported (scored as NaN)."""
    p = Path(path)
    df, cols = read_table(p, "queries")
    qcol = cols.get("query") or cols.get("text")
    if qcol is None or not ({"relevant", "labels"} & set(cols)):
        raise InputError(f"queries {p} need a 'query' column and 'relevant' and/or 'labels'")
    if "labels" in cols and shot_labels is None:
        raise InputError(
            f"queries {p} name labels; pass scene labels (--labels FILE) to resolve them, "
            "or use --relevance weak to use the index's own weak labels"
        )
    out = []
    for r in df.iter_rows(named=True):
        text = str(r[qcol] or "").strip()
        if not text:
            continue
        rel: set[str] = set()
        if "relevant" in cols and r[cols["relevant"]]:
            rel |= {x.strip() for x in str(r[cols["relevant"]]).split("|") if x.strip()}
        if "labels" in cols and r[cols["labels"]]:
            want = {x.strip().lower() for x in str(r[cols["labels"]]).split("|") if x.strip()}
            rel |= {sid for sid, ls in (shot_labels or {}).items() if ls & want}
        out.append(Query(text, frozenset(rel), "table"))
    if not out:
        raise InputError(f"queries {p} has no queries")
    return out


@dataclass
class RetrievalResult:
    per_query: pl.DataFrame
    summary: pl.DataFrame  # metric, value (mean over queries with relevant shots)
    skipped: list[str]  # queries without relevant shots


def evaluate_queries(
    queries: Sequence[Query], search_fn: SearchFn, ks: Sequence[int] = DEFAULT_KS
) -> RetrievalResult:
    """Run every query once with ``k = max(ks)`` and score the ranking at each k."""
    kmax = max(ks)
    rows, skipped = [], []
    for q in queries:
        ranked = list(search_fn(q.text, kmax))[:kmax]
        row: dict = {
            "query": q.text,
            "source": q.source,
            "relevant": len(q.relevant),
            "retrieved": len(ranked),
            "rr": reciprocal_rank(ranked, q.relevant),
        }
        if not q.relevant:
            skipped.append(q.text)
        for k in ks:
            row[f"recall@{k}"] = recall_at_k(ranked, q.relevant, k)
            row[f"hit@{k}"] = hit_at_k(ranked, q.relevant, k)
            row[f"precision@{k}"] = (
                precision_at_k(ranked, q.relevant, k) if q.relevant else float("nan")
            )
            row[f"ap@{k}"] = ap_at_k(ranked, q.relevant, k)
            row[f"ndcg@{k}"] = ndcg_at_k(ranked, q.relevant, k)
        row["top"] = "|".join(ranked[:5])
        rows.append(row)
    per = pl.DataFrame(rows)
    scored = per.filter(pl.col("relevant") > 0)
    metrics = ["rr"] + [
        f"{m}@{k}" for k in ks for m in ("recall", "hit", "precision", "ap", "ndcg")
    ]
    summ = [
        {
            "metric": "MRR" if m == "rr" else ("mAP@" + m[3:] if m.startswith("ap@") else m),
            "value": float(np.nanmean(scored[m].to_numpy())) if scored.height else float("nan"),
            "queries": scored.height,
        }
        for m in metrics
    ]
    return RetrievalResult(per, pl.DataFrame(summ), skipped)


def summary_plot(res: RetrievalResult, ks: Sequence[int] = DEFAULT_KS):
    """recall@k, hit@k, mAP@k and nDCG@k against k."""
    from scenesearch.eval.report import pyplot

    plt = pyplot()
    vals = {r["metric"]: r["value"] for r in res.summary.iter_rows(named=True)}
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for m, lab in (("recall", "recall@k"), ("hit", "hit@k"), ("mAP", "mAP@k"), ("ndcg", "nDCG@k")):
        ax.plot(list(ks), [vals.get(f"{m}@{k}", float("nan")) for k in ks], marker="o", label=lab)
    ax.set_xscale("log")
    ax.set_xticks(list(ks), [str(k) for k in ks])
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("k")
    ax.set_title(f"Text retrieval (MRR {vals.get('MRR', float('nan')):.3f})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig

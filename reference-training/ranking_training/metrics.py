"""Ranking metrics over grouped rows: NDCG@k, MAP@k and MRR, vectorised with numpy.

Rows are grouped into ranking requests by `group_sizes` (contiguous runs, as LightGBM expects).
Requests without any positive label carry no signal about ranking quality, so they are left out
of every metric (LightGBM instead counts them as a perfect 1.0, which flatters every model).
Ties in score are broken by row order, the same for every ranker compared.
"""

from __future__ import annotations

import numpy as np

NDCG_CUTOFFS = (1, 3, 5, 10)


def ranking_metrics(
    labels: np.ndarray, scores: np.ndarray, group_sizes: np.ndarray
) -> dict[str, float]:
    """`ndcg@1/3/5/10`, `map@10`, `mrr` and `groups` (the number of requests evaluated)."""
    labels = np.asarray(labels, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    group_sizes = np.asarray(group_sizes, dtype=np.int64)
    group = np.repeat(np.arange(len(group_sizes)), group_sizes)
    starts = np.concatenate([[0], np.cumsum(group_sizes)[:-1]])
    has_positive = np.bincount(group, weights=labels > 0, minlength=len(group_sizes)) > 0
    n_groups = int(has_positive.sum())
    if n_groups == 0:
        return {**{f"ndcg@{k}": 0.0 for k in NDCG_CUTOFFS}, "map@10": 0.0, "mrr": 0.0, "groups": 0}

    by_score = np.lexsort((np.arange(len(scores)), -scores, group))
    rank = np.arange(len(scores)) - starts[group[by_score]]
    ranked_labels = labels[by_score]
    ranked_group = group[by_score]
    by_label = np.lexsort((-labels, group))
    ideal_labels = labels[by_label]

    gains = 2.0**ranked_labels - 1.0
    ideal_gains = 2.0**ideal_labels - 1.0
    discount = 1.0 / np.log2(rank + 2.0)
    result: dict[str, float] = {}
    for k in NDCG_CUTOFFS:
        top = rank < k
        dcg = np.bincount(ranked_group[top], (gains * discount)[top], len(group_sizes))
        idcg = np.bincount(ranked_group[top], (ideal_gains * discount)[top], len(group_sizes))
        ndcg = np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0)
        result[f"ndcg@{k}"] = float(ndcg[has_positive].mean())

    relevant = (ranked_labels > 0).astype(np.float64)
    hits_so_far = _cumsum_within_groups(relevant, ranked_group)
    top10 = rank < 10
    precision_terms = np.where(top10, relevant * hits_so_far / (rank + 1.0), 0.0)
    n_relevant = np.bincount(group, weights=labels > 0, minlength=len(group_sizes))
    ap = np.bincount(ranked_group, precision_terms, len(group_sizes))
    ap = np.divide(ap, np.minimum(n_relevant, 10), out=np.zeros_like(ap), where=n_relevant > 0)
    result["map@10"] = float(ap[has_positive].mean())

    first_hit = np.full(len(group_sizes), np.inf)
    hit_rows = relevant > 0
    np.minimum.at(first_hit, ranked_group[hit_rows], rank[hit_rows].astype(np.float64))
    result["mrr"] = float((1.0 / (first_hit[has_positive] + 1.0)).mean())
    result["groups"] = n_groups
    return result


def _cumsum_within_groups(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Running sum of `values` restarting at each group (rows are sorted by group)."""
    total = np.cumsum(values)
    group_start = np.r_[0, np.flatnonzero(np.diff(group)) + 1]
    offset = np.zeros_like(total)
    before = np.r_[0.0, total][group_start]
    offset[group_start] = before - np.r_[0.0, before[:-1]]
    return total - np.cumsum(offset)

"""Evaluation metrics for both nets, from scikit-learn (no hand-rolled AUC).

Multiclass: accuracy, error, cross-entropy. Binary (CTR): AUC, logloss, and GAUC, the paper's
metric: per-group AUC averaged with each group weighted by its number of impressions, over the
groups that have both a positive and a negative example.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, softmax
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score


def multiclass_metrics(logits: np.ndarray, target: np.ndarray) -> dict[str, float]:
    probs = softmax(logits.astype(np.float64), axis=1)
    accuracy = float(accuracy_score(target, probs.argmax(axis=1)))
    return {
        "accuracy": accuracy,
        "error": 1.0 - accuracy,
        "ce": float(log_loss(target, probs, labels=np.arange(logits.shape[1]))),
    }


def binary_metrics(
    logits: np.ndarray, target: np.ndarray, group: np.ndarray | None = None
) -> dict[str, float]:
    scores = expit(logits.reshape(-1).astype(np.float64))
    target = target.reshape(-1)
    out = {
        "auc": _auc(target, scores),
        "logloss": float(log_loss(target, scores, labels=[0, 1])),
    }
    if group is not None:
        out["gauc"] = gauc(target, scores, group)
    return out


def gauc(target: np.ndarray, scores: np.ndarray, group: np.ndarray) -> float:
    """Impression-weighted mean of per-group AUC; groups with one class only are skipped.

    Vectorised rank-sum (Mann-Whitney) form: one sort by (group, score), mid-ranks for tied
    scores within a group, then per-group sums with `bincount`. The same value as averaging
    scikit-learn's `roc_auc_score` group by group (tests hold it to 1e-9), in O(n log n) with
    no Python loop over groups: 1M rows / 50k groups take about a second, not minutes.
    """
    target = np.asarray(target, dtype=np.float64).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    group = np.asarray(group).reshape(-1)
    if len(target) == 0:
        return float("nan")
    order = np.lexsort((scores, group))
    y, s, g = target[order], scores[order], group[order]
    n = len(y)
    new_group = np.r_[True, g[1:] != g[:-1]]
    group_id = np.cumsum(new_group) - 1
    group_start = np.flatnonzero(new_group)
    # A tie block: equal scores within one group; every member gets the block's mid-rank.
    new_block = new_group | np.r_[True, s[1:] != s[:-1]]
    block_id = np.cumsum(new_block) - 1
    block_first = np.flatnonzero(new_block)
    block_last = np.r_[block_first[1:], n] - 1
    rank_in_group = np.arange(n) - group_start[group_id] + 1.0
    first_rank = rank_in_group[block_first]
    mid_rank = (first_rank + first_rank + (block_last - block_first))[block_id] / 2.0
    sizes = np.bincount(group_id).astype(np.float64)
    positives = np.bincount(group_id, weights=y)
    negatives = sizes - positives
    rank_sums = np.bincount(group_id, weights=mid_rank * y)
    both = (positives > 0) & (negatives > 0)
    if not both.any():
        return float("nan")
    p, q = positives[both], negatives[both]
    aucs = (rank_sums[both] - p * (p + 1) / 2) / (p * q)
    return float(np.sum(sizes[both] * aucs) / np.sum(sizes[both]))


def _auc(target: np.ndarray, scores: np.ndarray) -> float:
    if target.min() == target.max():
        return float("nan")  # undefined with one class; reported, never crashes a run
    return float(roc_auc_score(target, scores))


def evaluate(
    task: str, logits: np.ndarray, target: np.ndarray, group: np.ndarray | None = None
) -> dict[str, float]:
    if task == "multiclass":
        return multiclass_metrics(logits, target)
    return binary_metrics(logits, target, group)


def headline(task: str, grouped: bool) -> str:
    """The metric tables lead with: accuracy, or for CTR the paper's GAUC when groups exist."""
    if task == "multiclass":
        return "accuracy"
    return "gauc" if grouped else "auc"

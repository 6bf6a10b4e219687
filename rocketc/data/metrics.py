"""Evaluation metrics for both nets, from scikit-learn (GAUC vectorised here, tested against it).

Multiclass: accuracy, error, cross-entropy. Binary (CTR): AUC, logloss, and GAUC, the paper's
metric: per-group AUC averaged with each group weighted by its number of impressions, over the
groups that have both a positive and a negative example.

With sample weights (`data.weight`) every metric weighs each row by its weight, as scikit-learn's
`sample_weight` does: AUC counts each (positive, negative) pair at the product of their weights,
and GAUC weighs each group by its total weight (its weighted impressions).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, softmax
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score


def multiclass_metrics(
    logits: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None
) -> dict[str, float]:
    probs = softmax(logits.astype(np.float64), axis=1)
    accuracy = float(accuracy_score(target, probs.argmax(axis=1), sample_weight=weight))
    return {
        "accuracy": accuracy,
        "error": 1.0 - accuracy,
        "ce": float(
            log_loss(target, probs, labels=np.arange(logits.shape[1]), sample_weight=weight)
        ),
    }


def binary_metrics(
    logits: np.ndarray,
    target: np.ndarray,
    group: np.ndarray | None = None,
    weight: np.ndarray | None = None,
) -> dict[str, float]:
    scores = expit(logits.reshape(-1).astype(np.float64))
    target = target.reshape(-1)
    out = {
        "auc": _auc(target, scores, weight),
        "logloss": float(log_loss(target, scores, labels=[0, 1], sample_weight=weight)),
    }
    if group is not None:
        out["gauc"] = gauc(target, scores, group, weight)
    return out


def gauc(
    target: np.ndarray, scores: np.ndarray, group: np.ndarray, weight: np.ndarray | None = None
) -> float:
    """Impression-weighted mean of per-group AUC; groups with one class only are skipped.

    Vectorised rank-sum (Mann-Whitney) form: one sort by (group, score); within a group each
    positive counts the negative weight scored below it, plus half of that in its tie block
    (equal scores); then per-group sums with `bincount`. The same value as averaging
    scikit-learn's `roc_auc_score` group by group (tests hold it to 1e-9, with and without
    `sample_weight`), in O(n log n) with no Python loop over groups: 1M rows / 50k groups take
    about a second, not minutes. With `weight`, rows count by their weight, in each group's
    AUC and in the group's share of the mean.
    """
    target = np.asarray(target, dtype=np.float64).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    group = np.asarray(group).reshape(-1)
    if len(target) == 0:
        return float("nan")
    w = np.ones_like(target) if weight is None else np.asarray(weight, np.float64).reshape(-1)
    order = np.lexsort((scores, group))
    y, s, g, w = target[order], scores[order], group[order], w[order]
    new_group = np.r_[True, g[1:] != g[:-1]]
    group_id = np.cumsum(new_group) - 1
    # A tie block: equal scores within one group.
    new_block = new_group | np.r_[True, s[1:] != s[:-1]]
    block_id = np.cumsum(new_block) - 1
    block_group = group_id[new_block]
    block_pos = np.bincount(block_id, weights=w * y)
    block_neg = np.bincount(block_id, weights=w * (1.0 - y))
    # Negative weight in the blocks below each block of its group: an exclusive running sum,
    # less the running sum at the group's first block.
    below = np.cumsum(block_neg) - block_neg
    first_block = np.flatnonzero(np.r_[True, block_group[1:] != block_group[:-1]])
    below -= below[first_block][block_group]
    wins = np.bincount(block_group, weights=block_pos * (below + 0.5 * block_neg))
    positives = np.bincount(group_id, weights=w * y)
    negatives = np.bincount(group_id, weights=w * (1.0 - y))
    sizes = np.bincount(group_id, weights=w)
    both = (positives > 0) & (negatives > 0)
    if not both.any():
        return float("nan")
    aucs = wins[both] / (positives[both] * negatives[both])
    return float(np.sum(sizes[both] * aucs) / np.sum(sizes[both]))


def _auc(target: np.ndarray, scores: np.ndarray, weight: np.ndarray | None = None) -> float:
    kept = target if weight is None else target[weight > 0]
    if len(kept) == 0 or kept.min() == kept.max():
        return float("nan")  # undefined with one class; reported, never crashes a run
    return float(roc_auc_score(target, scores, sample_weight=weight))


def evaluate(
    task: str,
    logits: np.ndarray,
    target: np.ndarray,
    group: np.ndarray | None = None,
    weight: np.ndarray | None = None,
) -> dict[str, float]:
    """The task's metrics of one net's logits; `weight`: per-row sample weights, or None."""
    if task == "multiclass":
        return multiclass_metrics(logits, target, weight)
    return binary_metrics(logits, target, group, weight)


def headline(task: str, grouped: bool) -> str:
    """The metric tables lead with: accuracy, or for CTR the paper's GAUC when groups exist."""
    if task == "multiclass":
        return "accuracy"
    return "gauc" if grouped else "auc"

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
    """Impression-weighted mean of per-group AUC; groups with one class only are skipped."""
    order = np.argsort(group, kind="stable")
    target, scores, group = target[order], scores[order], group[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    ends = np.r_[starts[1:], len(group)]
    total, weight = 0.0, 0
    for s, e in zip(starts, ends, strict=True):
        y = target[s:e]
        if y.min() == y.max():
            continue
        total += (e - s) * roc_auc_score(y, scores[s:e])
        weight += e - s
    return float(total / weight) if weight else float("nan")


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

"""Sample-weighted metrics equal scikit-learn's with `sample_weight`; GAUC equals its loop.

GAUC has no scikit-learn function: the reference is the definition, group by group, with
`roc_auc_score(..., sample_weight=...)` for each group's AUC and each group's total weight as its
share of the mean. Integer weights must also equal repeating rows, a check that needs no
reference implementation at all.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit, softmax
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from rocketc.data.metrics import binary_metrics, evaluate, gauc, multiclass_metrics


def _gauc_by_loop(target, scores, group, weight) -> float:
    total, share = 0.0, 0.0
    for g in np.unique(group):
        mask = group == g
        y, w = target[mask], weight[mask]
        if not (w[y == 1].sum() > 0 and w[y == 0].sum() > 0):
            continue  # one class only (by weight)
        total += w.sum() * roc_auc_score(y, scores[mask], sample_weight=w)
        share += w.sum()
    return total / share if share else float("nan")


def _data(n=5000, groups=300, seed=0):
    rng = np.random.default_rng(seed)
    group = rng.integers(0, groups, n)
    target = (rng.random(n) < 0.3).astype(np.float64)
    target[group % 40 == 0] = 1.0  # groups with one class only
    logits = np.round(rng.normal(0, 1, n) + target, 1)  # ties within groups
    weight = rng.choice([0.0, 0.5, 1.0, 3.0], n, p=[0.1, 0.3, 0.4, 0.2])
    return target, logits, group, weight


def test_weighted_auc_and_logloss_match_sklearn():
    target, logits, group, weight = _data()
    got = binary_metrics(logits, target, group, weight)
    scores = expit(logits)
    assert abs(got["auc"] - roc_auc_score(target, scores, sample_weight=weight)) < 1e-12
    assert abs(got["logloss"] - log_loss(target, scores, sample_weight=weight)) < 1e-12
    assert abs(got["gauc"] - _gauc_by_loop(target, scores, group, weight)) < 1e-9
    assert got != binary_metrics(logits, target, group)  # the weights matter


def test_weighted_multiclass_metrics_match_sklearn():
    rng = np.random.default_rng(1)
    logits, target = rng.normal(0, 2, (800, 5)), rng.integers(0, 5, 800)
    weight = rng.random(800) * 3
    got = evaluate("multiclass", logits, target, weight=weight)
    probs = softmax(logits, axis=1)
    want = accuracy_score(target, probs.argmax(1), sample_weight=weight)
    assert abs(got["accuracy"] - want) < 1e-12
    assert abs(got["error"] - (1 - want)) < 1e-12
    want_ce = log_loss(target, probs, labels=np.arange(5), sample_weight=weight)
    assert abs(got["ce"] - want_ce) < 1e-12
    assert multiclass_metrics(logits, target, np.ones(800)) == multiclass_metrics(logits, target)


def test_unit_weights_are_no_weights_and_integer_weights_repeat_rows():
    target, logits, group, weight = _data(seed=2)
    scores = expit(logits)
    assert (
        abs(gauc(target, scores, group, np.ones(len(target))) - gauc(target, scores, group)) < 1e-12
    )
    counts = np.random.default_rng(3).integers(0, 4, len(target))
    repeated = np.repeat(np.arange(len(target)), counts)
    want = binary_metrics(logits[repeated], target[repeated], group[repeated])
    got = binary_metrics(logits, target, group, counts.astype(float))
    for key in ("auc", "logloss", "gauc"):
        assert abs(got[key] - want[key]) < 1e-9, key


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 4),  # group
            st.integers(0, 1),  # label
            st.integers(0, 3),  # score level: ties everywhere
            st.sampled_from([0.0, 0.25, 1.0, 2.0]),  # weight, zeros included
        ),
        min_size=1,
        max_size=60,
    )
)
def test_weighted_gauc_matches_the_loop_on_small_hostile_inputs(rows):
    group, target, score, weight = (np.array(c) for c in zip(*rows, strict=True))
    target = target.astype(float)
    got = gauc(target, score / 3.0, group, weight)
    want = _gauc_by_loop(target, score / 3.0, group, weight)
    assert (np.isnan(got) and np.isnan(want)) or abs(got - want) < 1e-9

"""Metrics: the vectorised GAUC equals the per-group scikit-learn definition."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from rocketc.data.metrics import gauc


def _gauc_by_loop(target, scores, group) -> float:
    """The definition, group by group: impression-weighted AUC over groups with both labels."""
    total, weight = 0.0, 0
    for g in np.unique(group):
        mask = group == g
        y = target[mask]
        if y.min() == y.max():
            continue
        total += mask.sum() * roc_auc_score(y, scores[mask])
        weight += mask.sum()
    return total / weight if weight else float("nan")


def test_gauc_matches_the_loop_on_random_data_with_ties_and_one_class_groups():
    rng = np.random.default_rng(0)
    n = 20_000
    group = rng.integers(0, 800, n)
    target = (rng.random(n) < 0.3).astype(np.float32)
    target[group % 50 == 0] = 1.0  # some groups with one class only
    scores = np.round(rng.random(n) + 0.3 * target, 2)  # many ties within groups
    assert abs(gauc(target, scores, group) - _gauc_by_loop(target, scores, group)) < 1e-9


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 4), st.integers(0, 1), st.integers(0, 3)),
        min_size=1,
        max_size=60,
    )
)
def test_gauc_matches_the_loop_on_small_hostile_inputs(rows):
    group, target, score = (np.array(c) for c in zip(*rows, strict=True))
    scores = score / 3.0  # few distinct values: ties everywhere
    got, want = gauc(target.astype(float), scores, group), _gauc_by_loop(target, scores, group)
    assert (np.isnan(got) and np.isnan(want)) or abs(got - want) < 1e-9


def test_gauc_takes_string_groups_and_is_order_free():
    target = np.array([1, 0, 1, 0, 1, 1, 0])
    scores = np.array([0.9, 0.1, 0.4, 0.6, 0.5, 0.2, 0.3])
    group = np.array(["u1", "u1", "u2", "u2", "u3", "u3", "u3"])
    perm = np.random.default_rng(1).permutation(len(target))
    assert gauc(target, scores, group) == gauc(target[perm], scores[perm], group[perm])
    assert abs(gauc(target, scores, group) - _gauc_by_loop(target, scores, group)) < 1e-12

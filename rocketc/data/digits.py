"""scikit-learn's bundled 8x8 digits: 1,797 images, 10 classes, no download.

A raw row is one image's 64 pixel intensities (0-16, row by row), the field named after the spec
input (`image` in the quickstart): a JSON list of 64 numbers, or CSV columns image_0 ... image_63.
Preprocessing divides by 16 (their maximum) so pixels lie in [0, 1]. The split is stratified so
each of the small val/test splits holds every digit in its overall proportion.
"""

from __future__ import annotations

import numpy as np

from rocketc.compiler.spec import DenseInput, DigitsData, Spec
from rocketc.data.base import Dataset, Split, describe, make_target
from rocketc.data.dense import Dense
from rocketc.data.encode import check_size, data_seed, spec_input, split_sizes
from rocketc.data.preprocess import Preprocessor, label_info, take
from rocketc.errors import DataError


def load(spec: Spec, data: DigitsData) -> Dataset:
    from sklearn.datasets import load_digits  # slow import; only when digits are asked for
    from sklearn.model_selection import train_test_split

    item = spec_input(spec, data.input, DenseInput, "digits")
    bunch = load_digits()
    check_size(item, bunch.data.shape[1], "digits", bunch.data.shape[1:])
    raw = {item.name: bunch.data}  # (1797, 64) float64 intensities 0..16
    labels = np.asarray(bunch.target)
    _, n_val, n_test = split_sizes(len(labels), data.val_fraction, data.test_fraction)
    rows = np.arange(len(labels))
    seed = data_seed(spec)
    try:
        rest, test = train_test_split(rows, test_size=n_test, stratify=labels, random_state=seed)
        train, val = train_test_split(
            rest, test_size=n_val, stratify=labels[rest], random_state=seed
        )
    except ValueError as exc:  # a split too small to hold every class once
        raise DataError(f"digits: cannot stratify these split fractions: {exc}") from None
    # Fixed, not fitted: 16 is the pixels' full scale, whatever the split.
    pixels = Dense(
        item.name, tuple(item.shape), field=item.name, mean=np.zeros(1), std=np.full(1, 16.0)
    )
    preprocess = Preprocessor(
        "digits",
        f"one 8x8 digit: '{item.name}', its 64 pixel intensities (0-16) row by row",
        [pixels],
        label_info(spec, "the digit shown"),
    )
    splits = []
    for part in (np.sort(train), np.sort(val), np.sort(test)):
        rows_raw = take(raw, part)
        inputs = preprocess.encode_split(rows_raw, "digits")
        splits.append(Split(inputs, make_target(spec, labels[part]), None, rows_raw))
    return Dataset(*splits, describe("digits", spec, *splits), preprocess)

"""scikit-learn's bundled 8x8 digits: 1,797 images, 10 classes, no download.

Pixels are divided by 16 (their maximum) to lie in [0, 1]. The split is stratified so each of
the small val/test splits holds every digit in its overall proportion.
"""

from __future__ import annotations

import numpy as np

from rocketc.compiler.spec import DenseInput, DigitsData, Spec
from rocketc.errors import DataError
from rocketc.runtime.data.base import Dataset, Split, describe, make_target
from rocketc.runtime.data.encode import data_seed, fit_dense_shape, spec_input, split_sizes


def load(spec: Spec, data: DigitsData) -> Dataset:
    from sklearn.datasets import load_digits  # slow import; only when digits are asked for
    from sklearn.model_selection import train_test_split

    item = spec_input(spec, data.input, DenseInput, "digits")
    bunch = load_digits()
    pixels = fit_dense_shape(item, bunch.data / 16.0, "digits")  # (1797, *shape)
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
    splits = [
        Split({item.name: pixels[r]}, make_target(spec, labels[r]), None)
        for r in (np.sort(train), np.sort(val), np.sort(test))
    ]
    return Dataset(*splits, describe("digits", spec, *splits))

"""Real, offline data for `rocketc train`: the spec's `data:` section -> numpy train/val/test.

One loader module per source family (digits, idx, movielens, tabular, npz). Each returns numpy
arrays keyed by spec input name; `load_data` then checks them against the spec (shapes, dtypes,
ids below `vocab`, labels in range, no empty split) so every data problem is one DataError
before training starts. Splits are deterministic: seeded with `spec.train.seed` (see
`encode.data_seed`), and vocabularies and normalisation are fitted on the train split only.
This package never imports torch; the trainer wraps the arrays in TensorDatasets itself.
"""

from __future__ import annotations

from rocketc.compiler.spec import Spec
from rocketc.errors import DataError
from rocketc.runtime.data import digits, idx, movielens, npz, tabular
from rocketc.runtime.data.base import Dataset, Split, check

__all__ = ["Dataset", "Split", "load_data"]

_LOADERS = {
    "digits": digits.load,
    "fashion-mnist": idx.load,
    "idx": idx.load,
    "movielens-100k": movielens.load,
    "csv": tabular.load,
    "parquet": tabular.load,
    "npz": npz.load,
}


def load_data(spec: Spec) -> Dataset:
    """Load, split and check the data named by `spec.data`; raises DataError, never a traceback."""
    if spec.data is None:
        raise DataError("the spec has no `data:` section; add one (e.g. `data: {source: digits}`)")
    dataset = _LOADERS[spec.data.source](spec, spec.data)
    check(spec, dataset)
    return dataset

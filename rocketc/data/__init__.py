"""Real, offline data for `rocketc train`: the spec's `data:` section -> numpy train/val/test.

One loader module per source family (digits, idx, movielens, tabular, npz). Each returns numpy
arrays keyed by spec input name; `load_data` then checks them against the spec (shapes, dtypes,
ids below `vocab`, labels in range, no empty split) so every data problem is one DataError
before training starts. Splits are deterministic: seeded with `spec.train.seed` (see
`encode.data_seed`), and vocabularies and normalisation are fitted on the train split only, by
the run's `Preprocessor` (preprocess.py), which `rocketc predict` and `serve` load again.
This package never imports torch; the trainer wraps the arrays in TensorDatasets itself.

The loaders (and the compiler's spec classes they read) are imported on first use, so serving,
which needs only `fields` and `preprocess`, starts without them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rocketc.errors import DataError

if TYPE_CHECKING:
    from rocketc.compiler.load import Source
    from rocketc.compiler.spec import Spec
    from rocketc.data.base import Dataset, Split

__all__ = ["Dataset", "Split", "load_data"]

# data source -> its loader module (each defines `load(spec, data) -> Dataset`)
_LOADERS = {
    "digits": "digits",
    "fashion-mnist": "idx",
    "idx": "idx",
    "movielens-100k": "movielens",
    "csv": "tables",
    "parquet": "tables",
    "npz": "npz",
}


def load_data(spec: Spec, source: Source | None = None) -> Dataset:
    """Load, split and check the data named by `spec.data`; raises DataError, never a traceback.
    With the spec's `source` (`Compiled.source`), a problem about a spec entry (a column that
    an input or a data entry names and the table lacks) is reported at that entry's line."""
    from rocketc.data.base import check

    if spec.data is None:
        raise DataError("the spec has no `data:` section; add one (e.g. `data: {source: digits}`)")
    loader = importlib.import_module(f"rocketc.data.{_LOADERS[spec.data.source]}")
    try:
        dataset = loader.load(spec, spec.data)
    except DataError as exc:
        if source is None:
            raise
        raise DataError([d.placed(source.source_map) for d in exc.diagnostics]) from None
    check(spec, dataset)
    return dataset


def __getattr__(name: str) -> Any:
    if name in ("Dataset", "Split"):
        from rocketc.data import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

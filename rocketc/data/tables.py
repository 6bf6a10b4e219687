"""CSV and Parquet tables: read whole into memory (tabular.py), or streamed from the file in
record batches when it is large or the spec asks (stream.py)."""

from __future__ import annotations

from rocketc.compiler.spec import Spec, TabularData
from rocketc.data import stream, tabular
from rocketc.data.base import Dataset


def load(spec: Spec, data: TabularData) -> Dataset:
    if stream.wanted(data):  # read in record batches: the train split never held at once
        return stream.load(spec, data)
    return tabular.load(spec, data)

"""Multi-valued categorical fields (tags, genres, clicked items) -> padded id lists (n, max_len).

A raw value is a list of category values: a Parquet list column, a JSON list, or text split at
the data's `list_delimiter` (a CSV cell `drama|comedy`; spaces around each value are dropped,
empty values too); one value alone is a list of one, and a missing value an empty list. Each
value becomes an id as a categorical input's would: through the train split's vocabulary of
values (the k-th smallest text gets id k + 1), through the stable hash of `hash_buckets`
(hashing.py), or, for data prepared outside rocketc (npz), as the id it already is.

A value unseen in training is left out of its list (it would be id 0, which pooling skips
anyway), then the list keeps its first `max_len` ids and is padded with 0 at the end. `fit`
records on the train split how long lists are and how many were cut at max_len.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from rocketc.data.features import RowProblem, register_feature
from rocketc.data.fields import Field, parse
from rocketc.data.hashing import bucket_of, canonical_text, collision_stats, describe_stats
from rocketc.errors import DataError

CACHE_LIMIT = 100_000  # distinct raw values remembered (a server may see unbounded ones)


@register_feature
@dataclass
class CategoricalList:
    """One raw list field -> ids (vocabulary, hash or as given) -> (n, max_len), 0 = padding."""

    kind: ClassVar[str] = "categorical_list"
    input: str
    vocab: int  # the spec's vocab: ids are in [0, vocab)
    max_len: int
    column: str  # the raw field it reads
    delimiter: str = "|"  # splits a text value
    mode: str = "vocabulary"  # vocabulary (fitted) | hashed (buckets) | ids (values are ids)
    buckets: int | None = None  # hashed: the spec's hash_buckets
    vocabulary: np.ndarray | None = None  # sorted train values, as text (mode vocabulary)
    stats: dict[str, Any] | None = None  # list lengths (and bucket use) on the train split
    # vocab_from: the input whose fitted vocabulary this list takes (`share`), not its own
    shared_from: str | None = None
    _index: dict | None = field(default=None, repr=False, compare=False)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def fields(self) -> list[Field]:
        return [Field(self.column, "list")]

    # --- one raw value -> its values, then their ids ----------------------------------------
    def _items(self, value: Any) -> list:
        if isinstance(value, str):
            return [t for t in (part.strip() for part in value.split(self.delimiter)) if t]
        if isinstance(value, (list, tuple, np.ndarray)):
            return [v.strip() if isinstance(v, str) else v for v in value if not _blank(v)]
        return [value]

    def _ids(self, value: Any) -> tuple[tuple[int, ...], str | None]:
        """Ids of one raw value's known values (untruncated), and a problem, if any."""
        items = self._items(value)
        if self.mode == "hashed":
            return tuple(bucket_of(canonical_text(v), self.buckets) for v in items), None
        if self.mode == "vocabulary":
            if self._index is None:
                known = [] if self.vocabulary is None else self.vocabulary.tolist()
                self._index = {v: k + 1 for k, v in enumerate(known)}
            found = (self._index.get(canonical_text(v), 0) for v in items)
            return tuple(i for i in found if i), None
        ids = []  # the values are the ids
        for v in items:
            text = canonical_text(v)
            if not text.lstrip("-").isdigit():
                return (), f"expected whole-number ids, got {v!r}"
            if not 0 <= int(text) < self.vocab:
                return (), f"id {int(text)} is outside [0, {self.vocab})"
            if int(text):
                ids.append(int(text))
        return tuple(ids), None

    def texts(self, frame: Mapping[str, np.ndarray]) -> list[str]:
        """The distinct values (as text) of a frame's lists, sorted."""
        parsed = parse(self.fields()[0], frame[self.column])
        return sorted(
            {
                canonical_text(v)
                for r, value in enumerate(parsed.values)
                if not parsed.missing[r] and r not in parsed.wrong
                for v in self._items(value)
            }
        )

    def _lists(self, frame: Mapping[str, np.ndarray]):
        """(ids per row, untruncated; problems) of this feature's raw field."""
        column = frame[self.column]
        parsed = parse(self.fields()[0], column)
        problems = [RowProblem(r, self.column, m) for r, m in parsed.wrong.items()]
        rows: list[tuple[int, ...]] = []
        for r, value in enumerate(parsed.values):
            if parsed.missing[r] or r in parsed.wrong:
                rows.append(())
                continue
            key = value if isinstance(value, str) else None
            hit = self._cache.get(key) if key is not None else None
            if hit is None:
                hit = self._ids(value)
                if key is not None and len(self._cache) < CACHE_LIMIT:
                    self._cache[key] = hit
            ids, problem = hit
            if problem is not None:
                problems.append(RowProblem(r, self.column, problem))
            rows.append(ids)
        return rows, problems

    # --- fit and encode ---------------------------------------------------------------------
    def fit(self, frame: Mapping[str, np.ndarray]) -> CategoricalList:
        """The vocabulary of the train split's values (unless hashed or ids, or shared: then
        `share` gives it); list lengths (values in each list, known or not once shared)."""
        if self.mode == "vocabulary" and self.shared_from is None:
            self.fit_vocabulary(self.texts(frame))
        lengths = ListLengths(self.max_len)
        if self.shared_from is None:
            rows, _ = self._lists(frame)
            lengths.add(np.array([len(r) for r in rows], dtype=np.int64))
        else:  # counted as a streamed fit counts, before the vocabulary is known
            lengths.add(self.lengths(frame))
        self.stats = lengths.stats()
        if self.mode == "hashed":
            texts = self.texts(frame)
            ids = np.array([bucket_of(t, self.buckets) for t in texts], dtype=np.int64)
            self.stats["hashing"] = collision_stats(len(texts), ids, self.buckets)
        return self

    def share(self, source: Any) -> CategoricalList:
        """Take the ids of `source`, the fitted feature of the categorical input named in the
        spec's `vocab_from` (a history of items and the item): a value of a list gets the id the
        same value gets as that input, so one embedding table serves both."""
        if self.mode == "vocabulary":
            if getattr(source, "vocabulary", None) is None:
                raise DataError(
                    f"input '{self.input}' takes its ids from '{source.input}', which has no "
                    "vocabulary of values to share"
                )
            texts = [canonical_text(v) for v in source.vocabulary.tolist()]
            self.fit_vocabulary(texts, f"the vocabulary of '{source.input}'")
        elif self.mode == "hashed" and self.buckets != getattr(source, "buckets", None):
            raise DataError(
                f"input '{self.input}' takes its ids from '{source.input}', which is not hashed "
                f"into {self.buckets} buckets"
            )
        return self

    def fit_vocabulary(self, texts: list[str], seen: str = "the train split's lists") -> None:
        """Take the sorted distinct `texts` as the vocabulary, or refuse more than the spec's
        vocab holds (`seen`: where they were found)."""
        if self.vocab < len(texts) + 1:
            raise DataError(
                f"input '{self.input}' needs vocab >= {len(texts) + 1} ({len(texts):,} distinct "
                f"values in {seen} + id 0 for padding and unseen values); the spec declares "
                f"{self.vocab}"
            )
        self.vocabulary, self._index, self._cache = np.array(texts, dtype=object), None, {}

    def lengths(self, frame: Mapping[str, np.ndarray]) -> np.ndarray:
        """Values in each row's list (0 when missing): on the train rows, what `fit` counts
        once the vocabulary holds them all, so a streamed fit counts without a vocabulary."""
        parsed = parse(self.fields()[0], frame[self.column])
        return np.array(
            [
                0 if parsed.missing[r] or r in parsed.wrong else len(self._items(value))
                for r, value in enumerate(parsed.values)
            ],
            dtype=np.int64,
        )

    def encode(self, frame: Mapping[str, np.ndarray]) -> tuple[np.ndarray, list[RowProblem]]:
        column = frame[self.column]
        if isinstance(column, np.ndarray) and column.ndim == 2 and column.dtype.kind in "iu":
            return self._padded(column)
        rows, problems = self._lists(frame)
        ids = np.zeros((len(rows), self.max_len), dtype=np.int64)
        for r, row in enumerate(rows):
            kept = row[: self.max_len]
            ids[r, : len(kept)] = kept
        return ids, problems

    def _padded(self, array: np.ndarray) -> tuple[np.ndarray, list[RowProblem]]:
        """Rows of ids prepared outside rocketc (npz): checked, never looked up or hashed."""
        ids = array.astype(np.int64)
        problems = []
        if ids.shape[1] != self.max_len:
            problems = [
                RowProblem(
                    0, self.column, f"holds lists of {ids.shape[1]} ids; max_len is {self.max_len}"
                )
            ]
            return np.zeros((len(ids), self.max_len), dtype=np.int64), problems
        outside = (ids < 0) | (ids >= self.vocab)
        for r in np.flatnonzero(outside.any(axis=1)):
            bad = int(ids[r][outside[r]][0])
            problems.append(
                RowProblem(int(r), self.column, f"id {bad} is outside [0, {self.vocab})")
            )
        ids[outside] = 0
        return ids, problems

    def summary(self) -> str | None:
        if not self.stats:
            return None
        s = self.stats
        line = (
            f"'{self.input}' lists: {s['mean_length']:g} values on average, up to "
            f"{s['max_length']:,}; {s['rows_cut_at_max_len']:,} of {s['rows']:,} train rows "
            f"cut at max_len {self.max_len}"
        )
        if "hashing" in s:
            line += "; " + describe_stats(self.input, s["hashing"], "list values")
        return line

    # --- preprocess.json --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "input": self.input,
            "kind": self.kind,
            "vocab": self.vocab,
            "max_len": self.max_len,
            "column": self.column,
            "delimiter": self.delimiter,
            "mode": self.mode,
        }
        if self.shared_from is not None:
            out["shared_from"] = self.shared_from
        if self.mode == "hashed":
            out["buckets"] = self.buckets
            out["ids"] = "each value hashed as a hashed input's (1..buckets)"
        elif self.mode == "vocabulary" and self.shared_from is not None:
            out["vocabulary"] = [] if self.vocabulary is None else self.vocabulary.tolist()
            out["ids"] = (
                f"those of input '{self.shared_from}': the k-th value of its vocabulary (as "
                "text) gets id k + 1"
            )
        elif self.mode == "vocabulary":
            out["vocabulary"] = [] if self.vocabulary is None else self.vocabulary.tolist()
            out["ids"] = "the k-th value of the vocabulary (as text) gets id k + 1"
        else:
            out["ids"] = f"the values are the ids, in [0, {self.vocab}); 0 is padding"
        out["unseen"] = "left out of the list"
        out["longer"] = f"the first {self.max_len} known values are kept"
        out["missing"] = "an empty list (all padding)"
        if self.stats is not None:
            out["train_split"] = self.stats
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CategoricalList:
        vocabulary = data.get("vocabulary")
        return cls(
            data["input"],
            data["vocab"],
            data["max_len"],
            data["column"],
            data["delimiter"],
            data["mode"],
            data.get("buckets"),
            None if vocabulary is None else np.array(vocabulary, dtype=object),
            data.get("train_split"),
            data.get("shared_from"),
        )


def share_vocabularies(features: Mapping[str, Any], sources: Mapping[str, str]) -> None:
    """Give each list feature named in `sources` the ids of its source input's fitted feature
    (`sources`: list input -> the input its spec entry names in `vocab_from`)."""
    for name, source in sources.items():
        feature = features[name]
        if isinstance(feature, CategoricalList):
            feature.share(features[source])


@dataclass
class ListLengths:
    """How long a feature's lists are, counted block by block: the `stats` of preprocess.json."""

    max_len: int
    rows: int = 0
    total: int = 0
    longest: int = 0
    empty: int = 0
    cut: int = 0

    def add(self, lengths: np.ndarray) -> None:
        self.rows += len(lengths)
        self.total += int(lengths.sum())
        self.longest = max(self.longest, int(lengths.max(initial=0)))
        self.empty += int((lengths == 0).sum())
        self.cut += int((lengths > self.max_len).sum())

    def stats(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "mean_length": round(self.total / self.rows, 2) if self.rows else 0.0,
            "max_length": self.longest,
            "empty_rows": self.empty,
            "rows_cut_at_max_len": self.cut,
        }


def _blank(value: Any) -> bool:
    if value is None or (isinstance(value, float) and value != value):
        return True
    return isinstance(value, str) and not value.strip()

"""What each column of a table is, decided from a bounded sample of its rows, with the reason.

`decide` looks at one column (a pandas Series of the sample) and returns a `Column`: the label,
group or weight the user named; or a feature kind: `categorical` (a vocabulary), `hashed` (ids
too many to enumerate), `list` (several values per row), `dense` (a number), or `ignore` (the
reason says why and what would change it). The rules, in order:

1. every value missing, or one value only: ignore (nothing to learn);
2. a Parquet list column, or text holding the list delimiter in >= 10% of its cells: list;
3. a timestamp: ignore (use it as `data.split_by`);
4. whole numbers: every value distinct -> ignore (a row key); an id-like name (`user_id`,
   `itemId`) -> hashed; at most NUMBER_CODES distinct values -> categorical (codes such as an
   hour or a region number, not quantities); a code-like name (`industry_code`, `job_type`,
   `code`) with at most NAMED_CODES distinct values -> categorical, more -> hashed; else dense;
5. other numbers: categorical with few distinct values when some are missing, else dense; a
   dense column with missing values is filled with the train median, and one of values >= 0
   with a long tail (skewness > LONG_TAIL_SKEW: money, counts, mostly small) gets `log1p`;
6. text: every value distinct -> ignore (a row key); an id-like name -> hashed; up to
   CATEGORICAL_MAX distinct values -> categorical; more -> hashed. Booleans are categorical.

A column whose name is not a Python identifier (or is reserved in generated code) cannot name a
spec input and is ignored, saying so.

`forced` is the decision the user asked for on the command line (`--categorical`, `--dense`,
`--ignore`, `--list`, `--bucket`): its reason says "you said so", and a kind the column cannot
take (text as a number, numbers as a list or buckets) is an error naming the column.

Bucketizing (`bucket`: a number cut at its train quantiles into BUCKETS bands, each band an
embedded id) is only ever asked for: no rule here picks it. A long-tailed amount already gets
log1p as a dense input, and no measurement in this project shows bands beating that on some
kind of column, so a rule would be a guess.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field

import numpy as np

from rocketc.compiler.ops.base import RESERVED
from rocketc.compiler.ops.sparse import MODULEDICT_ATTRS
from rocketc.errors import DataError

CATEGORICAL_MAX = 10_000  # distinct text values embedded through a vocabulary; more are hashed
NUMBER_CODES = 50  # whole-number columns with at most this many values are codes, not amounts
ROW_KEY_MIN = 100  # a column of all-distinct values is a row key only with this many rows
LIST_SHARE = 0.1  # text is a list when at least this share of its cells holds the delimiter
MAX_LEN_CAP = 64  # longest list kept per row
LONG_TAIL_SKEW = 2.0  # a dense column >= 0 more skewed than this gets `transform: log1p`
NAMED_CODES = 1_000  # whole numbers named like codes are categorical up to this many values
BUCKETS = 16  # quantile bands of a bucketized number (`--bucket`); fewer if it has fewer values
_ID_NAME = re.compile(r"(^|_)ids?$|[a-z0-9]Ids?$|ID$|(^|_)(key|uuid|hash)$", re.IGNORECASE)
# Names of whole-number columns that hold codes, not amounts: `industry_code`, `job_type`,
# `naics_cd`, `zip`, `occupationCode`, `code`.
_CODE_NAME = re.compile(
    r"(?i:(^|_)(code|cd|type|kind|class|category|cat|status|zip|zipcode|postcode)s?$)"
    r"|[a-z0-9](Code|Type|Kind|Class|Category|Status)s?$"
)


@dataclass
class Column:
    name: str
    role: str  # label | group | weight | categorical | hashed | list | dense | bucket | ignore
    reason: str
    distinct: int = 0  # distinct values (lists: distinct values inside them), in what was read
    max_len: int = 0  # lists: the longest list
    delimiter: str | None = None  # lists held as text: what splits them
    also: list[str] = field(default_factory=list)  # a group column is also a feature
    text: bool = False  # the sampled column holds text (a CSV's whole-file pass reads it so)
    transform: str | None = None  # dense: "log1p" for a long tail
    fill: str | None = None  # dense: "median" when values are missing
    median: float = 0.0  # dense: the sample's median (the fill of a streamed table)
    buckets: int = 0  # bucket: its quantile bands (ids 1..buckets, 0 missing)

    @property
    def feature(self) -> bool:
        return self.role in ("categorical", "hashed", "list", "dense", "bucket")


def usable_name(name: str) -> str | None:
    """Why `name` cannot name a spec input, or None when it can."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return "not a Python identifier, so it cannot name a spec input; rename the column"
    if keyword.iskeyword(name) or name in RESERVED or name in MODULEDICT_ATTRS:
        return "a name reserved in generated Python; rename the column to use it"
    return None


OVERRIDES = ("categorical", "dense", "ignore", "list", "bucket")  # the roles a user may force


def forced(series, role: str, delimiter: str) -> Column:
    """The decision the user asked for (`role`, one of OVERRIDES) on one sampled column."""
    import pandas as pd

    name, said = str(series.name), f"you said so (--{role})"
    present = series.dropna()
    missing = len(series) - len(present)
    gaps = f", {missing:,} missing (id 0)" if missing else ""
    if role == "ignore":
        return Column(name, "ignore", said)
    if role == "list":
        if len(present) and not all(isinstance(v, (str, list, tuple, np.ndarray)) for v in present):
            raise DataError(
                f"--list {name}: the column holds {series.dtype} values; a list is text split "
                f"at {delimiter!r} or a Parquet list column"
            )
        lists = [split_text(v, delimiter) if isinstance(v, str) else _items(v) for v in present]
        values = {token_text(v) for row in lists for v in row}
        longest = max(map(len, lists), default=1)
        text = any(isinstance(v, str) for v in present)
        return Column(
            name,
            "list",
            f"{said}: {len(values):,} distinct values, up to {longest} per row",
            distinct=len(values),
            max_len=min(max(longest, 1), MAX_LEN_CAP),
            delimiter=delimiter if text else None,
        )
    if len(present) and isinstance(present.iloc[0], (list, tuple, np.ndarray)):
        raise DataError(f"--{role} {name}: the column holds lists; name it with --list")
    if role in ("dense", "bucket"):
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            example = present.iloc[0] if len(present) else None
            takes = "a dense input takes" if role == "dense" else "buckets cut"
            raise DataError(
                f"--{role} {name}: the column holds {series.dtype} values like {example!r}; "
                f"{takes} numbers"
            )
        if role == "bucket":
            return bucket(Column(name, "bucket", said, int(present.nunique())), gaps)
        return dense(Column(name, "dense", said, int(present.nunique())), present, len(series))
    distinct = int(present.nunique())
    if distinct > CATEGORICAL_MAX:
        return Column(
            name,
            "hashed",
            f"{said}: {distinct:,} distinct values (> {CATEGORICAL_MAX:,}), hashed{gaps}",
            distinct,
        )
    return Column(name, "categorical", f"{said}: {distinct:,} distinct values{gaps}", distinct)


def decide(series, delimiter: str) -> Column:
    """The decision for one sampled column (see the module docstring for the rules)."""
    import pandas as pd

    name = str(series.name)
    present = series.dropna()
    n, k = len(series), len(present)
    if k == 0:
        return Column(name, "ignore", f"every one of {n:,} sampled values is missing")
    found = _as_lists(present, delimiter)
    if found is not None:
        text, lists = found
        values = {token_text(v) for row in lists for v in row}
        longest = max(map(len, lists))
        how = f"text lists split at {delimiter!r}" if text else "a list column"
        return Column(
            name,
            "list",
            f"{how}: {len(values):,} distinct values, up to {longest} per row",
            distinct=len(values),
            max_len=min(max(longest, 1), MAX_LEN_CAP),
            delimiter=delimiter if text else None,
        )
    distinct = int(present.nunique())
    if distinct == 1:
        return Column(name, "ignore", f"constant ({present.iloc[0]!r}): nothing to learn", 1)
    if pd.api.types.is_datetime64_any_dtype(series):
        return Column(name, "ignore", "a timestamp: set data.split_by to split by time", distinct)
    if pd.api.types.is_bool_dtype(series):
        return Column(name, "categorical", "true/false", distinct)
    if pd.api.types.is_numeric_dtype(series):
        return _number(name, present, n, distinct)
    return _text(name, present, distinct)


def _number(name: str, present, n: int, distinct: int) -> Column:
    k = len(present)
    values = present.to_numpy(dtype=np.float64)
    whole = bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))
    counted = f"{distinct:,} distinct in {k:,} values"
    if whole and distinct == k and k >= ROW_KEY_MIN:
        return Column(name, "ignore", f"every value distinct ({counted}): a row key", distinct)
    if whole and _ID_NAME.search(name) and distinct > NUMBER_CODES:
        return Column(name, "hashed", f"whole numbers named like ids: {counted}", distinct)
    if whole and distinct <= NUMBER_CODES:
        missing = f", {n - k:,} missing (id 0)" if k < n else ""
        return Column(
            name,
            "categorical",
            f"whole numbers with {distinct} distinct values: codes, not amounts{missing}",
            distinct,
        )
    if whole and _CODE_NAME.search(name):
        missing = f", {n - k:,} missing (id 0)" if k < n else ""
        if distinct <= NAMED_CODES:
            return Column(
                name,
                "categorical",
                f"whole numbers named like codes: {distinct:,} distinct values{missing}",
                distinct,
            )
        return Column(name, "hashed", f"whole numbers named like codes: {counted}", distinct)
    if k < n:
        if distinct <= NUMBER_CODES:
            return Column(
                name,
                "categorical",
                f"a number with {n - k:,} missing values and {distinct} distinct ones: "
                "categorical, missing as id 0",
                distinct,
            )
    return dense(Column(name, "dense", f"a number ({counted})", distinct), present, n)


def dense(column: Column, present, n: int) -> Column:
    """A dense column's fill (when some of its `n` sampled values are missing) and transform
    (log1p for a long tail of values >= 0), each said in its reason."""
    values = present.to_numpy(dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) < n:
        column.fill = "median"
        column.median = float(np.median(values)) if len(values) else 0.0
        column.reason += f"; {n - len(values):,} missing of {n:,}: filled with the train median"
    skew = _skewness(values)
    if len(values) and values.min() >= 0 and skew > LONG_TAIL_SKEW:
        zeros = float(np.mean(values == 0))
        share = f", {zeros:.0%} zeros" if zeros >= 0.05 else ""
        column.transform = "log1p"
        column.reason += f"; a long tail (skewness {skew:.1f}{share}): log1p"
    return column


def bucket(column: Column, gaps: str) -> Column:
    """A number cut into BUCKETS quantile bands (as many as its distinct values, if fewer), the
    edges fitted on the train split by the loader; its reason says so."""
    column.buckets = max(2, min(BUCKETS, column.distinct))
    column.reason += (
        f": {column.buckets} quantile buckets of {column.distinct:,} distinct values, edges "
        f"from the train split{gaps}"
    )
    return column


def _skewness(values: np.ndarray) -> float:
    """The sample's skewness, E[(x - mean)^3] / std^3 (0 for a constant)."""
    if len(values) < 3:
        return 0.0
    centred = values - values.mean()
    std = np.sqrt(np.mean(centred**2))
    return float(np.mean(centred**3) / std**3) if std > 0 else 0.0


def _text(name: str, present, distinct: int) -> Column:
    k = len(present)
    counted = f"{distinct:,} distinct in {k:,} values"
    if distinct == k and k >= ROW_KEY_MIN:
        return Column(name, "ignore", f"every value distinct ({counted}): a row key", distinct)
    if _ID_NAME.search(name) and distinct > NUMBER_CODES:
        return Column(name, "hashed", f"text named like ids: {counted}", distinct)
    if distinct <= CATEGORICAL_MAX:
        return Column(name, "categorical", f"text, {counted}", distinct)
    return Column(
        name, "hashed", f"text, {counted} (> {CATEGORICAL_MAX:,}): too many to enumerate", distinct
    )


def _as_lists(present, delimiter: str) -> tuple[bool, list[list]] | None:
    """(held as text?, the sampled values as lists) if the column holds lists (or delimited
    text), else None."""
    if isinstance(present.iloc[0], (list, tuple, np.ndarray)):
        return False, [_items(v) for v in present]
    if not all(isinstance(v, str) for v in present):
        return None
    if present.str.contains(delimiter, regex=False).mean() < LIST_SHARE:
        return None
    return True, [split_text(v, delimiter) for v in present.tolist()]


def split_text(value: str, delimiter: str) -> list[str]:
    """A text list's values, as the loader splits them (rocketc.data.lists)."""
    return [t for t in (part.strip() for part in value.split(delimiter)) if t]


def _items(value) -> list:
    return [v for v in value if v is not None and not (isinstance(v, float) and v != v)]


def token_text(value) -> str:
    """A list value as the loader keys it (rocketc.data.hashing.canonical_text)."""
    from rocketc.data.hashing import canonical_text

    return canonical_text(value.strip() if isinstance(value, str) else value)

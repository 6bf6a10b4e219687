"""The search space of `rocketc tune`: which loss settings a trial varies, and how.

Every dimension is a dotted path into the spec's `loss:` section, written as `--set` writes it
(`loss.hint.weight`). A weight dimension may offer 0 as an explicit choice besides its log-scale
range (`zero`): Optuna then samples a yes/no parameter `<path>>0` first, so "no hint" is one
choice the sampler can weigh against the whole range, not a point it never reaches on a log
scale. A dimension only applies `when` what was sampled before makes it matter (no temperature
for a zero KD weight). Dimensions for fields another spec version lacks are simply absent: the
default space is read off the schema (`Hint.model_fields` ...), so new loss fields join it as
they land.

`--space FILE` overrides the default, one entry per path (see `load_space`).
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic import BaseModel

from rocketc.compiler.load import load_file
from rocketc.compiler.spec import Spec
from rocketc.errors import Diagnostic, TuneError


class _Unset:
    """Recipe value meaning "remove this key" (a hint temperature once the hint is on logits)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()

Recipe = dict[str, Any]  # loss path -> value (or UNSET)
Lookup = Callable[[str], Any]  # loss path -> its value in this trial (sampled, else the spec's)


@dataclass(frozen=True)
class Dimension:
    path: str  # "loss.hint.weight"
    kind: str  # "float" | "int" | "choice" | "fixed"
    low: float | None = None
    high: float | None = None
    log: bool = False
    zero: bool = False  # 0 is a choice of its own besides [low, high]
    choices: tuple[Any, ...] = ()
    value: Any = None  # kind "fixed"
    when: Callable[[Lookup], bool] | None = None  # applies only if this holds
    # When not sampled and this holds, remove the key from the spec (a choice made it invalid).
    unset_when: Callable[[Lookup], bool] | None = None

    @property
    def gate(self) -> str:
        """The yes/no parameter deciding between 0 and the range (when `zero`)."""
        return f"{self.path}>0"

    def sample(self, trial: Any) -> Any:
        """Ask an Optuna trial (or a FixedTrial) for this dimension's value."""
        if self.kind == "fixed":
            return self.value
        if self.kind == "choice":
            return trial.suggest_categorical(self.path, list(self.choices))
        if self.zero and not trial.suggest_categorical(self.gate, [True, False]):
            return 0 if self.kind == "int" else 0.0
        if self.kind == "int":
            return trial.suggest_int(self.path, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.path, self.low, self.high, log=self.log)

    def params_for(self, value: Any) -> dict[str, Any] | None:
        """Optuna parameters that reproduce `value`, or None when the space cannot hold it."""
        if self.kind == "fixed":
            return {}
        if self.kind == "choice":
            return {self.path: value} if value in self.choices else None
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return None
        if self.zero and value == 0:
            return {self.gate: False}
        if not self.low <= value <= self.high:
            return None
        params = {self.path: int(value) if self.kind == "int" else float(value)}
        return {self.gate: True, **params} if self.zero else params

    def describe(self) -> str:
        """One line for the report: what this dimension searches."""
        if self.kind == "fixed":
            text = f"fixed at {self.value!r}"
        elif self.kind == "choice":
            text = "one of " + ", ".join(str(c) for c in self.choices)
        else:
            scale = "log scale" if self.log else "linear"
            text = f"{self.kind} in [{self.low:g}, {self.high:g}] ({scale})"
            if self.zero:
                text = f"0, or {text}"
        return text + (" (conditional)" if self.when is not None else "")


def sample_recipe(space: list[Dimension], trial: Any, spec: Spec, data: dict[str, Any]) -> Recipe:
    """One trial's loss settings: each applicable dimension in order, asked of `trial`.

    `data` is the loaded spec the recipe will edit: a key it sets that a sampled choice rules
    out (`unset_when`) is removed.
    """
    recipe: Recipe = {}

    def lookup(path: str) -> Any:
        return recipe[path] if path in recipe else spec_value(spec, path)

    for dim in space:
        if dim.when is not None and not dim.when(lookup):
            if dim.unset_when is not None and dim.unset_when(lookup) and written(data, dim.path):
                recipe[dim.path] = UNSET
            continue
        recipe[dim.path] = dim.sample(trial)
    return recipe


def spec_params(space: list[Dimension], spec: Spec) -> dict[str, Any]:
    """The Optuna parameters of the spec's own loss settings, as far as the space holds them."""
    params: dict[str, Any] = {}
    for dim in space:
        got = dim.params_for(spec_value(spec, dim.path))
        if got:
            params.update(got)
    return params


# --- paths into the spec -------------------------------------------------------------------
def spec_value(spec: Spec, path: str) -> Any:
    """The validated value at a dotted path (schema defaults filled in), or None."""
    node: Any = spec
    for key in path.split("."):
        if isinstance(node, (list, tuple)):
            if not key.isdigit() or int(key) >= len(node):
                return None
            node = node[int(key)]
        else:
            node = getattr(node, key, None)
        if node is None:
            return None
    return node


def written(data: Any, path: str) -> bool:
    """Whether the loaded (unvalidated) spec data spells out this path."""
    node = data
    for key in path.split("."):
        if isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        elif isinstance(node, dict) and key in node:
            node = node[key]
        else:
            return False
    return True


def schema_default(spec: Spec, path: str) -> Any:
    """The schema's default for a dotted path (UNSET when the path has none)."""
    parent_path, _, leaf = path.rpartition(".")
    fields = getattr(type(spec_value(spec, parent_path)), "model_fields", {})
    return fields[leaf].get_default(call_default_factory=True) if leaf in fields else UNSET


def apply_recipe(data: dict[str, Any], recipe: Recipe) -> dict[str, Any]:
    """A copy of loaded spec data with each recipe path set (or removed, for UNSET)."""
    data = copy.deepcopy(data)
    for path, value in recipe.items():
        set_path(data, path.split("."), value)
    return data


def set_path(node: Any, keys: list[str], value: Any) -> None:
    """Set `node[k0][k1]...` (list indices as digits), creating mappings; UNSET removes."""
    for i, key in enumerate(keys):
        index: Any = int(key) if isinstance(node, list) else key
        if i == len(keys) - 1:
            if value is UNSET:
                if isinstance(node, dict):
                    node.pop(index, None)
            else:
                node[index] = value
            return
        if isinstance(node, dict) and not isinstance(node.get(index), (dict, list)):
            node[index] = {}
        node = node[index]


def _field_at(spec: Spec, path: str) -> tuple[Any, str | None]:
    """The pydantic field annotation a dotted loss path names, or (None, why not)."""
    keys = path.split(".")
    if len(keys) < 2 or keys[0] != "loss":
        return None, "a search dimension is a path into the loss section, e.g. loss.hint.weight"
    model: Any = type(spec)
    annotation: Any = None
    value: Any = spec
    for depth, key in enumerate(keys):
        origin = typing.get_origin(annotation)
        if origin in (list, tuple):
            if not key.isdigit() or not isinstance(value, (list, tuple)):
                return None, f"'{'.'.join(keys[:depth])}' is a list; '{key}' is not an index"
            if int(key) >= len(value):
                return None, f"'{'.'.join(keys[:depth])}' has no entry {key} in this spec"
            annotation = typing.get_args(annotation)[0]
            value = value[int(key)]
            model = annotation
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None, f"'{'.'.join(keys[:depth])}' has no fields"
        if key not in model.model_fields:
            return None, f"unknown loss field '{'.'.join(keys[: depth + 1])}'"
        field = model.model_fields[key]
        annotation = (
            typing.Annotated[(field.annotation, *field.metadata)]
            if field.metadata
            else field.annotation
        )
        value = getattr(value, key, None)
        model = field.annotation
    return annotation, None


# --- the default space ---------------------------------------------------------------------
def default_space(spec: Spec, epochs: int) -> list[Dimension]:
    """The default dimensions for this spec, from the loss-term registry: what each kind of term
    that teaches says to search (`LossKind.tunables`), and the gradient block, searched right
    after the first such kind (the hint), the order the studies in bench/results were run in."""
    from rocketc.compiler.losses import LOSS_KINDS

    dims: list[Dimension] = []
    for kind in (k for k in LOSS_KINDS.values() if k.teaches):
        dims += [Dimension(**dataclasses.asdict(t)) for t in kind.tunables(spec, epochs)]
        if not any(d.path == "loss.gradient_block" for d in dims):
            dims.append(Dimension("loss.gradient_block", "choice", choices=BLOCKS))
    return dims


BLOCKS = ("booster", "shared", "none")


# --- --space FILE --------------------------------------------------------------------------
_RANGE_KEYS = {"low", "high", "log", "zero", "type"}


def load_space(path: str, spec: Spec, epochs: int) -> list[Dimension]:
    """The default space with the entries of a YAML file applied over it.

    Each entry is `loss.<path>: VALUE`: a list searches those choices; a mapping
    `{low, high, log, zero, type: int|float}` searches a range; `null` stops searching the path
    (the spec's value stays); any other value fixes it. Problems are reported as
    `file:line:col: message`, all at once.
    """
    source = load_file(path)
    data = source.data
    file = source.file
    if not isinstance(data, dict):
        where = source.source_map.pos(())
        raise TuneError([Diagnostic("a search space is a mapping of loss paths", file, where)])
    dims = {d.path: d for d in default_space(spec, epochs)}
    problems: list[Diagnostic] = []
    for key, value in data.items():
        pos = source.source_map.key_positions.get((key,)) or source.source_map.pos((key,))
        try:
            dim = _entry(spec, str(key), value, dims.get(str(key)))
        except ValueError as exc:
            problems.append(Diagnostic(f"{key}: {exc}", file, pos))
            continue
        if dim is None:
            dims.pop(str(key), None)
        else:
            dims[str(key)] = dim
    if problems:
        raise TuneError(problems)
    return list(dims.values())


def _entry(spec: Spec, path: str, value: Any, default: Dimension | None) -> Dimension | None:
    annotation, problem = _field_at(spec, path)
    if problem is not None:
        raise ValueError(problem)
    check = pydantic.TypeAdapter(annotation)

    def valid(v: Any) -> Any:
        try:
            return check.validate_python(v)
        except pydantic.ValidationError as exc:
            raise ValueError(f"{v!r}: {exc.errors()[0]['msg']}") from None

    when = default.when if default is not None else None
    unset = default.unset_when if default is not None else None
    if value is None:
        return None
    if isinstance(value, list):
        if not value:
            raise ValueError("an empty list of choices")
        choices = tuple(valid(v) for v in value)
        return Dimension(path, "choice", choices=choices, when=when, unset_when=unset)
    if isinstance(value, dict):
        return _range(path, value, default, valid, when, unset)
    return Dimension(path, "fixed", value=valid(value), when=when, unset_when=unset)


def _range(path, value, default, valid, when, unset) -> Dimension:
    extra = sorted(set(value) - _RANGE_KEYS)
    if extra:
        raise ValueError(f"unknown range key(s) {extra}; use {sorted(_RANGE_KEYS)}")
    if "low" not in value or "high" not in value:
        raise ValueError("a range needs low and high, e.g. {low: 0.01, high: 10, log: true}")
    kind = value.get("type", default.kind if default and default.kind in ("int", "float") else None)
    kind = kind or "float"
    if kind not in ("int", "float"):
        raise ValueError(f"type {kind!r}: use int or float")
    low, high = valid(value["low"]), valid(value["high"])
    if not isinstance(low, (int, float)) or not isinstance(high, (int, float)) or low >= high:
        raise ValueError(f"needs numbers low < high; got low {low!r}, high {high!r}")
    log = bool(value.get("log", False))
    if log and low <= 0:
        raise ValueError("a log-scale range needs low > 0 (add `zero: true` to also try 0)")
    if kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
        raise ValueError("an int range needs whole-number bounds")
    zero = bool(value.get("zero", False))
    if zero:
        valid(0)
    return Dimension(path, kind, low, high, log, zero, when=when, unset_when=unset)

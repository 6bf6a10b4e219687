"""What every op shares: the layer fields, tensor types, and the contract each op fills in.

An op is one pydantic model, registered with `@register_op` (`rocketc.compiler.ops.registry`)
where it is defined, that knows in one place: its fields (the schema), its shape rule (`infer`),
its parameter count and cost (`num_params`, `macs`), the arguments of its template macros (how it
is built, called and tied in generated code: `init_args`, `call_args`, `tie_args`; the macros only
print them), whether and how it can reuse another layer's weights (`tie_paths`) or embedding
tables (`tables`, `borrows`, `same_tables`), and its line in the sharing diagram (`label`).
"""

from __future__ import annotations

import keyword
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator

Role = Literal["shared", "light", "booster"]
IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"

# Names the generated code uses itself; a layer or input with one of these would shadow it.
RESERVED = frozenset({"self", "torch", "nn", "F", "math", "x", "target", "inputs", "batch_size"})

# A layer becomes `self.<id>` of an nn.Module: an id naming one of nn.Module's own attributes
# (`train`, `to`, `training`, ...) would break the model. tests/test_codegen.py keeps this list
# in step with the installed torch. Ids starting with `_` are refused as a whole: private
# attributes, and `__name` would be mangled per class.
MODULE_ATTRS = frozenset(
    {
        "T_destination",
        "add_module",
        "apply",
        "bfloat16",
        "buffers",
        "call_super_init",
        "children",
        "compile",
        "cpu",
        "cuda",
        "double",
        "dump_patches",
        "eval",
        "extra_repr",
        "float",
        "forward",
        "get_buffer",
        "get_extra_state",
        "get_parameter",
        "get_submodule",
        "half",
        "ipu",
        "load_state_dict",
        "modules",
        "mtia",
        "named_buffers",
        "named_children",
        "named_modules",
        "named_parameters",
        "parameters",
        "register_backward_hook",
        "register_buffer",
        "register_forward_hook",
        "register_forward_pre_hook",
        "register_full_backward_hook",
        "register_full_backward_pre_hook",
        "register_load_state_dict_post_hook",
        "register_load_state_dict_pre_hook",
        "register_module",
        "register_parameter",
        "register_state_dict_post_hook",
        "register_state_dict_pre_hook",
        "requires_grad_",
        "set_extra_state",
        "set_submodule",
        "share_memory",
        "state_dict",
        "to",
        "to_empty",
        "train",
        "training",
        "type",
        "xpu",
        "zero_grad",
    }
)


class Nonlinearity(NamedTuple):
    """How generated code spells one activation function."""

    call: str  # in a forward: `F.relu(x)`
    module: str  # as a layer of an nn.Sequential


# The one list of activation functions: the `activation` op and `mlp` both take these names.
ACTIVATIONS = {
    "relu": Nonlinearity("F.relu", "nn.ReLU()"),
    "gelu": Nonlinearity("F.gelu", "nn.GELU()"),
    "tanh": Nonlinearity("torch.tanh", "nn.Tanh()"),
    "sigmoid": Nonlinearity("torch.sigmoid", "nn.Sigmoid()"),
}
ActivationFn = Literal[tuple(ACTIVATIONS)]  # the spec field type: one of the names above


class TensorType(NamedTuple):
    """A tensor's per-example shape (batch dimension left out) and element kind."""

    shape: tuple[int, ...]
    dtype: Literal["float", "index"] = "float"
    vocab: int = 0  # index tensors: ids lie in [0, vocab)
    # Index tensors: the input whose vocabulary the ids index, their own or the one they take
    # with `vocab_from:`. Ids of one space can share one embedding table.
    space: str = ""

    def __str__(self) -> str:
        dims = ", ".join(["B", *map(str, self.shape)])
        text = f"({dims},)" if not self.shape else f"({dims})"
        return text if self.dtype == "float" else f"{text} int64"


class Port(NamedTuple):
    """One input of a layer: where it comes from and what it carries."""

    name: str
    type: TensorType


class Table(NamedTuple):
    """One embedding table of a layer: where its weight is, and its size."""

    path: (
        str  # the weight's attribute path in the layer's module: `weight`, `tables["item"].weight`
    )
    vocab: int
    dim: int


def id_space(port: Port) -> str:
    """The id space of an index input: its own name, or the input it names in `vocab_from:`."""
    return port.type.space or port.name


class OpError(Exception):
    """A shape or tie rule was broken; the pass adds the layer's YAML position."""


def _name_or_names(schema: dict[str, Any]) -> None:
    """`in:` takes one name or a list (see `LayerBase._one_or_many`): the JSON Schema says so."""
    array = {key: schema.pop(key) for key in ("type", "items", "minItems") if key in schema}
    schema["anyOf"] = [{"type": "string"}, array]


class LayerBase(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    id: str = Field(pattern=IDENT, description="Python identifier naming this layer.")
    in_: list[str] = Field(
        alias="in",
        min_length=1,
        description="Input(s): names of spec inputs or earlier layers.",
        json_schema_extra=_name_or_names,
    )
    role: Role = Field(description="shared: both nets; light: served net only; booster: teacher.")
    tie: str | None = Field(
        default=None,
        description="Light layers only: reuse this booster layer's weights (own norm/state).",
    )

    # (min, max) number of inputs; max None = any.
    arity: ClassVar[tuple[int, int | None]] = (1, 1)
    # Stateful ops become an nn.Module attribute (macro `<op>`); stateless ones an expression in
    # forward() (macro `call_<op>`).
    stateful: ClassVar[bool] = True
    # Where the op's macros live: a template in rocketc's templates/ (the built-in ops), or the
    # path of a .jinja2 file, for an op defined outside rocketc.
    macros: ClassVar[str | Path] = "ops.jinja2"
    # Macros (in `macros`) printing classes or functions the generated model must define once.
    helpers: ClassVar[tuple[str, ...]] = ()
    # The diagram's header noun for several of these ("embeddings"); "<op> layers" if empty.
    plural: ClassVar[str] = ""

    @field_validator("in_", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if keyword.iskeyword(value) or value in RESERVED:
            raise ValueError(f"'{value}' is reserved in generated Python; pick another id")
        if value in MODULE_ATTRS or value.startswith("_"):
            raise ValueError(
                f"'{value}' would clash with torch.nn.Module's own attributes in "
                "generated Python; pick another id"
            )
        return value

    # --- what each op fills in -------------------------------------------------------------
    def infer(self, ins: list[Port]) -> TensorType:
        raise NotImplementedError

    def num_params(self, ins: list[Port]) -> int:
        return 0

    def init_args(self, ins: list[Port]) -> dict[str, Any]:
        """Arguments of the op's constructor macro `<op>` (stateful ops)."""
        return {}

    def call_args(self, ins: list[Port]) -> dict[str, Any]:
        """Arguments of the op's `call_<op>` macro besides the input names (stateless ops)."""
        return {}

    def tie_paths(
        self, ins: list[Port], other: LayerBase, other_ins: list[Port]
    ) -> list[tuple[str, int]]:
        """(attribute path relative to the layer module, element count) of each tied weight.

        Ops that can tie also have a `tie_<op>(light, booster, **tie_args)` macro printing the
        statements that make the light module (expression `light`) reuse exactly these weights.
        """
        raise OpError(f"op '{self.op}' cannot tie weights")  # type: ignore[attr-defined]

    def tie_args(self, ins: list[Port]) -> dict[str, Any]:
        """Arguments of the op's `tie_<op>` macro besides the two module expressions."""
        return {}

    def label(self, ins: list[Port]) -> str:
        """The op and the settings that make its size, for the diagram (`linear → 64`)."""
        return self.op  # type: ignore[attr-defined]

    def macs(self, ins: list[Port]) -> int | None:
        """Multiply-accumulates per example of the op's matrix products; None: not estimated.

        The convention of torch's flop counter (FLOPs / 2), which the run's report measures: a
        linear map from n to m features costs n * m per position it is applied at; element-wise
        work (activations, norms, sums, table lookups) costs nothing.
        """
        return None

    def widths(self) -> dict[str, int | list[int]]:
        """The fields that set how wide the op's output is (`units`, `out_channels`), by name.

        `rocketc shrink` scales them to derive cheaper light nets; an op without them (an
        activation, a pooling, a lookup) keeps its settings.
        """
        return {}

    def tables(self, ins: list[Port]) -> dict[str, Table]:
        """The embedding tables this layer looks ids up in, by id space (`TensorType.space`).

        Another layer may borrow one of them with `table:` (`borrows`).
        """
        return {}

    def borrows(self) -> str | None:
        """The layer whose embedding table this one uses instead of its own (`table:`), if any."""
        return None

    def same_tables(self, ins: list[Port]) -> list[tuple[str, str]]:
        """(reader, owner) weight paths inside this layer that are one table (`vocab_from`).

        Generated code makes the reader's weight the owner's right after building the layer.
        """
        return []

    def helpers_for(self, ins: list[Port]) -> tuple[str, ...]:
        """The macros of `helpers` this layer's code needs (an op may need fewer than all)."""
        return self.helpers

    def table_rows(self, ins: list[Port]) -> list[tuple[str, str, int]] | None:
        """An op embedding many inputs at once: (input, its sizes, its parameters) per input.

        The diagram then draws the layer as one table node, one row per input, like a folded
        fan of per-input layers (`rocketc.backends.viz_fold`). None: an ordinary box.
        """
        return None


def one_float(layer: LayerBase, ins: list[Port], min_dims: int = 1) -> TensorType:
    """The single float input of `layer`, checked to have at least `min_dims` feature dims."""
    (port,) = ins
    if port.type.dtype != "float":
        raise OpError(
            f"layer '{layer.id}' ({layer.op}) needs float features but '{port.name}' gives "  # type: ignore[attr-defined]
            f"category ids {port.type}; embed them first"
        )
    if len(port.type.shape) < min_dims:
        raise OpError(
            f"layer '{layer.id}' ({layer.op}) needs at least {min_dims} feature dim(s) but "  # type: ignore[attr-defined]
            f"'{port.name}' gives {port.type}"
        )
    return port.type


def image(layer: LayerBase, ins: list[Port]) -> tuple[int, int, int]:
    """The (C, H, W) of the single image input of `layer`."""
    t = one_float(layer, ins)
    if len(t.shape) != 3:
        raise OpError(
            f"layer '{layer.id}' ({layer.op}) expects images (B, C, H, W) but "  # type: ignore[attr-defined]
            f"'{ins[0].name}' gives {t}"
        )
    return t.shape  # type: ignore[return-value]


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def same_layout(layer: LayerBase, other: LayerBase, **pairs: tuple[Any, Any]) -> None:
    """Raise unless every named attribute pair matches (for ties)."""
    for what, (mine, theirs) in pairs.items():
        if mine != theirs:
            raise OpError(f"layer '{layer.id}' cannot tie '{other.id}': {what} {mine} != {theirs}")


def borrowed_tables(
    layer: LayerBase, ins: list[Port], owner: LayerBase, owner_ins: list[Port]
) -> list[tuple[str, str]]:
    """(weight path in `layer`, weight path in `owner`) of each table `layer` takes from `owner`
    with `table:`: the owner's table of the same id space, of the same size."""
    if owner.borrows() is not None:
        raise OpError(
            f"layer '{layer.id}' uses the table of '{owner.id}', which uses the table of "
            f"'{owner.borrows()}'; name that one"
        )
    theirs = owner.tables(owner_ins)
    pairs = []
    for space, mine in layer.tables(ins).items():
        table = theirs.get(space)
        if table is None:
            has = ", ".join(f"{s}'s" for s in theirs) or "no"
            raise OpError(
                f"layer '{layer.id}' looks up ids of {space} in the table of '{owner.id}', "
                f"which holds {has} ids only"
            )
        if table.dim != mine.dim:
            raise OpError(
                f"layer '{layer.id}' is {mine.dim} wide but the table of '{owner.id}' for ids "
                f"of {space} is {table.dim} wide"
            )
        pairs.append((mine.path, table.path))
    return pairs


def stride_text(stride: int | None) -> str:
    """`, stride 2` for a label; nothing for stride 1."""
    return f", stride {stride}" if stride not in (None, 1) else ""

"""Ops over category ids beyond one embedding per input: pooled lists and field groups.

`pooled_embedding` embeds a multi-valued field, a (B, L) tensor of ids padded with id 0, and pools
each row over its ids (mean, sum or max) to (B, dim). `field_embeddings` is the CTR shorthand:
one layer embeds a list of categorical inputs, each with its own table of one width, and
concatenates them (or stacks them, (B, fields, dim), for the layers that work across fields), so
a 33-field spec needs one layer instead of 34. Inputs of one id space (an input and those with
`vocab_from:` it, say item and a history of items) share one table. Both compile to a masked
gather and a reduction that torch.export and ONNX take as they are (nn.EmbeddingBag may not).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from rocketc.compiler.ops.base import (
    MODULE_ATTRS,
    LayerBase,
    OpError,
    Port,
    Table,
    TensorType,
    id_space,
    same_layout,
)
from rocketc.compiler.ops.registry import register_op

Pool = Literal["mean", "sum", "max"]

# nn.ModuleDict's own methods besides nn.Module's: a field so named cannot be a key of
# FieldEmbeddings' tables (tests/test_sparse_ops.py keeps this in step with torch).
MODULEDICT_ATTRS = MODULE_ATTRS | {"clear", "items", "keys", "pop", "update", "values"}


def _ids(layer: LayerBase, port: Port) -> TensorType:
    """`port`'s type, which must be category ids: one per example, or a list (L,)."""
    if port.type.dtype != "index":
        raise OpError(
            f"layer '{layer.id}' ({layer.op}) needs category ids but '{port.name}' gives "  # type: ignore[attr-defined]
            f"float features {port.type}"
        )
    if len(port.type.shape) > 1:
        raise OpError(
            f"layer '{layer.id}' ({layer.op}) takes one id or one list of ids per example but "  # type: ignore[attr-defined]
            f"'{port.name}' gives {port.type}"
        )
    return port.type


@register_op
class PooledEmbedding(LayerBase):
    """Lists of ids (B, L), 0 = padding, -> one pooled vector (B, dim) per example."""

    op: Literal["pooled_embedding"]
    dim: int = Field(ge=1)
    pool: Pool = Field(
        default="mean",
        description="How a list's vectors combine: mean, sum or max. Id 0 (padding, unseen "
        "values) is left out; an empty list gives zeros.",
    )

    helpers = ("pooled_embedding_class",)
    plural = "pooled embeddings"

    def infer(self, ins: list[Port]) -> TensorType:
        (port,) = ins
        t = _ids(self, port)
        if not t.shape:
            raise OpError(
                f"layer '{self.id}' (pooled_embedding) pools lists of ids but '{port.name}' "
                f"gives one id per example {t}; use op: embedding (or kind: categorical_list)"
            )
        return TensorType((self.dim,))

    def num_params(self, ins: list[Port]) -> int:
        return ins[0].type.vocab * self.dim

    def macs(self, ins: list[Port]) -> int:
        return 0  # a lookup and a reduction

    def init_args(self, ins: list[Port]) -> dict[str, Any]:
        return {"vocab": ins[0].type.vocab, "dim": self.dim, "pool": self.pool}

    def tables(self, ins: list[Port]) -> dict[str, Table]:
        t = ins[0].type
        return {id_space(ins[0]): Table("embedding.weight", t.vocab, self.dim)}

    def tie_paths(
        self, ins: list[Port], other: LayerBase, other_ins: list[Port]
    ) -> list[tuple[str, int]]:
        assert isinstance(other, PooledEmbedding)
        same_layout(
            self,
            other,
            vocab=(ins[0].type.vocab, other_ins[0].type.vocab),
            dim=(self.dim, other.dim),
        )
        return [("embedding.weight", ins[0].type.vocab * self.dim)]

    def label(self, ins: list[Port]) -> str:
        t = ins[0].type
        return f"pooled_embedding {t.vocab:,} × {self.dim}, {self.pool} of ≤ {t.shape[0]}"


@register_op
class FieldEmbeddings(LayerBase):
    """Each input embedded `dim` wide: concatenated (B, inputs * dim) or stacked (B, inputs, dim).

    Each id space gets one table: inputs of one space (`vocab_from`) look their ids up in the
    table of the first of them in `in:` (the space's own input, if it is there).
    """

    op: Literal["field_embeddings"]
    dim: int = Field(ge=1, description="Width of every field's embedding.")
    pool: Pool = Field(
        default="mean", description="How list inputs (categorical_list) pool their ids."
    )
    stack: bool = Field(
        default=False,
        description="Stack the fields, (B, fields, dim), for layers across fields (fm, "
        "self_attention), instead of concatenating them; flatten gives (B, fields * dim).",
    )

    arity = (1, None)
    helpers = ("field_embeddings_class", "pooled_embedding_class", "stacked_field_embeddings_class")
    plural = "field embeddings"

    def infer(self, ins: list[Port]) -> TensorType:
        for port in ins:  # validate made sure none is read twice
            _ids(self, port)
            if port.name in MODULEDICT_ATTRS:
                raise OpError(
                    f"layer '{self.id}' (field_embeddings): the input name '{port.name}' would "
                    "clash with nn.ModuleDict's own attributes in generated Python; rename it"
                )
        if self.stack:
            return TensorType((len(ins), self.dim))
        return TensorType((len(ins) * self.dim,))

    def num_params(self, ins: list[Port]) -> int:
        return sum(port.type.vocab * self.dim for port in self._owners(ins).values())

    def macs(self, ins: list[Port]) -> int:
        return 0  # lookups

    def init_args(self, ins: list[Port]) -> dict[str, Any]:
        fields = [(p.name, p.type.vocab, self.pool if p.type.shape else None) for p in ins]
        return {"fields": fields, "dim": self.dim, "stack": self.stack}

    def tables(self, ins: list[Port]) -> dict[str, Table]:
        return {
            space: Table(_weight(port), port.type.vocab, self.dim)
            for space, port in self._owners(ins).items()
        }

    def same_tables(self, ins: list[Port]) -> list[tuple[str, str]]:
        owners = self._owners(ins)
        return [
            (_weight(port), _weight(owners[id_space(port)]))
            for port in ins
            if owners[id_space(port)] is not port
        ]

    def helpers_for(self, ins: list[Port]) -> tuple[str, ...]:
        lists = any(port.type.shape for port in ins)
        return tuple(
            h
            for h in self.helpers
            if h == "field_embeddings_class"
            or (h == "pooled_embedding_class" and lists)
            or (h == "stacked_field_embeddings_class" and self.stack)
        )

    def table_rows(self, ins: list[Port]) -> list[tuple[str, str, int]]:
        owners = self._owners(ins)
        rows = []
        for port in ins:
            t = port.type
            pooled = f", {self.pool} of ≤ {t.shape[0]}" if t.shape else ""
            owner = owners[id_space(port)]
            if owner is port:
                rows.append((port.name, f"{t.vocab:,} × {self.dim}{pooled}", t.vocab * self.dim))
            else:
                rows.append((port.name, f"table of {owner.name}{pooled}", 0))
        return rows

    def label(self, ins: list[Port]) -> str:
        stacked = ", stacked" if self.stack else ""
        return f"field_embeddings {len(ins)} × {self.dim}{stacked}"

    @staticmethod
    def _owners(ins: list[Port]) -> dict[str, Port]:
        """Id space -> the input whose table it is: the space's own input if read, else the
        first input of the space."""
        owners: dict[str, Port] = {}
        for port in ins:
            space = id_space(port)
            if space not in owners or port.name == space:
                owners[space] = port
        return owners


def _weight(port: Port) -> str:
    """The attribute path, in a FieldEmbeddings module, of the table `port`'s ids index."""
    lookup = ".embedding" if port.type.shape else ""  # lists: PooledEmbedding's own table
    return f'tables["{port.name}"]{lookup}.weight'

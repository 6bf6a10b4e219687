"""Ops over category ids beyond one embedding per input: pooled lists and field groups.

`pooled_embedding` embeds a multi-valued field, a (B, L) tensor of ids padded with id 0, and pools
each row over its ids (mean, sum or max) to (B, dim). `field_embeddings` is the CTR shorthand:
one layer embeds a list of categorical inputs, each with its own table of one width, and
concatenates them, so a 33-field spec needs one layer instead of 34. Both compile to a masked
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
    TensorType,
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

    def init_args(self, ins: list[Port]) -> dict[str, Any]:
        return {"vocab": ins[0].type.vocab, "dim": self.dim, "pool": self.pool}

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
    """Each input its own embedding table, all `dim` wide, concatenated: (B, inputs * dim)."""

    op: Literal["field_embeddings"]
    dim: int = Field(ge=1, description="Width of every field's embedding.")
    pool: Pool = Field(
        default="mean", description="How list inputs (categorical_list) pool their ids."
    )

    arity = (1, None)
    helpers = ("field_embeddings_class", "pooled_embedding_class")
    plural = "field embeddings"

    def infer(self, ins: list[Port]) -> TensorType:
        for port in ins:  # validate made sure none is read twice
            _ids(self, port)
            if port.name in MODULEDICT_ATTRS:
                raise OpError(
                    f"layer '{self.id}' (field_embeddings): the input name '{port.name}' would "
                    "clash with nn.ModuleDict's own attributes in generated Python; rename it"
                )
        return TensorType((len(ins) * self.dim,))

    def num_params(self, ins: list[Port]) -> int:
        return sum(port.type.vocab * self.dim for port in ins)

    def init_args(self, ins: list[Port]) -> dict[str, Any]:
        fields = [(p.name, p.type.vocab, self.pool if p.type.shape else None) for p in ins]
        return {"fields": fields, "dim": self.dim}

    def helpers_for(self, ins: list[Port]) -> tuple[str, ...]:
        lists = any(port.type.shape for port in ins)
        return self.helpers if lists else ("field_embeddings_class",)

    def table_rows(self, ins: list[Port]) -> list[tuple[str, str, int]]:
        rows = []
        for port in ins:
            t = port.type
            pooled = f", {self.pool} of ≤ {t.shape[0]}" if t.shape else ""
            rows.append((port.name, f"{t.vocab:,} × {self.dim}{pooled}", t.vocab * self.dim))
        return rows

    def label(self, ins: list[Port]) -> str:
        return f"field_embeddings {len(ins)} × {self.dim}"

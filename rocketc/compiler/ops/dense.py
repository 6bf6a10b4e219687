"""Fully connected ops: linear, mlp, embedding (its own table, or another layer's: `table:`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from rocketc.compiler.ops.base import (
    ACTIVATIONS,
    IDENT,
    ActivationFn,
    LayerBase,
    OpError,
    Port,
    Table,
    TensorType,
    id_space,
    one_float,
    same_layout,
)
from rocketc.compiler.ops.registry import register_op


@register_op
class Linear(LayerBase):
    """y = x W^T + b over the last feature dim."""

    op: Literal["linear"]
    out_features: int = Field(ge=1)
    bias: bool = True

    def infer(self, ins: list[Port]) -> TensorType:
        t = one_float(self, ins)
        if len(t.shape) > 2:
            # Legal in torch (it maps the last dim), but on a (C, H, W) map it is a missed flatten.
            raise OpError(
                f"layer '{self.id}' (linear) expects (B, features) or (B, L, features) "
                f"but '{ins[0].name}' gives {t}; flatten it first"
            )
        return TensorType(t.shape[:-1] + (self.out_features,))

    def num_params(self, ins: list[Port]) -> int:
        fan_in = ins[0].type.shape[-1]
        return fan_in * self.out_features + (self.out_features if self.bias else 0)

    def init_args(self, ins: list[Port]) -> dict[str, Any]:
        return {
            "in_features": ins[0].type.shape[-1],
            "out_features": self.out_features,
            "bias": self.bias,
        }

    def tie_paths(
        self, ins: list[Port], other: LayerBase, other_ins: list[Port]
    ) -> list[tuple[str, int]]:
        assert isinstance(other, Linear)
        same_layout(
            self,
            other,
            in_features=(ins[0].type.shape[-1], other_ins[0].type.shape[-1]),
            out_features=(self.out_features, other.out_features),
            bias=(self.bias, other.bias),
        )
        fan_in = ins[0].type.shape[-1]
        tied = [("weight", fan_in * self.out_features)]
        return tied + [("bias", self.out_features)] if self.bias else tied

    def macs(self, ins: list[Port]) -> int:
        positions = 1
        for d in ins[0].type.shape[:-1]:  # (B, L, features): the map runs at each of L
            positions *= d
        return positions * ins[0].type.shape[-1] * self.out_features

    def tie_args(self, ins: list[Port]) -> dict[str, Any]:
        return {"bias": self.bias}

    def widths(self) -> dict[str, int | list[int]]:
        return {"out_features": self.out_features}

    def label(self, ins: list[Port]) -> str:
        return f"linear → {self.out_features}"


@register_op
class Mlp(LayerBase):
    """A stack of Linear [→ norm] → activation [→ dropout] blocks, one per entry of `units`."""

    op: Literal["mlp"]
    units: list[int] = Field(min_length=1, description="Width of each hidden layer, in order.")
    activation: ActivationFn = "relu"
    norm: Literal["none", "batchnorm", "layernorm"] = "none"
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)

    plural = "MLPs"

    def infer(self, ins: list[Port]) -> TensorType:
        t = one_float(self, ins)
        if len(t.shape) != 1:
            raise OpError(
                f"layer '{self.id}' (mlp) expects (B, features) but "
                f"'{ins[0].name}' gives {t}; flatten it first"
            )
        if any(u < 1 for u in self.units):
            raise OpError(f"layer '{self.id}' (mlp) units must be positive, got {self.units}")
        return TensorType((self.units[-1],))

    def num_params(self, ins: list[Port]) -> int:
        total, fan_in = 0, ins[0].type.shape[-1]
        for width in self.units:
            total += fan_in * width + width + (2 * width if self.norm != "none" else 0)
            fan_in = width
        return total

    def macs(self, ins: list[Port]) -> int:
        widths = [ins[0].type.shape[-1], *self.units]
        return sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))

    def widths(self) -> dict[str, int | list[int]]:
        return {"units": list(self.units)}

    def init_args(self, ins: list[Port]) -> dict[str, Any]:
        widths = [ins[0].type.shape[-1], *self.units]
        pairs = list(zip(widths[:-1], widths[1:], strict=True))
        return {
            "pairs": pairs,
            "activation": ACTIVATIONS[self.activation].module,
            "norm": self.norm,
            "dropout": self.dropout,
        }

    def label(self, ins: list[Port]) -> str:
        dropout = f", dropout {self.dropout:g}" if self.dropout else ""
        return "mlp " + " → ".join(map(str, self.units)) + dropout


@register_op
class Embedding(LayerBase):
    """Category ids → dense vectors: (B,) → (B, dim), or (B, L) → (B, L, dim).

    A list input gives one vector per position, padding (id 0) included: the sequence that
    `target_attention` pools (its ids mask the padding). With `table:` the layer looks its ids up
    in another layer's table (the shared item table of a history and its target) and holds no
    weights of its own.
    """

    op: Literal["embedding"]
    dim: int = Field(ge=1)
    table: str | None = Field(
        default=None,
        pattern=IDENT,
        description="Look the ids up in this layer's table for their id space (an embedding or "
        "field_embeddings layer of the same dim, shared or of this layer's role) instead of a "
        "table of its own.",
    )

    plural = "embeddings"

    def infer(self, ins: list[Port]) -> TensorType:
        (port,) = ins
        if port.type.dtype != "index":
            raise OpError(
                f"layer '{self.id}' (embedding) needs category ids but "
                f"'{port.name}' gives float features {port.type}"
            )
        return TensorType(port.type.shape + (self.dim,))

    def num_params(self, ins: list[Port]) -> int:
        return 0 if self.table else ins[0].type.vocab * self.dim

    def macs(self, ins: list[Port]) -> int:
        return 0  # a lookup

    def init_args(self, ins: list[Port]) -> dict[str, Any]:
        return {"vocab": ins[0].type.vocab, "dim": self.dim, "table": self.table}

    def tables(self, ins: list[Port]) -> dict[str, Table]:
        t = ins[0].type
        return {id_space(ins[0]): Table("weight", t.vocab, self.dim)}

    def borrows(self) -> str | None:
        return self.table

    def tie_paths(
        self, ins: list[Port], other: LayerBase, other_ins: list[Port]
    ) -> list[tuple[str, int]]:
        assert isinstance(other, Embedding)
        for layer in (self, other):
            if layer.table:
                raise OpError(
                    f"layer '{self.id}' cannot tie '{other.id}': '{layer.id}' uses the table of "
                    f"'{layer.table}'; point table: at the same layer instead"
                )
        same_layout(
            self,
            other,
            vocab=(ins[0].type.vocab, other_ins[0].type.vocab),
            dim=(self.dim, other.dim),
        )
        return [("weight", ins[0].type.vocab * self.dim)]

    def label(self, ins: list[Port]) -> str:
        t = ins[0].type
        of = f", sequence of ≤ {t.shape[0]}" if t.shape else ""
        table = f", table of {self.table}" if self.table else ""
        return f"embedding {t.vocab:,} × {self.dim}{of}{table}"

"""Feature-interaction ops of CTR models: fm (DeepFM), cross (DCN-v2), self_attention (AutoInt),
and the layernorm that goes with them.

`fm` and `self_attention` work across fields: they read a stacked `field_embeddings` layer,
(B, fields, dim). `cross` reads one flat vector (B, d), e.g. the concatenated fields and dense
features. The MACs they report count their matrix products, as torch's flop counter does.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from rocketc.compiler.ops.base import LayerBase, OpError, Port, TensorType, one_float
from rocketc.compiler.ops.registry import register_op


def stacked_fields(layer: LayerBase, ins: list[Port]) -> tuple[int, int]:
    """(fields, dim) of the single (B, fields, dim) input of an op working across fields."""
    t = one_float(layer, ins)
    if len(t.shape) != 2:
        raise OpError(
            f"layer '{layer.id}' ({layer.op}) works across fields and expects (B, fields, dim) "  # type: ignore[attr-defined]
            f"but '{ins[0].name}' gives {t}; use field_embeddings with stack: true"
        )
    return t.shape  # type: ignore[return-value]


@register_op
class FactorizationMachine(LayerBase):
    """FM's pairwise interactions (Rendle, 2010) of stacked fields: (B, F, D) → (B, 1) or (B, D).

    Σ_{i<j} ⟨v_i, v_j⟩, computed as ½((Σ v)² − Σ v²): O(F·D) rather than O(F²·D). No weights:
    the field embeddings below it are the factors.
    """

    op: Literal["fm"]
    reduce: Literal["sum", "none"] = Field(
        default="sum",
        description="sum: the FM term, (B, 1), as DeepFM adds it to the logit. none: its D "
        "per-dimension parts, (B, D), for layers above (NFM's bi-interaction pooling).",
    )

    stateful = False
    helpers = ("fm_function",)

    def infer(self, ins: list[Port]) -> TensorType:
        _, dim = stacked_fields(self, ins)
        return TensorType((1,) if self.reduce == "sum" else (dim,))

    def macs(self, ins: list[Port]) -> int:
        return 0  # element-wise squares and sums

    def call_args(self, ins: list[Port]) -> dict[str, Any]:
        return {"reduce": self.reduce}

    def label(self, ins: list[Port]) -> str:
        fields, _ = ins[0].type.shape
        pairs = fields * (fields - 1) // 2
        what = "summed" if self.reduce == "sum" else "per dim"
        return f"fm, {pairs} pair{'s' if pairs != 1 else ''} {what}"


@register_op
class Cross(LayerBase):
    """DCN-v2's cross network (Wang et al., 2021): `layers` feature crosses, (B, d) → (B, d).

    x_{l+1} = x_0 ⊙ (W_l x_l + b_l) + x_l: layer l makes crosses up to degree l + 1. With `rank`
    r, W_l = U_l V_lᵀ: 2·d·r weights instead of d².
    """

    op: Literal["cross"]
    layers: int = Field(ge=1, description="Cross layers, each one degree of crossing more.")
    rank: int | None = Field(
        default=None,
        ge=1,
        description="Low-rank W = U Vᵀ of this rank, for wide inputs; unset: a full d × d W.",
    )

    helpers = ("cross_network_class",)
    plural = "cross networks"

    def infer(self, ins: list[Port]) -> TensorType:
        t = one_float(self, ins)
        if len(t.shape) != 1:
            raise OpError(
                f"layer '{self.id}' (cross) expects (B, features) but '{ins[0].name}' gives {t}; "
                "flatten it first"
            )
        return t

    def _weights(self, d: int) -> int:
        """Weights of one layer's W (no bias)."""
        return d * d if self.rank is None else 2 * d * self.rank

    def num_params(self, ins: list[Port]) -> int:
        d = ins[0].type.shape[0]
        return self.layers * (self._weights(d) + d)

    def macs(self, ins: list[Port]) -> int:
        return self.layers * self._weights(ins[0].type.shape[0])

    def init_args(self, ins: list[Port]) -> dict[str, Any]:
        return {"features": ins[0].type.shape[0], "layers": self.layers, "rank": self.rank}

    def label(self, ins: list[Port]) -> str:
        rank = f", rank {self.rank}" if self.rank is not None else ""
        return f"cross × {self.layers}{rank}"


@register_op
class SelfAttention(LayerBase):
    """AutoInt's interacting layers (Song et al., 2019): each field attends to every field.

    (B, F, D) → (B, F, heads·dim). Per layer and head, softmax(Q Kᵀ / √dim) V over the fields;
    the heads side by side, plus a linear projection of the layer's input (the residual), then
    ReLU. Q, K, V and the projection have no bias, as in the paper.
    """

    op: Literal["self_attention"]
    heads: int = Field(default=2, ge=1, description="Attention heads per layer.")
    dim: int = Field(ge=1, description="Width of each head: the output is heads * dim wide.")
    layers: int = Field(default=1, ge=1, description="Interacting layers, one after the other.")
    residual: bool = Field(
        default=True, description="Add a projection of each layer's input to its output."
    )

    helpers = ("interacting_layer_class",)
    plural = "self-attention layers"

    def infer(self, ins: list[Port]) -> TensorType:
        fields, _ = stacked_fields(self, ins)
        return TensorType((fields, self.heads * self.dim))

    def _widths(self, ins: list[Port]) -> list[int]:
        """The input width of each layer: the fields' dim, then heads * dim."""
        return [ins[0].type.shape[1]] + [self.heads * self.dim] * (self.layers - 1)

    def num_params(self, ins: list[Port]) -> int:
        maps = 3 + self.residual  # query, key, value (+ the residual projection)
        return sum(maps * width * self.heads * self.dim for width in self._widths(ins))

    def macs(self, ins: list[Port]) -> int:
        fields = ins[0].type.shape[0]
        out = self.heads * self.dim
        maps = 3 + self.residual
        # The projections at every field, then Q Kᵀ and the weighted sum of V for every head.
        attend = 2 * self.heads * fields * fields * self.dim
        return sum(fields * maps * width * out + attend for width in self._widths(ins))

    def init_args(self, ins: list[Port]) -> dict[str, Any]:
        return {
            "widths": self._widths(ins),
            "heads": self.heads,
            "dim": self.dim,
            "residual": self.residual,
        }

    def label(self, ins: list[Port]) -> str:
        layers = f" × {self.layers}" if self.layers > 1 else ""
        return f"self_attention{layers}, {self.heads} heads × {self.dim}"


@register_op
class LayerNorm(LayerBase):
    """Layer normalisation over the last dim (Ba et al., 2016), with a learned scale and shift."""

    op: Literal["layernorm"]

    def infer(self, ins: list[Port]) -> TensorType:
        return one_float(self, ins)

    def num_params(self, ins: list[Port]) -> int:
        return 2 * ins[0].type.shape[-1]

    def macs(self, ins: list[Port]) -> int:
        return 0  # element-wise

    def init_args(self, ins: list[Port]) -> dict[str, Any]:
        return {"features": ins[0].type.shape[-1]}

    def label(self, ins: list[Port]) -> str:
        return f"layernorm over {ins[0].type.shape[-1]}"

"""Ops over behaviour sequences: DIN's target attention.

A behaviour sequence is an `embedding` of a `categorical_list` input, (B, L, D), one vector per
position, padding (id 0) included. `target_attention` pools it against the candidate, (B, D), and
reads the list's ids to leave the padding out. The history and the candidate are best embedded in
one table: the list takes `vocab_from: item`, and the layers embedding it use `table:` (or one
`field_embeddings` layer reads both), so that a clicked item and the same item as candidate are
one vector.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from rocketc.compiler.ops.base import (
    ACTIVATIONS,
    ActivationFn,
    LayerBase,
    OpError,
    Port,
    TensorType,
)
from rocketc.compiler.ops.registry import register_op


@register_op
class TargetAttention(LayerBase):
    """DIN's activation unit (Zhou et al., 2018): a behaviour sequence pooled by its relevance
    to the target. `in: [sequence, target, ids]` → (B, D).

    The sequence (B, L, D), the target (B, D) and the sequence's ids (B, L), whose zeros are
    padding. An MLP over [q, k, q − k, q ⊙ k] scores each behaviour k against the target q; the
    behaviours are summed with those scores (no softmax, as in the paper), padding left out.
    """

    op: Literal["target_attention"]
    units: list[Annotated[int, Field(ge=1)]] = Field(
        default=[80, 40],
        min_length=1,
        description="Hidden widths of the MLP that scores each behaviour (then one output).",
    )
    activation: ActivationFn = "relu"

    arity = (3, 3)
    helpers = ("target_attention_class",)
    plural = "target attentions"

    def infer(self, ins: list[Port]) -> TensorType:
        sequence, target, ids = ins
        where = f"layer '{self.id}' (target_attention) takes [sequence, target, ids]"
        s, t, i = sequence.type, target.type, ids.type
        if s.dtype != "float" or len(s.shape) != 2:
            raise OpError(
                f"{where}: the sequence (B, L, dim) first, but '{sequence.name}' gives {s}; "
                "embed a categorical_list input with op: embedding"
            )
        if t.dtype != "float" or t.shape != s.shape[1:]:
            raise OpError(
                f"{where}: a target (B, {s.shape[1]}) as wide as the sequence second, but "
                f"'{target.name}' gives {t}"
            )
        if i.dtype != "index" or i.shape != s.shape[:1]:
            raise OpError(
                f"{where}: the sequence's ids (B, {s.shape[0]}) third, to mask its padding "
                f"(id 0), but '{ids.name}' gives {i}"
            )
        return t

    def _widths(self, ins: list[Port]) -> list[int]:
        """The scoring MLP: [q, k, q - k, q * k] in, hidden units, one score out."""
        return [4 * ins[1].type.shape[0], *self.units, 1]

    def num_params(self, ins: list[Port]) -> int:
        widths = self._widths(ins)
        return sum(a * b + b for a, b in zip(widths[:-1], widths[1:], strict=True))

    def macs(self, ins: list[Port]) -> int:
        widths = self._widths(ins)
        per_position = sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))
        return ins[0].type.shape[0] * per_position  # the MLP runs at every position

    def init_args(self, ins: list[Port]) -> dict[str, Any]:
        widths = self._widths(ins)
        return {
            "pairs": list(zip(widths[:-1], widths[1:], strict=True)),
            "activation": ACTIVATIONS[self.activation].module,
        }

    def label(self, ins: list[Port]) -> str:
        length = ins[0].type.shape[0]
        units = " → ".join(map(str, self.units))
        return f"target_attention over ≤ {length}, unit {units} → 1"

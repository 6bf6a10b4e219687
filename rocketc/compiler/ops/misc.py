"""Ops without weights or with per-element behaviour: activation, dropout, flatten, add, concat.

None multiplies matrices, so each reports 0 MACs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from rocketc.compiler.ops.base import (
    ACTIVATIONS,
    ActivationFn,
    LayerBase,
    OpError,
    Port,
    TensorType,
    one_float,
)
from rocketc.compiler.ops.registry import register_op


@register_op
class Activation(LayerBase):
    """An element-wise nonlinearity."""

    op: Literal["activation"]
    fn: ActivationFn

    stateful = False

    def infer(self, ins: list[Port]) -> TensorType:
        return one_float(self, ins)

    def macs(self, ins: list[Port]) -> int:
        return 0

    def call_args(self, ins: list[Port]) -> dict[str, Any]:
        return {"fn": ACTIVATIONS[self.fn].call}

    def label(self, ins: list[Port]) -> str:
        return self.fn


@register_op
class Dropout(LayerBase):
    """Zeroes features with probability p during training; identity at evaluation."""

    op: Literal["dropout"]
    p: float = Field(ge=0.0, lt=1.0)

    def infer(self, ins: list[Port]) -> TensorType:
        return one_float(self, ins)

    def macs(self, ins: list[Port]) -> int:
        return 0

    def init_args(self, ins: list[Port]) -> dict[str, Any]:
        return {"p": self.p}

    def label(self, ins: list[Port]) -> str:
        return f"dropout {self.p:g}"


@register_op
class Flatten(LayerBase):
    """(B, d1, d2, ...) → (B, d1*d2*...)."""

    op: Literal["flatten"]

    stateful = False

    def infer(self, ins: list[Port]) -> TensorType:
        t = one_float(self, ins)
        size = 1
        for d in t.shape:
            size *= d
        return TensorType((size,))

    def macs(self, ins: list[Port]) -> int:
        return 0


@register_op
class Add(LayerBase):
    """Element-wise sum of inputs of identical shape (residual connections)."""

    op: Literal["add"]

    arity = (2, None)
    stateful = False

    def infer(self, ins: list[Port]) -> TensorType:
        first = ins[0]
        for port in ins:
            one_float(self, [port])
            if port.type.shape != first.type.shape:
                raise OpError(
                    f"layer '{self.id}' (add) needs equal shapes but "
                    f"'{first.name}' gives {first.type} and '{port.name}' gives "
                    f"{port.type}"
                )
        return first.type

    def macs(self, ins: list[Port]) -> int:
        return 0


@register_op
class Concat(LayerBase):
    """Joins inputs along the first feature dim (channels for maps, features for vectors)."""

    op: Literal["concat"]

    arity = (2, None)
    stateful = False

    def infer(self, ins: list[Port]) -> TensorType:
        first = ins[0]
        total = 0
        for port in ins:
            one_float(self, [port])
            if len(port.type.shape) != len(first.type.shape) or (
                port.type.shape[1:] != first.type.shape[1:]
            ):
                raise OpError(
                    f"layer '{self.id}' (concat) needs inputs that differ only in "
                    f"their first feature dim but '{first.name}' gives {first.type} "
                    f"and '{port.name}' gives {port.type}"
                )
            total += port.type.shape[0]
        return TensorType((total, *first.type.shape[1:]))

    def macs(self, ins: list[Port]) -> int:
        return 0

"""The op catalogue: a pydantic union discriminated on `op`.

Adding an op: write its model (shape rule, parameter count, macro arguments) in one of these
modules, list it in `OPS`, and add its macro to `templates/ops.jinja2`.
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from rocketc.compiler.ops.base import LayerBase, OpError, Port, TensorType
from rocketc.compiler.ops.conv import Batchnorm, Conv2d, Pool, WrnGroup
from rocketc.compiler.ops.dense import Embedding, Linear, Mlp
from rocketc.compiler.ops.misc import Activation, Add, Concat, Dropout, Flatten

OPS = (
    Linear,
    Mlp,
    Embedding,
    Conv2d,
    Batchnorm,
    Pool,
    WrnGroup,
    Activation,
    Dropout,
    Flatten,
    Add,
    Concat,
)

Layer = Annotated[Union[OPS], Field(discriminator="op")]  # noqa: UP007 (a tuple needs Union)

__all__ = ["OPS", "Layer", "LayerBase", "OpError", "Port", "TensorType"]

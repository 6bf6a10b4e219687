"""The op registry: `@register_op` where an op is defined, and the `Layer` union built from it.

A spec's `layers:` entries validate as `Layer`, a pydantic union discriminated on `op` whose
members are exactly the registered ops, in registration order (which is the order error messages
and the JSON Schema list them in). An op registered after the spec schema was built (one defined
in a plugin or a test module) joins the union: the schema's owner asks `on_new_op` to be told.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar, Union, get_args

from pydantic import Field, GetCoreSchemaHandler
from pydantic_core import CoreSchema

from rocketc.compiler.ops.base import LayerBase

Op = TypeVar("Op", bound=type[LayerBase])

_OPS: dict[str, type[LayerBase]] = {}
_LISTENERS: list[Callable[[], None]] = []


def register_op(cls: Op) -> Op:
    """Class decorator: add an op to the catalogue under the name its `op: Literal[...]` gives."""
    annotation = cls.model_fields["op"].annotation if "op" in cls.model_fields else None
    names = get_args(annotation)
    if len(names) != 1 or not isinstance(names[0], str):
        raise TypeError(f"{cls.__name__} needs one field `op: Literal['<name>']` to register")
    (name,) = names
    if _OPS.get(name, cls) is not cls:
        raise ValueError(f"op '{name}' is already registered by {_OPS[name].__qualname__}")
    _OPS[name] = cls
    for listener in _LISTENERS:
        listener()
    return cls


def registered_ops() -> dict[str, type[LayerBase]]:
    """Op name -> its model class, in registration order."""
    return dict(_OPS)


def on_new_op(listener: Callable[[], None]) -> None:
    """Call `listener` after every later registration (to rebuild a schema that holds `Layer`)."""
    _LISTENERS.append(listener)


class _AnyRegisteredOp:
    """Pydantic metadata: validate as whichever registered op the `op` field names."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        union = Union[tuple(_OPS.values())]  # noqa: UP007 (a runtime tuple needs Union)
        return handler.generate_schema(Annotated[union, Field(discriminator="op")])

    def __repr__(self) -> str:  # shows in pydantic's field reprs
        return "AnyRegisteredOp"


# A spec's layer entry: statically a LayerBase, validated as one registered op.
Layer = Annotated[LayerBase, _AnyRegisteredOp()]

"""The op catalogue: every module in this package registers its ops with `@register_op`.

Adding an op: write its model (fields, shape rule, parameter count, macro arguments, diagram
label; see `base.LayerBase`) in any module here, decorated with `@register_op`, and its macros in
`templates/ops.jinja2`. Nothing else lists ops: the spec's layer union (`Layer`), the diagram and
the tests all read the registry. Modules are imported in name order, so the catalogue's order
(error messages, JSON Schema) is stable.
"""

from __future__ import annotations

import importlib
import pkgutil

from rocketc.compiler.ops.base import LayerBase, OpError, Port, TensorType
from rocketc.compiler.ops.registry import Layer, on_new_op, register_op, registered_ops

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")

__all__ = [
    "Layer",
    "LayerBase",
    "OpError",
    "Port",
    "TensorType",
    "on_new_op",
    "register_op",
    "registered_ops",
]

"""The loss-term registry: every term the twins train on, each defined once, by name.

A kind of term is one class decorated with `@loss_term`. It says, in one place: the term's name
(the key of the graph node `loss:<name>`, of the generated `LOSS_WEIGHTS` and `compute_loss`,
of the audit's rows and of the diagram), where its weight and warm-up come from in the spec and
the YAML path that positions its errors, which tensors it reads (a head's logits or a layer's
features, on the light or the booster side), its expression in the generated code, the parameter
groups the gradient-flow audit expects it to reach under each `gradient_block`, and its label in
the diagram. The graph, the passes, codegen, the audit and the diagram all read this module;
none of them lists terms. Adding a term is one class (in `logits.py`, `features.py` or a new
module imported below) plus its tests.

The names are `light`, `booster` (each net's label loss), `hint`, `kd` and `feature_hint_<i>`
(the i-th entry of `loss.feature_hints`). A term whose weight is 0 is not computed at all.
"""

# Each module registers its terms when imported; this order is the order of the terms.
from rocketc.compiler.losses import logits  # noqa: F401

# isort: split
from rocketc.compiler.losses import features  # noqa: F401

# isort: split
from rocketc.compiler.losses.base import (
    GROUPS,
    LOSS_KINDS,
    Adapter,
    LossKind,
    Read,
    Term,
    TermError,
    Tunable,
    dotted,
    graph_terms,
    loss_node,
    loss_term,
    spec_terms,
    teaching_off,
)

__all__ = [
    "GROUPS",
    "LOSS_KINDS",
    "Adapter",
    "LossKind",
    "Read",
    "Term",
    "TermError",
    "Tunable",
    "dotted",
    "graph_terms",
    "loss_node",
    "loss_term",
    "spec_terms",
    "teaching_off",
]

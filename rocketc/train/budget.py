"""Refuse a model too big for this machine before allocating it, naming the layer to shrink.

`rocketc check` accepts `out_features: 1000000000000` (a spec may be meant for a bigger
machine); building it here would end in an allocator traceback. The estimate comes from the
compiled graph alone: each parameter costs 4 bytes four times over (weights, gradients, Adam's
two moments) and each value a layer outputs 4 bytes twice (kept for the backward pass), for one
batch. More than this machine's physical memory is refused; less may still fail to allocate,
which `allocating` turns into the same kind of message.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator

from rocketc.compiler import Compiled
from rocketc.errors import Diagnostic, TrainError

PARAM_BYTES = 4 * 4  # float32 weights, gradients, Adam's exp_avg and exp_avg_sq
VALUE_BYTES = 4 * 2  # float32 output, and the copy autograd keeps for backward
HUGE = 1024**6 * 10**6  # bytes past any machine (and past what a float prints as a size)


def memory_bytes() -> int | None:
    """This machine's physical memory, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(compiled: Compiled, batch_size: int, available: int | None = None) -> None:
    """Raise TrainError, at the costliest layer or input, if training cannot fit in memory."""
    available = available if available is not None else memory_bytes()
    if available is None:
        return
    g = compiled.graph
    costs: dict[str, int] = {}
    for n, attrs in g.nodes(data=True):
        if attrs["kind"] not in ("layer", "input"):
            continue
        values = math.prod(attrs["type"].shape) if attrs.get("type") is not None else 0
        costs[n] = attrs.get("params", 0) * PARAM_BYTES + values * batch_size * VALUE_BYTES
    need = sum(costs.values())
    if need <= available:
        return
    worst = max(costs, key=costs.__getitem__)
    attrs = g.nodes[worst]
    where = ("layers" if attrs["kind"] == "layer" else "inputs", attrs["index"])
    file, pos = compiled.source.source_map.where(where)
    what = (
        f"layer '{worst}' alone holds {_count(attrs.get('params', 0))} parameters"
        if attrs.get("params", 0) * PARAM_BYTES >= costs[worst] // 2
        else f"'{worst}' gives {_count(math.prod(attrs['type'].shape))} values per example"
    )
    needs = "more memory than any machine has" if need >= HUGE else f"about {_size(need)} of memory"
    message = (
        f"training this model needs {needs} (batch {batch_size:,}), more than this machine's "
        f"{_size(available)}: {what}; make it smaller"
    )
    raise TrainError([Diagnostic(message, file, pos)])


@contextlib.contextmanager
def allocating(compiled: Compiled) -> Iterator[None]:
    """Turn an allocator failure in the block (building the model) into one line to act on."""
    try:
        yield
    except (RuntimeError, MemoryError) as exc:
        text = str(exc).lower()
        if not (isinstance(exc, MemoryError) or "allocate" in text or "out of memory" in text):
            raise
        total = compiled.param_counts()["total"]
        message = (
            f"cannot allocate the model ({total:,} parameters, {_size(total * 4)} of weights, "
            f"{type(exc).__name__}); make its layers smaller or the batch size lower"
        )
        raise TrainError([Diagnostic(message, compiled.file)]) from None


def _count(n: int) -> str:
    return f"{n:,}" if n < 10**18 else f"about 10^{len(str(n)) - 1}"


def _size(n: float) -> str:
    n = float(n)
    unit = "B"
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            break
        n /= 1024
    return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"

"""What a light net costs to serve, measured as the run's report measures it: parameters,
multiply-accumulates per example (torch's flop counter) and onnxruntime latency at 1 and 100
candidates, single thread, on its exported ONNX graph. The weights do not change the cost, so an
untrained net is measured as well as a trained one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rocketc.data import Split
from rocketc.train.report import export_onnx, macs, ort_latency


def serving_cost(net: torch.nn.Module, split: Split) -> dict[str, Any]:
    """Parameters, MACs per example and onnxruntime latency (ms) of `net` on `split`'s rows."""
    net = net.eval()
    sample = split.head(256)
    names = list(sample.inputs)
    n = max(2, min(len(sample), 256))  # a batch of 1 would fix the exported batch dim
    rows = tuple(torch.from_numpy(np.ascontiguousarray(a[:n])) for a in sample.inputs.values())
    if len(rows[0]) < n:  # a one-row split: repeat it
        rows = tuple(r.repeat(n, *([1] * (r.dim() - 1)))[:n] for r in rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "light.onnx"
        export_onnx(net, rows, names, path)
        latency = ort_latency(path, sample)
    return {
        "params": sum(p.numel() for p in net.parameters()),
        "macs": macs(net, sample),
        "latency_ms": latency,
    }

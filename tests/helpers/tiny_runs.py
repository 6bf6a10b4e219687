"""A tiny spec on a tiny .npz for tests that train many times (a run takes about half a second).

120 rows of 4 features, 3 classes; a shared linear layer, a light head and a 16-wide booster;
2 epochs of Adam. `write_tiny` writes the archive and the spec (absolute data path) into a
directory and returns the spec's path; keyword arguments change the data or the spec.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SPEC = """\
version: 1
name: tiny
task: multiclass
num_classes: 3
inputs:
  - {{name: feat, kind: dense, shape: [4]}}
layers:
  - {{id: s, op: linear, in: feat, out_features: 8, role: shared}}
  - {{id: light_logits, op: linear, in: s, out_features: 3, role: light}}
  - {{id: b, op: linear, in: s, out_features: {booster_width}, role: booster}}
  - {{id: booster_logits, op: linear, in: b, out_features: 3, role: booster}}
heads: {{light: light_logits, booster: booster_logits}}
train: {{epochs: 2, batch_size: 16, optimizer: {{name: adam, lr: 0.01}}}}
data: {{source: npz, path: {path}, val_fraction: {val_fraction}}}
"""


def write_tiny(
    directory: Path,
    *,
    rows: int = 120,
    val_fraction: float = 0.1,
    booster_width: int = 16,
    data_seed: int = 0,
    labels: np.ndarray | None = None,
    name: str = "tiny",
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(data_seed)
    x = rng.normal(size=(rows, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0) if labels is None else labels
    archive = directory / f"{name}.npz"
    np.savez(archive, feat=x, label=y)
    spec = directory / f"{name}.yaml"
    spec.write_text(
        SPEC.format(path=archive, val_fraction=val_fraction, booster_width=booster_width),
        encoding="utf-8",
    )
    return spec

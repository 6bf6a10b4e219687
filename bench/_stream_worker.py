"""One streamed epoch for bench/scale.py, in a process of its own so its peak RSS is its own.

`python -m bench._stream_worker TABLE.parquet OUT.json` loads TABLE (8 categorical columns c0-c7,
2 dense d0-d1, label y; written by `scale.synthetic_table`) with `data.stream: true`, which fits
the preprocessing in one pass and keeps the 1% validation and 1% test rows' targets, then reads
one epoch of training batches. OUT.json: rows, seconds of the fit pass and of the epoch, and the
process's peak resident memory (ru_maxrss), which includes importing torch.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

SPEC = """\
version: 1
name: streamed_table
task: binary
inputs:
@INPUTS@
  - {name: numbers, kind: dense, shape: [2]}
layers:
  - {id: fields, op: field_embeddings, in: [@NAMES@], dim: 4, role: shared}
  - {id: features, op: concat, in: [fields, numbers], role: shared}
  - {id: light_logit, op: linear, in: features, out_features: 1, role: light}
  - {id: booster_tower, op: mlp, in: features, units: [16], role: booster}
  - {id: booster_logit, op: linear, in: booster_tower, out_features: 1, role: booster}
heads: {light: light_logit, booster: booster_logit}
train: {batch_size: 4096}
data:
  source: parquet
  path: @PATH@
  label: y
  categorical: [@NAMES@]
  dense: {numbers: [d0, d1]}
  val_fraction: 0.01
  test_fraction: 0.01
  stream: true
"""
CATEGORICAL = [f"c{k}" for k in range(8)]  # c0-c5 hashed ids, c6-c7 a vocabulary of 100


def spec_text(path: Path) -> str:
    inputs = [f"  - {{name: c{k}, kind: categorical, hash_buckets: 100000}}" for k in range(6)]
    inputs += [f"  - {{name: c{k}, kind: categorical, vocab: 101}}" for k in (6, 7)]
    text = SPEC.replace("@INPUTS@", "\n".join(inputs)).replace("@PATH@", str(path))
    return text.replace("@NAMES@", ", ".join(CATEGORICAL))


def main(table: Path, out: Path) -> None:
    import torch  # noqa: F401 (counted in the peak, as in a training run)

    from rocketc.compiler import compile_text
    from rocketc.data import load_data
    from rocketc.train.streamload import stream_loader

    spec = compile_text(spec_text(table), "streamed_table.yaml").spec
    start = time.perf_counter()
    data = load_data(spec)
    fit_s = time.perf_counter() - start
    start, rows = time.perf_counter(), 0
    generator = torch.Generator().manual_seed(0)
    for batch in stream_loader(data.train, spec.train.batch_size, generator):
        rows += len(batch[-1])
    epoch_s = time.perf_counter() - start
    record = {
        "rows": rows,
        "val_rows": len(data.val),
        "fit_s": fit_s,
        "epoch_s": epoch_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    out.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))

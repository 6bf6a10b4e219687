"""One measured training run for bench/scale.py, started by torchrun (any number of processes).

`python -m torch.distributed.run --standalone --nproc-per-node N -m bench._scale_worker SPEC
EPOCHS OUT.json [k=v ...]` trains SPEC exactly as `rocketc train` does (`TrainRecipe`,
joined to torchrun's process group when N > 1), without the export; rank 0 writes each epoch's
training seconds and the number of training rows to OUT.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import torch

from rocketc.compiler import compile_file
from rocketc.train import distributed
from rocketc.train.run import TrainRecipe


def main(spec: str, epochs: int, out: Path, sets: list[str]) -> None:
    compiled = compile_file(Path(spec), [f"train.epochs={epochs}", *sets])
    with distributed.joined(compiled.spec.train.device) as world:
        with tempfile.TemporaryDirectory(prefix="rocketc-bench-scale-") as tmp:
            recipe = TrainRecipe(
                compiled, Path(tmp) / "run", console=distributed.quiet_console(), world=world
            )
            result = recipe.run(launch=False)
    if world.is_main:
        record = {
            "processes": world.size,
            "torch_threads": torch.get_num_threads(),
            "train_rows": len(recipe.data.train),
            "epoch_seconds": [r["seconds"] for r in result.history],
            "val_light": result.history[-1]["val"]["light"],
        }
        out.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    spec, epochs, out, *sets = sys.argv[1:]
    main(spec, int(epochs), Path(out), sets)

"""Run under torchrun by tests/test_distributed.py: `python -m torch.distributed.run
--standalone --nproc-per-node 2 tests/helpers/ddp_checks.py OUT.json`.

Joins the process group the way `rocketc train` does (`distributed.joined`), then measures what
only a real group can show: shards gathered back in row order, means and broadcasts across
ranks, and the gradient-flow audit through DistributedDataParallel. Rank 0 writes the raw
results to OUT.json; the test asserts on them.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from rocketc.compiler import compile_file, embedded_spec
from rocketc.data.base import Split
from rocketc.train import distributed
from rocketc.train.audit import run_audit, run_ddp_audit
from rocketc.train.generated import load_generated

QUICKSTART = embedded_spec("quickstart")

ROOT = Path(__file__).resolve().parents[2]  # the repository (this file is tests/helpers/)
SPECS = {  # name -> (spec file or None for the embedded quickstart, --set overrides)
    "quickstart": (None, []),
    "quickstart_shared": (None, ["loss.gradient_block=shared"]),
    "quickstart_none": (None, ["loss.gradient_block=none"]),
    "light_alone": (None, ["loss.booster=0", "loss.hint.weight=0"]),
    "wrn16_1_interval": (ROOT / "specs" / "wrn16_1_interval.yaml", []),
}


def gathers(world: distributed.World) -> dict[str, list]:
    """Split n rows (n below, at and above the world size) by `shard`, gather them back."""
    out = {}
    for n in (1, 2, 3, 7, 270):
        rows = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
        split = Split({"x": rows}, np.arange(n), None)
        shard = world.shard(split)
        out[str(n)] = world.gather(torch.from_numpy(shard.inputs["x"]), n).tolist()
    return out


def audits(world: distributed.World) -> dict[str, dict]:
    out = {}
    for name, (path, sets) in SPECS.items():
        compiled = compile_file(path or QUICKSTART, sets)
        with tempfile.TemporaryDirectory() as directory:
            gen = load_generated(compiled, directory)
            unused = distributed.unused_parameters(gen, compiled.spec.train.epochs)
            result = run_ddp_audit(compiled, gen, world, bool(unused))
        out[name] = {
            "ddp": result.matrix(),
            "one_process": run_audit(compiled).matrix(),
            "flagged": [(c.term, c.group) for c in result.flagged],
            "problems": result.problems,
        }
    # The spec promises gradient_block: booster, the model is generated without the detach.
    promised = compile_file(QUICKSTART, [])
    with tempfile.TemporaryDirectory() as directory:
        gen = load_generated(compile_file(QUICKSTART, ["loss.gradient_block=none"]), directory)
        broken = run_ddp_audit(promised, gen, world, False)
    out["broken"] = {"flagged": [(c.term, c.group) for c in broken.flagged]}
    return out


def main(out: Path) -> None:
    with distributed.joined("cpu") as world:
        results = {
            "world": [world.rank, world.size, world.backend],
            "gathers": gathers(world),
            "mean": world.mean({"a": float(world.rank), "b": 1.0 + world.rank}),
            "from_main": world.from_main({"rank": world.rank}),
            "audits": audits(world),
        }
        ranks = [None] * world.size
        torch.distributed.all_gather_object(ranks, results["world"])
        results["ranks"] = ranks
    if world.is_main:
        out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))

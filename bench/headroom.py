"""headroom: where does the booster alone lead the light net alone, on MovieLens?

Rocket Launching can only pass on what the booster knows beyond the light net: its lead when
both are trained alone on the labels. Issue 23 asks for a real CTR booster (DCN-v2, DIN) that
leads rocketc's MLP light net by at least 1 GAUC point on MovieLens (`split: user_time`). This
part measures the lead, paired by seed, for each shipped CTR spec and for the settings tried
on the DIN spec (history length, epochs, regularisation, embedding width, batch size), each
run as a user would run it:

    rocketc ablate SPEC --seeds 3 --variant light_alone --variant booster_alone \\
        --set data.split=user_time [--set ...]

Every configuration's `ablation.json` is kept under `bench/results/headroom/<key>/` with the
arguments that made it (`config.json`); a configuration is not
trained again: one whose spec, after its settings, and seeds are what they were (delete its
directory to rerun it). `python -m bench headroom:KEY,KEY` reruns
some. Full run from nothing: about 35 minutes on 2 cores.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._harness import stamp
from bench._stats import points

TITLE = "Headroom: does the booster alone lead the light net alone?"
CASES = "configs"  # `python -m bench headroom:KEY,KEY` reruns only those
ORDER = 13
EXPECTED = "about 35 min on 2 cores (configurations already measured are kept)"
ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "bench" / "results" / "headroom"
SEEDS = 3
SPLIT = "data.split=user_time"
HIST50 = ("data.history=50", "inputs.8.max_len=50")
HIST100 = ("data.history=100", "inputs.8.max_len=100")
DIN_DIM32 = ("layers.0.dim=32", "layers.5.dim=32", "layers.6.dim=32", "layers.1.out_features=32")
DIN_DIM8 = ("layers.0.dim=8", "layers.5.dim=8", "layers.6.dim=8", "layers.1.out_features=8")


@dataclass(frozen=True)
class Config:
    key: str
    spec: str
    sets: tuple[str, ...]
    what: str


E5 = ("train.epochs=5",)
H20_ = ("data.history=20", "inputs.8.max_len=20")  # the DIN spec's history as first shipped
H20 = (*H20_, *E5)  # ... and its epochs
CONFIGS = (
    Config("mlp", "ctr_movielens", E5, "paper Table 5 towers (MLP booster), 5 epochs"),
    Config("mlp_e10", "ctr_movielens", ("train.epochs=10",), "the same, 10 epochs"),
    Config("mlp_e20", "ctr_movielens", ("train.epochs=20",), "the same, 20 epochs"),
    Config("dcn", "ctr_movielens_dcn", E5, "DCN-v2 booster, 5 epochs"),
    Config("dcn_e10", "ctr_movielens_dcn", ("train.epochs=10",), "DCN-v2, 10 epochs"),
    Config("dcn_e20", "ctr_movielens_dcn", ("train.epochs=20",), "DCN-v2, 20 epochs"),
    Config("din", "ctr_movielens_din", H20, "DIN booster, history of 20, 5 epochs"),
    Config("din_wd", "ctr_movielens_din", (*H20, "train.optimizer.weight_decay=1e-5"), "+ L2"),
    Config("din_drop", "ctr_movielens_din", (*H20, "layers.9.dropout=0.3"), "+ tower dropout"),
    Config(
        "din_slow",
        "ctr_movielens_din",
        (*H20_, "train.optimizer.lr=0.0003", "train.epochs=8"),
        "lr 3e-4, 8 epochs",
    ),
    Config(
        "din_b2048",
        "ctr_movielens_din",
        (*H20_, "train.batch_size=2048", "train.optimizer.lr=0.002", "train.epochs=8"),
        "batches of 2048, lr 2e-3, 8 epochs",
    ),
    Config("din_dim8", "ctr_movielens_din", (*H20, *DIN_DIM8), "embeddings 8 wide"),
    Config("din_dim32", "ctr_movielens_din", (*H20, *DIN_DIM32), "embeddings 32 wide"),
    Config("din_light32", "ctr_movielens_din", (*H20, "layers.3.units=[32]"), "light 144x32"),
    Config("din_h50", "ctr_movielens_din", (*HIST50, *E5), "history of 50, 5 epochs"),
    Config("din_e10", "ctr_movielens_din", (*H20_, "train.epochs=10"), "history 20, 10 ep."),
    Config("din_h50_e10", "ctr_movielens_din", (*HIST50, "train.epochs=10"), "history 50, 10 ep."),
    Config(
        "din_h50_e10_dim32",
        "ctr_movielens_din",
        (*HIST50, "train.epochs=10", *DIN_DIM32),
        "history 50, 10 epochs, embeddings 32 wide",
    ),
    Config("din_h100_e10", "ctr_movielens_din", (*HIST100, "train.epochs=10"), "history 100"),
    Config(
        "din_h50_e20", "ctr_movielens_din", (*HIST50, "train.epochs=20"), "history 50, 20 epochs"
    ),
)
QUICK = (Config("quick", "ctr_movielens_dcn", ("train.epochs=1",), "smoke"),)


def _args(config: Config, out: Path, seeds: int) -> list[str]:
    args = ["ablate", f"specs/{config.spec}.yaml", "--seeds", str(seeds)]
    args += ["--variant", "light_alone", "--variant", "booster_alone", "-o", str(out)]
    for s in (SPLIT, *config.sets):
        args += ["--set", s]
    return args


def run(quick: bool, only: tuple[str, ...] = ()) -> dict[str, Any]:
    configs = QUICK if quick else tuple(c for c in CONFIGS if not only or c.key in only)
    seeds = 1 if quick else SEEDS
    out = []
    for config in configs:
        where = (Path(os.environ.get("TMPDIR", "/tmp")) / "rocketc-headroom") if quick else RUNS
        out.append(run_config(config, where / config.key, seeds, fresh=bool(only) or quick))
    return {"seeds": seeds, "configs": out}


def resolved(config: Config, seeds: int) -> str:
    """What a configuration trains: the spec after its settings, every default filled in, and
    the seeds; a kept result is reused only while this is unchanged (a shipped spec that
    changes reruns the rows that take it as it is)."""
    from rocketc.compiler import compile_file

    compiled = compile_file(ROOT / "specs" / f"{config.spec}.yaml", [SPLIT, *config.sets])
    spec = compiled.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    text = json.dumps({"spec": spec, "seeds": seeds}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def run_config(config: Config, out: Path, seeds: int, fresh: bool) -> dict[str, Any]:
    """`rocketc ablate` for one configuration, unless a kept result trained the same."""
    args = _args(config, out, seeds)
    key = resolved(config, seeds)
    kept = out / "config.json"
    same = kept.is_file() and json.loads(kept.read_text()).get("resolved") == key
    if fresh or not same or not (out / "ablation.json").is_file():
        threads = ["--threads", str(os.cpu_count() or 1)]
        cmd = [sys.executable, "-m", "rocketc", *args, *threads]
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=sys.stderr)
        record = {
            "args": _portable(args, out),
            "resolved": key,
            "measured": stamp(os.getloadavg()[0]),
        }
        kept.write_text(json.dumps(record, indent=2) + "\n")
    measured = json.loads(kept.read_text()).get("measured")
    return {
        **({"measured": measured} if measured else {}),
        "key": config.key,
        "spec": config.spec,
        "sets": list(config.sets),
        "what": config.what,
        **summarise(json.loads((out / "ablation.json").read_text())),
    }


def _portable(args: list[str], out: Path) -> list[str]:
    return [a if a != str(out) else "OUT" for a in args]


def summarise(ablation: dict[str, Any]) -> dict[str, Any]:
    """Light alone and booster alone per seed, and the booster's paired lead."""
    from rocketc.experiments.ablate import headroom

    metric = ablation["metric"]
    by = {v["variant"]: v for v in ablation["variants"]}
    light = {r["seed"]: r for r in by["light_alone"]["runs"]}
    boost = {r["seed"]: r for r in by["booster_alone"]["runs"]}
    seeds = sorted(set(light) & set(boost))
    lv = [light[s]["light"][metric] for s in seeds]
    bv = [boost[s]["booster"][metric] for s in seeds]
    return {
        "metric": metric,
        "epochs": ablation["epochs"],
        "seeds": seeds,
        "light": lv,
        "booster": bv,
        "light_epoch": [light[s]["epochs"]["light"]["selected"] for s in seeds],
        "booster_epoch": [boost[s]["epochs"]["booster"]["selected"] for s in seeds],
        "lead": headroom(ablation["variants"], metric),  # what `rocketc ablate` says
        "seconds": {
            "light": [light[s]["seconds"] for s in seeds],
            "booster": [boost[s]["seconds"] for s in seeds],
        },
    }


def render(results: dict[str, Any]) -> str:
    lines = [
        f"Each row: `rocketc ablate SPEC --seeds {results['seeds']} --variant light_alone "
        "--variant booster_alone --set data.split=user_time` plus the row's settings; both "
        "nets trained alone on the labels, scored on test at their best validation epoch. "
        "**Lead**: booster minus light for the same seed, averaged, in GAUC points (×100), with "
        "its 95% t-interval. Issue 23's bar: a lead of at least 1 point, beyond its interval.",
        "",
        "| row | spec | settings | light alone | booster alone | lead [95% CI] | best epoch "
        "(light / booster) |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for c in results["configs"]:
        lead = c["lead"]
        mark = " ✓" if lead["low"] > 0 and lead["mean"] >= 0.01 else ""
        sets = ", ".join(f"`{s}`" for s in c["sets"]) or "-"
        lines.append(
            f"| {c['key']} | `{c['spec']}` | {c['what']}: {sets} | "
            f"{sum(c['light']) / len(c['light']):.4f} | "
            f"{sum(c['booster']) / len(c['booster']):.4f} | "
            f"{points(lead['mean'])} [{points(lead['low'])}, {points(lead['high'])}]{mark} | "
            f"{'/'.join(map(str, c['light_epoch']))} ; {'/'.join(map(str, c['booster_epoch']))} |"
        )
    groups: dict[str, list[dict[str, Any]]] = {}
    for c in results["configs"]:
        if c.get("measured"):
            groups.setdefault(c["measured"]["commit"], []).append(c)
    if len(groups) > 1:
        said = []
        for commit, rows in groups.items():
            dates = sorted(r["measured"]["date"][:16].replace("T", " ") for r in rows)
            span = dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1][11:]}"
            said.append(f"at `{commit}`, {span} UTC: {', '.join(r['key'] for r in rows)}")
        lines += [
            "",
            "Rows were measured in several runs (a kept row is not trained again): "
            + "; ".join(said)
            + ".",
        ]
    best = max(results["configs"], key=lambda c: c["lead"]["mean"])
    beyond = [c["key"] for c in results["configs"] if c["lead"]["low"] > 0]
    lines += [
        "",
        f"Rows whose booster leads beyond its interval: {len(beyond)} of "
        f"{len(results['configs'])}" + (f" ({', '.join(beyond)})." if beyond else "."),
        f"Largest lead: {best['key']} ({best['what']}), {points(best['lead']['mean'])} "
        f"[{points(best['lead']['low'])}, {points(best['lead']['high'])}] points.",
    ]
    return "\n".join(lines)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    ctr = [c for c in results["configs"] if c["spec"] in ("ctr_movielens_dcn", "ctr_movielens_din")]
    if not ctr:
        return []
    best = max(ctr, key=lambda c: c["lead"]["mean"])
    lead = best["lead"]
    return [
        {
            "target": "a DCN-v2 or DIN booster alone leads the MLP light net alone by ≥ 1 GAUC "
            "point (MovieLens, user_time), best of the settings tried",
            "measured": f"best {best['key']}: {points(lead['mean'])} [{points(lead['low'])}, "
            f"{points(lead['high'])}] over {len(ctr)} settings",
            "met": lead["low"] > 0 and lead["mean"] >= 0.01,
        }
    ]


if __name__ == "__main__":
    print(json.dumps(run(quick=True), indent=2, default=str))

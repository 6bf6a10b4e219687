"""overhead: one training step of the generated model vs the same nets written by hand.

For `quickstart` and `fashion_mnist_cnn`: the generated `RocketNet` driven by the generated
`train_one_epoch`, and `bench/_handwritten.py`'s twins with the same weights, loss and optimizer
in a plain loop (forward, loss, backward, step, one `.item()` for a running loss). Both run in
this process on the same real batches, interleaved in short rounds so drift in the machine's
speed hits both alike; a step's time is read between consecutive steps. Before timing, both must
give the same loss terms on the same weights and batch (within 1e-5), or the part fails.

When the generated step is slower than the target, a cProfile of one round on each side names
the functions where the extra time goes.

Tracking (`--track`): `rocketc train specs/quickstart.yaml` end to end, as a user runs it, with
no tracking, TensorBoard and MLflow (a fresh local store each time), interleaved in rounds; the
wall-time ratio of each to no tracking. Full run: about 5 minutes.
"""

from __future__ import annotations

import cProfile
import inspect
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench._stats import ratio_spread, spread

TITLE = "Overhead: generated step vs hand-written PyTorch"
ORDER = 30
EXPECTED = "about 5 min"
ROOT = Path(__file__).resolve().parent.parent
SPECS = ("quickstart", "fashion_mnist_cnn")
TARGET = 1.03
FULL = {"warmup": 10, "rounds": 40, "steps": 5, "batches": 20, "batch_size": None}
# The smoke run steps on 16-row batches: it checks the machinery, not the speed.
QUICK = {"warmup": 2, "rounds": 2, "steps": 2, "batches": 4, "batch_size": 16}


def run(quick: bool) -> dict[str, Any]:
    import torch

    plan = QUICK if quick else FULL
    return {
        "plan": plan,
        "torch_threads": torch.get_num_threads(),
        "specs": [measure(name, plan) for name in SPECS],
        "tracking": measure_tracking(quick),
    }


TRACKING_TARGET = 1.02
TRACKERS = ("none", "tensorboard", "mlflow")


def measure_tracking(quick: bool) -> dict[str, Any]:
    """Wall time of `rocketc train specs/quickstart.yaml` with each tracker, interleaved."""
    import importlib.util
    import os
    import subprocess
    import tempfile

    kinds = [k for k in TRACKERS if k == "none" or importlib.util.find_spec(k)]
    rounds, epochs = (1, 2) if quick else (4, None)
    times: dict[str, list[float]] = {k: [] for k in kinds}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for r in range(rounds):
        for kind in kinds if r % 2 == 0 else reversed(kinds):
            with tempfile.TemporaryDirectory() as tmp:
                cmd = [
                    sys.executable,
                    "-m",
                    "rocketc",
                    "train",
                    str(ROOT / "specs/quickstart.yaml"),
                ]
                cmd += ["-o", str(Path(tmp) / "run"), "--track", kind, "--threads", "1"]
                cmd += ["--epochs", str(epochs)] if epochs else []
                start = time.perf_counter()
                subprocess.run(cmd, cwd=tmp, env=env, check=True, capture_output=True)
                times[kind].append(time.perf_counter() - start)
    base = times["none"]
    return {
        "rounds": rounds,
        "epochs": epochs or "the spec's",
        "seconds": {k: spread(v) for k, v in times.items()},
        "ratio_by_round": {k: ratio_spread(v, base) for k, v in times.items() if k != "none"},
        "missing": [k for k in TRACKERS if k not in kinds],
    }


def _recipe(spec):
    from bench._handwritten import Recipe

    loss = spec.loss
    unsupported = [
        what
        for what, used in (
            ("hint.warmup_epochs", getattr(loss.hint, "warmup_epochs", 0)),
            ("kd.warmup_epochs", getattr(loss.kd, "warmup_epochs", 0)),
            ("feature_hints", getattr(loss, "feature_hints", [])),
            ("gradient_block: shared", loss.gradient_block == "shared"),
        )
        if used
    ]
    if unsupported:
        raise RuntimeError(
            f"{spec.name}: the hand-written twin does not implement {unsupported}; "
            "extend bench/_handwritten.py"
        )
    return Recipe(
        light=loss.light,
        booster=loss.booster,
        hint_weight=loss.hint.weight,
        hint_on=loss.hint.on,
        hint_reduction=loss.hint.reduction,
        hint_normalize=getattr(loss.hint, "normalize", "none"),
        hint_temperature=getattr(loss.hint, "temperature", 1.0),
        kd_weight=loss.kd.weight,
        kd_temperature=loss.kd.temperature,
        gradient_block=loss.gradient_block,
    )


def _optimizer(params, s, name: str):
    """The spec's optimizer (`name`), spelled out as a user would."""
    import torch

    if name == "sgd":
        return torch.optim.SGD(
            params, lr=s.lr, momentum=s.momentum, nesterov=s.nesterov, weight_decay=s.weight_decay
        )
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name]
    return cls(params, lr=s.lr, betas=s.betas, weight_decay=s.weight_decay)


class _Sides:
    """The generated model and its hand-written twin, ready to step on the same batches."""

    def __init__(self, name: str, batches: list, tmp: Path):
        import torch

        from bench._handwritten import TWINS, rocket_loss
        from rocketc.compiler import compile_file
        from rocketc.train.generated import load_generated

        compiled = compile_file(ROOT / "specs" / f"{name}.yaml")
        self.gen = load_generated(compiled, tmp / name)
        self.settings = self.gen.train.Settings()
        self.device = torch.device("cpu")
        self.recipe = _recipe(compiled.spec)
        self.rocket_loss = rocket_loss
        torch.manual_seed(0)
        self.model = self.gen.model.RocketNet()
        self.twin = TWINS[name]()
        _copy_weights(self.model, self.twin)
        self.batches = batches
        self.gen_opt = self.gen.train.build_optimizer(self.model, self.settings)
        optimizer = compiled.spec.train.optimizer.name
        self.hand_opt = _optimizer(self.twin.parameters(), self.settings, optimizer)
        takes_epoch = "epoch" in inspect.signature(self.gen.train.train_one_epoch).parameters
        self.epoch_arg = {"epoch": 0} if takes_epoch else {}

    def generated(self, batches: list) -> list[float]:
        """The generated loop over `batches`; the wall time of each step."""
        marks = [time.perf_counter()]
        self.gen.train.train_one_epoch(
            self.model,
            batches,
            self.gen_opt,
            self.settings,
            self.device,
            on_step=lambda step, n: marks.append(time.perf_counter()),
            **self.epoch_arg,
        )
        return [b - a for a, b in zip(marks, marks[1:], strict=False)]

    def handwritten(self, batches: list) -> list[float]:
        """What a user writes: forward, loss, backward, step, and a running loss."""
        self.twin.train()
        running, times = 0.0, []
        for *inputs, target in batches:
            start = time.perf_counter()
            light, booster = self.twin(*inputs)
            loss = self.rocket_loss(light, booster, target, self.recipe)["total"]
            self.hand_opt.zero_grad(set_to_none=True)
            loss.backward()
            self.hand_opt.step()
            running += loss.item()
            times.append(time.perf_counter() - start)
        return times

    def check_same_losses(self) -> dict[str, float]:
        """Both sides' loss terms on one batch from the same weights and dropout seed."""
        import torch

        batch = self.batches[:1]
        frozen = torch.optim.SGD(self.model.parameters(), lr=0.0)
        torch.manual_seed(123)
        generated = self.gen.train.train_one_epoch(
            self.model, batch, frozen, self.settings, self.device, **self.epoch_arg
        )
        torch.manual_seed(123)
        self.twin.train()
        *inputs, target = batch[0]
        light, booster = self.twin(*inputs)
        hand = {
            k: v.item() for k, v in self.rocket_loss(light, booster, target, self.recipe).items()
        }
        terms = {k for k, v in generated.items() if k == "total" or self.recipe_uses(k)}
        if terms != set(hand):
            raise RuntimeError(
                f"loss terms differ: generated {sorted(terms)}, by hand {sorted(hand)}"
            )
        gap = max(abs(generated[k] - hand[k]) / max(1.0, abs(hand[k])) for k in hand)
        if gap > 1e-5:
            raise RuntimeError(
                f"the hand-written twin is not the generated model: {generated} vs {hand}"
            )
        return {"max_relative_gap": gap, **{f"loss_{k}": v for k, v in hand.items()}}

    def recipe_uses(self, term: str) -> bool:
        r = self.recipe
        weights = {"light": 1, "booster": 1, "hint": r.hint_weight, "kd": r.kd_weight}
        return bool(weights.get(term, 1))


def _copy_weights(source, target) -> None:
    """Load `source`'s state into `target` by position (same layers, same order)."""
    src, dst = source.state_dict(), target.state_dict()
    if len(src) != len(dst):
        raise RuntimeError(f"{len(src)} tensors in the generated model, {len(dst)} in the twin")
    for (a, x), (b, y) in zip(src.items(), dst.items(), strict=True):
        if x.shape != y.shape:
            raise RuntimeError(
                f"generated {a} {tuple(x.shape)} vs hand-written {b} {tuple(y.shape)}"
            )
    target.load_state_dict(dict(zip(dst, src.values(), strict=True)))


def _batches(name: str, count: int, batch_size: int | None = None) -> list:
    """`count` real training batches of `batch_size` rows (default: the spec's)."""
    import torch

    from bench.paper import subset
    from rocketc.compiler import compile_file
    from rocketc.compiler.load import load_file
    from rocketc.compiler.overrides import apply_overrides
    from rocketc.compiler.pipeline import compile_source
    from rocketc.data import load_data
    from rocketc.train.run import batch_loader

    compiled = compile_file(ROOT / "specs" / f"{name}.yaml")
    size = batch_size or compiled.spec.train.batch_size
    if compiled.spec.data.source in ("fashion-mnist", "idx"):  # read no more rows than needed
        source = apply_overrides(load_file(compiled.file), [f"data.limit={size * count}"])
        compiled = compile_source(source)
    split = subset(load_data(compiled.spec).train, size * count)
    loader = batch_loader(split, size, torch.Generator().manual_seed(0))
    return [tuple(t.clone() for t in batch) for batch in loader][:count]


def measure(name: str, plan: dict[str, int]) -> dict[str, Any]:
    import tempfile

    batches = _batches(name, plan["batches"], plan["batch_size"])
    with tempfile.TemporaryDirectory(prefix="rocketc-bench-overhead-") as tmp:
        sides = _Sides(name, batches, Path(tmp))
        check = sides.check_same_losses()
        sides.generated(batches[: plan["warmup"]])
        sides.handwritten(batches[: plan["warmup"]])
        generated, handwritten, rounds = [], [], []
        cursor = 0
        for r in range(plan["rounds"]):
            block = [batches[(cursor + i) % len(batches)] for i in range(plan["steps"])]
            cursor += plan["steps"]
            # Alternate who goes first, so neither side always runs on a warmer cache.
            if r % 2 == 0:
                g, h = sides.generated(block), sides.handwritten(block)
            else:
                h, g = sides.handwritten(block), sides.generated(block)
            generated += g
            handwritten += h
            rounds.append({"generated": statistics.median(g), "handwritten": statistics.median(h)})
        result = {
            "spec": name,
            "batch_size": len(batches[0][-1]),
            "params": sides.gen.compiled.param_counts(),
            "check": check,
            "generated_s": generated,
            "handwritten_s": handwritten,
            "generated": spread(generated),
            "handwritten": spread(handwritten),
            "ratio": statistics.median(generated) / statistics.median(handwritten),
            "ratio_by_round": ratio_spread(
                [r["generated"] for r in rounds], [r["handwritten"] for r in rounds]
            ),
        }
        if result["ratio"] > TARGET:
            result["profile"] = _profile(sides, batches[: plan["steps"]])
    print(f"[bench] overhead {name}: {result['ratio']:.3f}x hand-written", file=sys.stderr)
    return result


def _profile(sides: _Sides, block: list, top: int = 8) -> list[dict[str, Any]]:
    """Functions whose own time grows most from the hand-written to the generated step."""

    def own_times(fn) -> dict[str, float]:
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(3):
            fn(block)
        profile.disable()
        stats = pstats.Stats(profile).stats
        out: dict[str, float] = {}
        for (file, line, func), (_, _, tottime, _, _) in stats.items():
            where = f"{Path(file).name}:{line}({func})" if line else func
            out[where] = out.get(where, 0.0) + tottime / (3 * len(block))
        return out

    gen, hand = own_times(sides.generated), own_times(sides.handwritten)
    extra = {k: gen.get(k, 0.0) - hand.get(k, 0.0) for k in gen.keys() | hand.keys()}
    rows = sorted(extra.items(), key=lambda kv: -kv[1])[:top]
    return [{"function": k, "extra_s_per_step": v, "generated_s": gen.get(k, 0.0)} for k, v in rows]


# --- BENCHMARKS.md -------------------------------------------------------------------------
def _ms(x: float) -> str:
    return f"{x * 1e3:.3f}"


def render(results: dict[str, Any]) -> str:
    plan = results["plan"]
    lines = [
        f"Median wall time of one training step (forward, loss, backward, optimizer step), "
        f"{plan['rounds']} interleaved rounds of {plan['steps']} steps per side after "
        f"{plan['warmup']} warm-up steps, torch threads {results['torch_threads']}. Both sides "
        "start from the same weights and were checked to compute the same loss terms.",
        "",
        "| spec | batch | generated ms (IQR) | hand-written ms (IQR) | ratio of medians | "
        "per-round ratio median [min, max] | target |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results["specs"]:
        g, h, rr = r["generated"], r["handwritten"], r["ratio_by_round"]
        met = "met" if r["ratio"] <= TARGET else f"**missed by {(r['ratio'] / TARGET - 1):.1%}**"
        lines.append(
            f"| {r['spec']} | {r['batch_size']} | {_ms(g['median'])} ({_ms(g['q1'])}–"
            f"{_ms(g['q3'])}) | {_ms(h['median'])} ({_ms(h['q1'])}–{_ms(h['q3'])}) | "
            f"{r['ratio']:.3f}× | {rr['median']:.3f}× [{rr['min']:.3f}, {rr['max']:.3f}] | "
            f"≤ {TARGET}×: {met} |"
        )
    for r in results["specs"]:
        if "profile" not in r:
            continue
        extra = (r["generated"]["median"] - r["handwritten"]["median"]) * 1e6
        lines += [
            "",
            f"Where `{r['spec']}`'s extra {extra:.0f} µs per step goes (cProfile, own time per "
            "step, generated minus hand-written; profiling inflates Python-level costs):",
            "",
            "| function | extra µs / step | generated µs / step |",
            "|---|---:|---:|",
        ]
        lines += [
            f"| `{p['function']}` | {p['extra_s_per_step'] * 1e6:.1f} | "
            f"{p['generated_s'] * 1e6:.1f} |"
            for p in r["profile"]
        ]
    t = results.get("tracking")
    if t:
        lines += [
            "",
            f"**Tracking.** `rocketc train specs/quickstart.yaml` end to end (start-up, training, "
            f"export; {t['epochs']} epochs, one thread), {t['rounds']} interleaved rounds per "
            "tracker, each MLflow run into a fresh local store:",
            "",
            "| tracking | wall s, median [min, max] | per-round ratio to none, median [min, max] "
            f"| target ≤ {TRACKING_TARGET}× |",
            "|---|---:|---:|---|",
        ]
        for kind, sec in t["seconds"].items():
            rr = t["ratio_by_round"].get(kind)
            ratio = "-" if rr is None else f"{rr['median']:.3f}× [{rr['min']:.3f}, {rr['max']:.3f}]"
            met = (
                "-" if rr is None else ("met" if rr["median"] <= TRACKING_TARGET else "**missed**")
            )
            lines.append(
                f"| {kind} | {sec['median']:.2f} [{sec['min']:.2f}, {sec['max']:.2f}] | {ratio} "
                f"| {met} |"
            )
    return "\n".join(lines) + "\n"


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = [
        {
            "target": f"generated step ≤ {TARGET}× hand-written ({r['spec']})",
            "measured": f"{r['ratio']:.3f}×",
            "met": r["ratio"] <= TARGET,
        }
        for r in results["specs"]
    ]
    for kind, rr in results.get("tracking", {}).get("ratio_by_round", {}).items():
        out.append(
            {
                "target": f"--track {kind} adds ≤ 2% to a quickstart training's wall time",
                "measured": f"{rr['median']:.3f}×",
                "met": rr["median"] <= TRACKING_TARGET,
            }
        )
    return out

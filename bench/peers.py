"""peers: rocketc's DCN-v2 and DeepFM boosters next to DeepCTR-Torch's, on one MovieLens split.

Parity with an established CTR library (issue 23, item 5). Both models are trained as boosters
alone (labels only) in rocketc, through `rocketc ablate`'s own code (the `booster_alone`
variant, `Recipe`), and in DeepCTR-Torch 0.3.0 (`DCN` with `cross_parameterization='matrix'`,
i.e. DCN-v2, and `DeepFM`, through its own `compile`/`fit`/`predict`), on the arrays rocketc's
loader gives for `specs/ctr_movielens_dcn.yaml` (`split: user_time`): the same train, val and
test rows, the categorical ids per field and the 19 genre flags. DCN-v2 is that spec's booster;
DeepFM is a spec derived from it here (the fields stacked, DeepCTR's factorization machine over
them beside the same deep tower), as `rocketc init --booster deepfm` writes one. Same embedding
size, deep tower, cross layers, optimizer (Adam, the spec's lr), batch size, epochs and torch
threads on both sides; DeepCTR's L2 terms are set to 0. Both sides score test at their best
validation-GAUC epoch, selected the same way, with `rocketc.data.metrics` on both sides.
A third, diagnostic row per model (never a target) trains rocketc's model with only its
embedding tables drawn from torch's default N(0, 1), rocketc's default until this part measured
it: 3.4-4.5 AUC points below the peer, a gap that N(0, 1e-4) (DeepCTR's `init_std`, rocketc's
default since) closed.

Full run: 5 seeds per row, the spec's 5 epochs, about 5 minutes on 2 cores at one torch thread.

The peer stays out of rocketc's dependencies: `pip install --no-deps -r
bench/requirements-peers.txt`; without it the part says so and skips.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

from bench._stats import mean_interval, spread, welch_interval

TITLE = "Peers: rocketc's CTR boosters next to DeepCTR-Torch"
ORDER = 18
EXPECTED = "about 5 min on 2 cores (needs bench/requirements-peers.txt)"
ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "ctr_movielens_dcn.yaml"
PEER, PEER_MODULE, PEER_VERSION = "DeepCTR-Torch", "deepctr_torch", "0.3.0"
INSTALL = "pip install --no-deps -r bench/requirements-peers.txt"
SEEDS = {"full": 5, "quick": 1}
QUICK_ROWS = 5000  # train rows of the smoke run; val and test are whole
MODELS = (("dcn_v2", "DCN-v2"), ("deepfm", "DeepFM"))
# A diagnostic row, never a target: rocketc's model with its embedding tables drawn from
# torch's N(0, 1), rocketc's default before this part measured it (see `render`).
PEER_INIT = "rocketc, torch's N(0, 1) embeddings"
TORCH_EMBEDDING_STD = 1.0
LIBRARIES = ("rocketc", PEER, PEER_INIT)

# What could not be made alike, said in BENCHMARKS.md beside the numbers.
DIFFERENCES = (
    "Genre flags: rocketc's shared bottom projects the 19 flags to 16 (a linear layer, as the "
    "shipped spec does); DeepCTR feeds dense features raw into its deep and cross inputs, so "
    "its towers read 131 features where rocketc's read 128.",
    "Initialisation: embeddings N(0, 1e-4) on both sides (DeepCTR's `init_std`; rocketc's "
    "default since the first run of this part). Otherwise each library's own: rocketc's linear "
    "layers PyTorch's Kaiming-uniform, cross layers as `nn.Linear`; DeepCTR's deep weights "
    "N(0, 1e-4), cross kernels Xavier-normal with zero biases. The diagnostic row of each table "
    "draws rocketc's embedding tables from torch's N(0, 1), its earlier default, and changes "
    "nothing else.",
    "Loss: rocketc averages the binary cross-entropy over a batch, DeepCTR sums it; Adam's "
    "steps do not depend on that scale (up to its epsilon).",
    "Output layer: rocketc's booster logit is one linear layer over [interaction, tower] with a "
    "bias; DeepCTR's is a bias-free linear layer plus its prediction layer's bias (the same "
    "function). For DeepFM, rocketc learns a weight on the FM term inside that linear layer; "
    "DeepCTR adds the FM term with weight 1.",
    "First-order (linear) part: off on the DeepCTR side (`linear_feature_columns=[]`), since "
    "neither rocketc model has one; DeepCTR's DeepFM and DCN would otherwise add a per-field "
    "linear term. The DeepFM here is therefore FM + deep, without the first-order term of the "
    "DeepFM paper, on both sides.",
    "Epoch selection: both sides validate after every epoch (rocketc's `Recipe`; a callback "
    "in DeepCTR's `fit`, outside the timed loop) and test the weights of the best validation "
    "GAUC epoch (ties to the earlier epoch). DeepCTR's own per-epoch validation "
    "(`validation_data`) is not used.",
    "Batches: both shuffle the train split every epoch with torch's sampler, from different "
    "generators (rocketc its own seeded generator, DeepCTR the global one seeded by "
    "`seed=`), so seeds are not paired across libraries. DeepCTR's `fit` packs every input "
    "into one float tensor and casts ids back to integers per batch; rocketc keeps one tensor "
    "per input.",
)


# --- the peer ------------------------------------------------------------------------------
def _peer_missing() -> str:
    if importlib.util.find_spec(PEER_MODULE) is None:
        return f"{PEER} is not installed; for this part only: {INSTALL}"
    return ""


def _import_peer() -> types.ModuleType:
    """DeepCTR-Torch without its import-time version check, a thread that asks PyPI for the
    latest release (no network at run time, no stray print). Nothing else is changed."""
    if PEER_MODULE not in sys.modules:
        stub = types.ModuleType(f"{PEER_MODULE}.utils")
        stub.check_version = lambda version: None
        sys.modules.setdefault(f"{PEER_MODULE}.utils", stub)
    return importlib.import_module(PEER_MODULE)


class _EpochWatch:
    """A DeepCTR `fit` callback: times each epoch's training loop, then validates (untimed)
    and keeps the best validation-GAUC weights, as rocketc's `Recipe` does."""

    def __init__(self, model, val, task: str):
        self.model, self.val, self.task = model, val, task
        self.seconds: list[float] = []
        self.val_gauc: list[float] = []
        self.best: tuple[int, float] | None = None
        self.best_state: dict | None = None
        self.started = 0.0

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params) -> None:
        pass

    def on_train_begin(self, logs=None) -> None:
        pass

    def on_train_end(self, logs=None) -> None:
        pass

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.seconds.append(time.perf_counter() - self.started)
        value = _peer_scores(self.model, self.val, self.task)["gauc"]
        self.val_gauc.append(value)
        if value == value and (self.best is None or value > self.best[1]):
            self.best = (epoch + 1, value)
            self.best_state = copy.deepcopy(self.model.state_dict())
        self.model.train()  # predict left it in eval mode; fit set train mode only once


def _peer_inputs(split) -> dict[str, Any]:
    return dict(split.inputs)


def _peer_scores(model, split, task: str) -> dict[str, float]:
    """The peer's probabilities, scored by rocketc's own metric code (as logits: the inverse
    sigmoid in float64 keeps every ranking)."""
    import numpy as np
    from scipy.special import logit

    from rocketc.data.metrics import evaluate

    with contextlib.redirect_stdout(io.StringIO()):
        probs = model.predict(_peer_inputs(split), batch_size=4096)
    logits = logit(np.asarray(probs, dtype=np.float64).reshape(-1))
    return evaluate(task, logits, split.target, split.group)


def _peer_model(key: str, setup: dict[str, Any], seed: int):
    import torch

    _import_peer()
    from deepctr_torch.inputs import DenseFeat, SparseFeat
    from deepctr_torch.models import DCN, DeepFM

    columns = [
        SparseFeat(name, vocabulary_size=vocab, embedding_dim=setup["embedding_dim"])
        for name, vocab in setup["categorical"].items()
    ] + [DenseFeat(name, width) for name, width in setup["dense"].items()]
    common = {
        "dnn_hidden_units": tuple(setup["tower"]),
        "l2_reg_linear": 0.0,
        "l2_reg_embedding": 0.0,
        "l2_reg_dnn": 0.0,
        "dnn_dropout": 0.0,
        "dnn_use_bn": False,
        "dnn_activation": "relu",
        "task": "binary",
        "device": "cpu",
        "seed": seed,
    }
    if key == "dcn_v2":
        model = DCN(
            [],
            columns,
            cross_num=setup["cross_layers"],
            cross_parameterization="matrix",
            l2_reg_cross=0.0,
            **common,
        )
    else:
        model = DeepFM([], columns, use_fm=True, **common)
    model.compile(torch.optim.Adam(model.parameters(), lr=setup["lr"]), "binary_crossentropy")
    return model


def train_peer(key: str, setup: dict[str, Any], data, seed: int, epochs: int) -> dict[str, Any]:
    """One DeepCTR-Torch training: its `fit`, one call for all epochs; best epoch on test."""
    model = _peer_model(key, setup, seed)
    watch = _EpochWatch(model, data.val, "binary")
    with contextlib.redirect_stdout(io.StringIO()):  # fit prints the device and a banner
        model.fit(
            _peer_inputs(data.train),
            data.train.target,
            batch_size=setup["batch_size"],
            epochs=epochs,
            verbose=0,
            shuffle=True,
            callbacks=[watch],
        )
    if watch.best_state is not None:
        model.load_state_dict(watch.best_state)
    test = _peer_scores(model, data.test, "binary")
    return {
        "library": PEER,
        "seed": seed,
        **{m: test[m] for m in ("auc", "gauc", "logloss")},
        "epoch_seconds": watch.seconds,
        "rows_per_s": len(data.train) * len(watch.seconds) / sum(watch.seconds),
        "val_gauc": watch.val_gauc,
        "selected_epoch": watch.best[0] if watch.best else None,
        "trained_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }


# --- rocketc -------------------------------------------------------------------------------
def _deepfm_source(base):
    """The DCN spec with DeepFM's booster: fields stacked (B, F, D) for the factorization
    machine, flattened for the towers; the same deep tower and light net."""
    from rocketc.compiler.load import Source

    data = copy.deepcopy(base.source.data)
    data["name"] = "ctr_movielens_deepfm"
    data["description"] = "MovieLens-100k CTR; DeepFM booster (FM + deep), small MLP light net."
    layers = []
    for layer in data["layers"]:
        layer = dict(layer)
        if layer["op"] == "field_embeddings":
            fields = layer["id"]
            layers += [
                {**layer, "stack": True},
                {"id": f"{fields}_flat", "op": "flatten", "in": fields, "role": "shared"},
            ]
            continue
        if layer["op"] == "concat" and layer["role"] == "shared":
            layer["in"] = [f"{i}_flat" if i == fields else i for i in layer["in"]]
        elif layer["op"] == "cross":
            layer = {"id": "booster_fm", "op": "fm", "in": fields, "role": "booster"}
        elif layer["op"] == "concat" and layer["role"] == "booster":
            layer["in"] = ["booster_fm" if i == "booster_cross" else i for i in layer["in"]]
        layers.append(layer)
    data["layers"] = layers
    return Source(data, base.source.source_map)


def _compiled(epochs: int | None):
    """Each model's spec as the `booster_alone` row of `rocketc ablate` trains it."""
    from rocketc.compiler import compile_file, compile_source
    from rocketc.experiments.ablate import VARIANTS, variant_compiled

    alone = next(v for v in VARIANTS if v.name == "booster_alone")
    base = compile_file(SPEC)
    deepfm = compile_source(_deepfm_source(base))
    specs = {"dcn_v2": base, "deepfm": deepfm}
    return base, {k: variant_compiled(c, alone, epochs) for k, c in specs.items()}


def _setup(compiled) -> dict[str, Any]:
    """What both libraries are given, read from the compiled DCN spec."""
    spec = compiled.spec
    layers = {layer["op"]: layer for layer in compiled.source.data["layers"]}
    tower = next(
        layer["units"]
        for layer in compiled.source.data["layers"]
        if layer["op"] == "mlp" and layer["role"] == "booster"
    )
    return {
        "categorical": {i.name: i.vocab for i in spec.inputs if i.kind == "categorical"},
        "dense": {i.name: i.shape[0] for i in spec.inputs if i.kind == "dense"},
        "embedding_dim": layers["field_embeddings"]["dim"],
        "cross_layers": layers["cross"]["layers"],
        "tower": list(tower),
        "batch_size": spec.train.batch_size,
        "lr": spec.train.optimizer.lr,
        "optimizer": spec.train.optimizer.name,
    }


def _peer_embedding_std() -> float:
    """DeepCTR's default `init_std`: the std of its embedding tables' normal init."""
    import inspect

    _import_peer()
    from deepctr_torch.models import DCN

    return float(inspect.signature(DCN).parameters["init_std"].default)


def _with_embeddings_drawn(std: float):
    """`booster_only`, after every embedding table of the freshly seeded model is redrawn
    from N(0, std) (from the run's own seeded generator, so the run stays reproducible)."""
    import torch

    from rocketc.experiments.ablate import booster_only

    def part(model):
        for module in model.modules():
            if isinstance(module, torch.nn.Embedding):
                torch.nn.init.normal_(module.weight, mean=0.0, std=std)
        return booster_only(model)

    return part


def train_rocketc(
    gen, data, seed: int, console, embedding_std: float | None = None
) -> dict[str, Any]:
    """One rocketc training: `ablate`'s booster-alone run, scored at its selected epoch.
    `embedding_std`: the diagnostic row, embeddings drawn from N(0, std) as the peer does."""
    from rocketc.experiments.ablate import booster_only, selected_epochs, train_part

    part = booster_only if embedding_std is None else _with_embeddings_drawn(embedding_std)
    recipe = train_part(gen, data, seed, part, f"booster_alone seed {seed}", console)
    seconds = [r["seconds"] for r in recipe.history]  # each epoch's loop, before validation
    test = recipe.result.test["booster"]
    return {
        "library": "rocketc" if embedding_std is None else PEER_INIT,
        "seed": seed,
        **{m: test[m] for m in ("auc", "gauc", "logloss")},
        "epoch_seconds": seconds,
        "rows_per_s": len(data.train) * len(seconds) / sum(seconds),
        "val_gauc": [r["val"]["booster"]["gauc"] for r in recipe.history],
        "selected_epoch": selected_epochs(recipe)["selected"],
        "trained_params": gen.compiled.param_counts()["booster_net"],
    }


# --- the run -------------------------------------------------------------------------------
def run(quick: bool) -> dict[str, Any]:
    missing = _peer_missing()
    if missing:
        return {"skipped": missing}
    import torch
    from rich.console import Console

    from bench.paper import subset
    from rocketc.data import Dataset, load_data
    from rocketc.experiments.ablate import warm_up
    from rocketc.train.generated import load_generated

    peer = _import_peer()
    embedding_std = TORCH_EMBEDDING_STD
    epochs = 1 if quick else None
    base, compiled = _compiled(epochs)
    setup = _setup(base)
    data = load_data(base.spec, base.source)
    if quick:
        train = subset(data.train, QUICK_ROWS)
        data = Dataset(
            train, data.val, data.test, data.description + f"; smoke subset {len(train):,} train"
        )
    epochs = compiled["dcn_v2"].spec.train.epochs
    seeds = [base.spec.train.seed + k for k in range(SEEDS["quick" if quick else "full"])]
    console = Console(file=sys.stderr, width=160)
    print(f"[bench] peers: {data.description}", file=sys.stderr)
    models = {key: {"key": key, "label": label, "runs": []} for key, label in MODELS}
    with tempfile.TemporaryDirectory(prefix="rocketc-bench-peers-") as tmp:
        gens = {k: load_generated(c, Path(tmp) / k) for k, c in compiled.items()}
        for key, gen in gens.items():  # one untimed step each, on both sides
            warm_up(gen, data)
            _warm_up_peer(key, setup, data)
        for k, seed in enumerate(seeds):
            for key, model in models.items():
                # Alternate which library goes first, so a drift in machine load splits evenly.
                sides = ("rocketc", PEER) if k % 2 == 0 else (PEER, "rocketc")
                for side in (*sides, PEER_INIT):
                    if side == "rocketc":
                        row = train_rocketc(gens[key], data, seed, console)
                    elif side == PEER:
                        row = train_peer(key, setup, data, seed, epochs)
                    else:
                        row = train_rocketc(gens[key], data, seed, console, embedding_std)
                    model["runs"].append(row)
                    print(
                        f"[bench]   {model['label']} {side} seed {seed}: test AUC "
                        f"{row['auc']:.4f}, GAUC {row['gauc']:.4f}, epoch "
                        f"{row['selected_epoch']}/{epochs}, {row['rows_per_s']:,.0f} rows/s",
                        file=sys.stderr,
                    )
    return {
        "peer": {"name": PEER, "version": getattr(peer, "__version__", "unknown"), "pin": INSTALL},
        "spec": "ctr_movielens_dcn",
        "data": data.description,
        "train_rows": len(data.train),
        "epochs": epochs,
        "seeds": seeds,
        "threads": torch.get_num_threads(),
        "setup": setup,
        "peer_embedding_std": _peer_embedding_std(),
        "diagnostic_embedding_std": embedding_std,
        "peer_models": {
            "dcn_v2": f"DCN(cross_num={setup['cross_layers']}, cross_parameterization='matrix')",
            "deepfm": "DeepFM(use_fm=True)",
        },
        "scored": "test at the best validation-GAUC epoch, on both sides",
        "differences": list(DIFFERENCES),
        "models": list(models.values()),
    }


def _warm_up_peer(key: str, setup: dict[str, Any], data) -> None:
    """One untimed step of the peer's model (its first call pays torch's start-up costs)."""
    model = _peer_model(key, setup, seed=0)
    head = data.train.head(setup["batch_size"])
    with contextlib.redirect_stdout(io.StringIO()):
        model.fit(_peer_inputs(head), head.target, batch_size=setup["batch_size"], verbose=0)


# --- BENCHMARKS.md -------------------------------------------------------------------------
def summarise(model: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per library: mean and 95% t-interval of test AUC and GAUC over seeds, median rows/s."""
    out = {}
    for library in LIBRARIES:
        runs = [r for r in model["runs"] if r["library"] == library]
        if not runs:
            continue
        out[library] = {
            "auc": mean_interval([r["auc"] for r in runs]),
            "gauc": mean_interval([r["gauc"] for r in runs]),
            "rows_per_s": spread([r["rows_per_s"] for r in runs]),
            "selected_epochs": [r["selected_epoch"] for r in runs],
            "trained_params": runs[0]["trained_params"],
        }
    theirs = [r for r in model["runs"] if r["library"] == PEER]
    for library, name in (("rocketc", "difference"), (PEER_INIT, "diagnostic_difference")):
        mine = [r for r in model["runs"] if r["library"] == library]
        if mine and theirs:
            out[name] = {
                m: welch_interval([r[m] for r in mine], [r[m] for r in theirs])
                for m in ("auc", "gauc")
            }
    return out


def _interval(d: dict[str, float]) -> str:
    if d["low"] == float("-inf"):
        return f"{d['mean']:.4f} [n={d['n']}]"
    return f"{d['mean']:.4f} [{d['low']:.4f}, {d['high']:.4f}]"


def _points(d: dict[str, float]) -> str:
    if d["low"] == float("-inf"):
        return f"{d['mean'] * 100:+.2f} (one seed a side: no interval)"
    return f"{d['mean'] * 100:+.2f} [{d['low'] * 100:+.2f}, {d['high'] * 100:+.2f}]"


def parity(summary: dict[str, Any]) -> dict[str, Any]:
    """Where rocketc's mean test AUC lies against the peer's seed interval, and the rows/s
    ratio (medians): the issue's two targets for one model."""
    mine, theirs = summary["rocketc"], summary[PEER]
    auc, peer_auc = mine["auc"]["mean"], theirs["auc"]
    ratio = mine["rows_per_s"]["median"] / theirs["rows_per_s"]["median"]
    if peer_auc["n"] < 2:
        where, met = "not comparable (one peer seed, no interval)", None
    elif peer_auc["low"] <= auc <= peer_auc["high"]:
        where, met = "within", True
    else:
        where = "above" if auc > peer_auc["high"] else "below"
        met = where == "above"
    return {"auc_where": where, "auc_met": met, "speed": ratio, "speed_met": ratio >= 1}


def _epochs(n: int) -> str:
    return f"{n} epoch" + ("" if n == 1 else "s")


def render(results: dict[str, Any]) -> str:
    setup, peer = results["setup"], results["peer"]
    lines = [
        f"rocketc against {peer['name']} {peer['version']} (`{peer['pin']}`; not a rocketc "
        f"dependency). {results['data']}. Both libraries train the booster alone on the same "
        f"arrays: embedding {setup['embedding_dim']} per field, deep tower "
        f"{'x'.join(map(str, setup['tower']))}, {setup['optimizer'].capitalize()} lr "
        f"{setup['lr']:g}, batch {setup['batch_size']}, {_epochs(results['epochs'])}, "
        f"{results['threads']} torch thread(s), no L2, no dropout; scored on "
        f"{results['scored']}. Seeds {', '.join(map(str, results['seeds']))} on each side "
        "(not paired across libraries). Metrics: `rocketc.data.metrics` for both (AUC: "
        "scikit-learn; GAUC by user). Rows/s: training examples per second of the training "
        "loop alone (validation excluded), median over seeds. The issue's targets: rocketc's mean "
        "test AUC within the peer's seed interval (above it counts as met) and at least the "
        "peer's rows/s.",
        "",
    ]
    for model in results["models"]:
        summary = summarise(model)
        peer_model = results["peer_models"][model["key"]]
        lines += [
            f"### {model['label']} (DeepCTR-Torch: `{peer_model}`)",
            "",
            "| library | test AUC [95% CI] | test GAUC [95% CI] | train rows/s (median) | "
            "selected epochs | trained params |",
            "|---|---:|---:|---:|---|---:|",
        ]
        for library in LIBRARIES:
            row = summary.get(library)
            if row is None:
                continue
            name = library
            if library == PEER_INIT:
                std = results.get("diagnostic_embedding_std", results["peer_embedding_std"])
                name = f"*diagnostic: rocketc, embeddings drawn N(0, {std:g})*"
            lines.append(
                f"| {name} | {_interval(row['auc'])} | {_interval(row['gauc'])} | "
                f"{row['rows_per_s']['median']:,.0f} | "
                f"{', '.join(str(e) for e in row['selected_epochs'])} | "
                f"{row['trained_params']:,} |"
            )
        if "difference" in summary:
            p = parity(summary)
            d = summary["difference"]
            lines += [
                "",
                f"rocketc − {PEER} (Welch 95% interval, points): AUC {_points(d['auc'])}, "
                f"GAUC {_points(d['gauc'])}. rocketc's mean test AUC lies **{p['auc_where']}** "
                f"the peer's seed interval; its training rows/s are **{p['speed']:.2f}×** the "
                f"peer's ({'at least' if p['speed_met'] else 'fewer than'} the peer's).",
            ]
        if "diagnostic_difference" in summary:
            d = summary["diagnostic_difference"]
            lines += [
                "",
                f"Diagnostic (not a target row): the same rocketc model with only its "
                f"embedding tables drawn from N(0, "
                f"{results.get('diagnostic_embedding_std', results['peer_embedding_std']):g}), "
                f"minus {PEER}: AUC "
                f"{_points(d['auc'])}, GAUC {_points(d['gauc'])} points.",
            ]
        lines.append("")
    lines += ["What could not be made alike:", ""]
    lines += [f"- {d}" for d in results["differences"]]
    return "\n".join(lines) + "\n"


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 23: rocketc's DCN-v2 and DeepFM within the peer's seed interval on test AUC, and
    at least as many training rows/s. Above the interval counts as met (better than parity)."""
    auc, speed = [], []
    auc_met = speed_met = True
    for model in results["models"]:
        summary = summarise(model)
        if "difference" not in summary:
            continue
        p = parity(summary)
        auc.append(f"{model['label']} {p['auc_where']}")
        speed.append(f"{model['label']} {p['speed']:.2f}×")
        auc_met = None if auc_met is None or p["auc_met"] is None else auc_met and p["auc_met"]
        speed_met &= p["speed_met"]
    return [
        {
            "target": f"test AUC within {PEER}'s seed interval (DCN-v2, DeepFM)",
            "measured": "; ".join(auc) or "not measured",
            "met": auc_met if auc else None,
        },
        {
            "target": f"training rows/s ≥ {PEER}'s (DCN-v2, DeepFM)",
            "measured": "; ".join(speed) or "not measured",
            "met": speed_met if speed else None,
        },
    ]


if __name__ == "__main__":
    print(render(run(quick=True)))

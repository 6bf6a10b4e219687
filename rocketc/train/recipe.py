"""The one way rocketc trains and scores a model: `Recipe`.

A recipe trains a generated model on a dataset and scores the net `rocketc train` would ship:
batches in the spec's order (their own seeded generator), the generated `fit` with this
recipe's hooks, every trained net validated after every epoch, the epoch `train.select` chooses
kept (with its early stop), then those weights tested with the spec's eval batch.

`rocketc train` runs `TrainRecipe` (train.py): these phases plus a run directory, checkpoints,
DDP and the export. `rocketc ablate` (every row, `ablate.run_variant`) and `rocketc tune` (every
trial and verdict seed, `tune/runs.py`) run `Recipe` itself, in memory, so each number they
report is the test score of the epoch `train` would ship, never of the last epoch.

What is trained is a `Part`: the whole twin by default, or one net of it (ablate's single-net
rows), or a fresh light net beside a frozen teacher (its `kd` row).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from rocketc.compiler import Compiled
from rocketc.data import Dataset
from rocketc.errors import TrainError
from rocketc.train.batches import score_nets, train_loader
from rocketc.train.generated import Generated
from rocketc.train.history import summary_line
from rocketc.train.result import RunResult
from rocketc.train.select import check_scorable, selection_for
from rocketc.train.tracking import NONE, Tracker

__all__ = ["Diverged", "Part", "Recipe", "whole"]

# on_epoch(recipe) after each epoch's validation and selection; may raise to stop the run
# (tune's pruner does).
EpochHook = Callable[["Recipe"], None]


class Diverged(TrainError):
    """The loss went non-finite: the recipe cannot train this net."""


@dataclass
class Part:
    """What a run trains and scores.

    `module` is what the generated `fit` drives (it returns the light and the booster logits);
    its trainable parameters are optimized and its state is what the selected epoch keeps.
    `nets` are the nets scored on their own (light without the booster, as served); `select`
    names the one whose validation metric picks the shipped epoch.
    """

    module: torch.nn.Module
    nets: dict[str, torch.nn.Module] = field(default_factory=dict)
    select: str = "light"


def whole(model: torch.nn.Module) -> Part:
    """The twin as `rocketc train` trains it: both nets, the light net's epoch shipped."""
    return Part(model, {"light": model.light_net(), "booster": model.booster_net()})


class Recipe:
    """One run, one method per phase: data -> model -> optimizer -> epochs -> test.

    `part(model)` picks what is trained from the freshly seeded `RocketNet` (default `whole`).
    `gen` is the generated code (None: `load_code` makes it; then `compiled` is the spec).
    `seed` replaces the spec's `train.seed`. Subclasses (`TrainRecipe`, tests) override a
    phase; `save_best`/`load_selected` keep the selected weights in memory here, on disk there.
    """

    def __init__(
        self,
        gen: Generated | None,
        data: Dataset | None,
        *,
        compiled: Compiled | None = None,
        seed: int | None = None,
        part: Callable[[torch.nn.Module], Part] = whole,
        console: Console | None = None,
        label: str = "",
        verbose: bool = False,
        on_epoch: EpochHook | None = None,
        tracker: Tracker = NONE,
    ):
        self.gen, self.data = gen, data
        self.compiled = gen.compiled if gen is not None else compiled
        self.spec = self.compiled.spec
        self.seed = self.spec.train.seed if seed is None else seed
        self.make_part = part
        self.console = console or Console(stderr=True)
        self.label, self.verbose, self.on_epoch = label, verbose, on_epoch
        self.tracker = tracker  # where each epoch and the result are logged (tracking.py)
        self.history: list[dict[str, Any]] = []
        self.start_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None

    def run(self, test: bool = True) -> RunResult:
        """Train, keep the selected epoch, and (if `test`) score its weights on the test split."""
        self.setup_data()
        self.setup_model()
        self.setup_optimizer()
        started = time.perf_counter()
        self.train()
        seconds = time.perf_counter() - started
        self.load_selected()
        scores = self.evaluate(self.data.test) if test else {}
        summary = self.selection_summary()
        self.log_result(scores, summary)
        return RunResult(None, self.history, scores, seconds, {}, summary)

    def log_result(self, test: dict[str, dict[str, float]], summary: dict[str, Any]) -> None:
        """The test metrics of the selected epoch and which epoch it was, to the tracker."""
        values = {f"test/{net}/{m}": v for net, scores in test.items() for m, v in scores.items()}
        if summary.get("selected_epoch") is not None:
            values["shipped_epoch"] = summary["selected_epoch"]
        self.tracker.metrics(values, step=len(self.history))

    # --- setup ---------------------------------------------------------------------------------
    def setup_data(self) -> None:
        """The batch order (its own generator, so a resume replays it) and the selection."""
        self.shuffle = torch.Generator().manual_seed(self.seed)
        self.train_loader = self.batches()
        self.selection = selection_for(self.compiled, self.data.val.group is not None)
        check_scorable(self.selection, self.data.val)

    def batches(self):
        """The training batches: the split in memory, or a streamed table read every epoch
        (`TrainRecipe` gives each DDP rank its shard instead)."""
        split, size = self.data.train, self.spec.train.batch_size
        return train_loader(split, size, self.shuffle, self.spec.sample_weighted)

    def load_code(self) -> Generated:
        """The generated model.py/train.py this run executes (`TrainRecipe` renders them)."""
        return self.gen

    def setup_model(self) -> None:
        """The twins, seeded, on the spec's device; then what this run trains of them."""
        self.gen = self.load_code()
        self.settings = self.gen.train.Settings(seed=self.seed)
        self.device = device_for(self.gen, self.settings)
        torch.manual_seed(self.seed)
        torch.use_deterministic_algorithms(True, warn_only=True)
        self.model = self.gen.model.RocketNet().to(self.device)
        self.part = self.make_part(self.model)
        self.part.module.to(self.device)

    def setup_optimizer(self) -> None:
        """The spec's optimizer over what this run trains (a frozen teacher's weights are not)."""
        module = self.part.module
        trainable = [p for p in module.parameters() if p.requires_grad]
        if len(trainable) < len(list(module.parameters())):
            module = torch.nn.ParameterList(trainable)
        self.optimizer = self.gen.train.build_optimizer(module, self.settings)
        self.scheduler = self.gen.train.build_scheduler(self.optimizer, self.settings)

    # --- the loop ------------------------------------------------------------------------------
    def train(self) -> None:
        """The generated `fit`, with this recipe's hooks after every step and every epoch."""
        s = self.settings
        if self.selection.patience_spent:
            self.console.print(f"already stopped early after epoch {self.start_epoch}")
            return
        self.progress = EpochProgress(self.console, len(self.train_loader), s.epochs, self.label)
        self.progress.start(self.start_epoch + 1)
        module = self.distribute()
        try:
            with self.progress:
                self.gen.train.fit(
                    module,
                    self.train_loader,
                    s,
                    optimizer=self.optimizer,
                    scheduler=self.scheduler,
                    start_epoch=self.start_epoch,
                    on_epoch_end=self._on_epoch_end,
                    on_step=self.progress.step,
                )
        except _EarlyStop:
            sel = self.selection
            if self.verbose:
                self.console.print(
                    f"early stop after epoch {sel.last_epoch}: no better validation {sel.metric} "
                    f"in {sel.patience} epochs (best: epoch {sel.best_epoch})",
                    soft_wrap=True,
                )
        except FloatingPointError as exc:
            raise self.diverged(exc) from None

    def distribute(self) -> torch.nn.Module:
        """What `fit` drives: the part's module (`TrainRecipe` wraps it in DDP)."""
        return self.part.module

    def diverged(self, exc: FloatingPointError) -> Diverged:
        return Diverged(f"training stopped in epoch {len(self.history) + 1}: {exc}")

    def _on_epoch_end(self, epoch: int, train_losses: dict[str, float]) -> None:
        self.end_epoch(epoch + 1, train_losses)
        if self.on_epoch is not None:
            self.on_epoch(self)
        if self.selection.patience_spent and epoch + 1 < self.settings.epochs:
            raise _EarlyStop
        self.next_epoch(epoch + 1)

    def next_epoch(self, epoch: int) -> None:
        """Before 0-based `epoch` starts (`TrainRecipe` reseeds its shards here)."""
        if epoch < self.settings.epochs:
            self.progress.start(epoch + 1)

    def end_epoch(self, epoch: int, train_losses: dict[str, float]) -> None:
        """After epoch `epoch` (1-based): validate, select, keep the best, log."""
        record = self.epoch_record(epoch, train_losses)
        self.history.append(record)
        self.record_history()
        self.tracker.epoch(record)
        value = record["val"][self.part.select][self.selection.metric]
        improved = self.selection.update(epoch, value)
        self.after_epoch(epoch, improved)
        if self.verbose:
            line = summary_line(self.spec.task, record, self.settings.epochs, improved)
            self.console.print(line, soft_wrap=True)

    def epoch_record(self, epoch: int, train_losses: dict[str, float]) -> dict[str, Any]:
        return {
            "epoch": epoch,
            "lr": self.optimizer.param_groups[0]["lr"],
            "seconds": round(self.progress.elapsed(), 3),
            "train_loss": train_losses,
            "val": self.validate(),
        }

    def record_history(self) -> None:
        """After each epoch's record (`TrainRecipe` writes metrics.jsonl)."""

    def after_epoch(self, epoch: int, improved: bool) -> None:
        if improved:
            self.save_best()

    def validate(self) -> dict[str, dict[str, float]]:
        return self.evaluate(self.data.val)

    def evaluate(self, split) -> dict[str, dict[str, float]]:
        """Each scored net on its own, over a split, with the spec's eval batch."""
        bs = self.settings.eval_batch_size
        return score_nets(self.spec.task, self.gen, self.part.nets, split, bs, self.device)

    # --- the selected weights ------------------------------------------------------------------
    def save_best(self) -> None:
        self.best_state = copy.deepcopy(self.part.module.state_dict())

    def load_selected(self) -> None:
        """Put the selected epoch's weights back (no finite value in any epoch: keep the last)."""
        if self.best_state is not None:
            self.part.module.load_state_dict(self.best_state)

    def selection_summary(self) -> dict[str, Any]:
        return self.selection.summary(self.settings.epochs)

    def values(self, metric: str | None = None) -> list[float]:
        """The selecting net's validation `metric` (default the selection's) per epoch."""
        metric = metric or self.selection.metric
        return [r["val"][self.part.select][metric] for r in self.history]


class _EarlyStop(Exception):
    """Raised from the epoch hook when `train.select.patience` epochs passed without a gain."""


def device_for(gen: Generated, settings: Any) -> torch.device:
    device = gen.train.resolve_device(settings.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainError(
            "train.device is 'cuda' but no CUDA device is available; use --device cpu or auto"
        )
    if settings.precision == "bf16" and device.type != "cuda":
        raise TrainError("precision bf16 needs a CUDA device here; use fp32 on CPU")
    return device


class EpochProgress:
    """The epoch's stopwatch and its sign of life: a transient bar in a terminal; elsewhere
    (a log file, CI) a plain line every `LINE_EVERY` seconds within a long epoch."""

    LINE_EVERY = 30.0

    def __init__(self, console: Console, steps: int, epochs: int, label: str = ""):
        self.console, self.label = console, label
        self.terminal = console.is_terminal  # asked once: `step` runs on every batch
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not self.terminal,
        )
        self.task = self.bar.add_task("", total=steps, rate="")
        self.steps, self.epochs = steps, epochs
        self.started = self.last_line = time.perf_counter()
        self.seen = 0

    def _title(self, epoch: int) -> str:
        return f"{self.label} epoch {epoch}/{self.epochs}".strip()

    def start(self, epoch: int) -> None:
        self.epoch = epoch
        self.started, self.seen = time.perf_counter(), 0
        self.last_line = self.started
        # rich's reset replaces the task's fields with those passed: pass every one the columns
        # read, or the next redraw fails on the missing one.
        self.bar.reset(self.task, total=self.steps, description=self._title(epoch), rate="")

    def step(self, step: int, n: int) -> None:
        self.seen += n
        now = time.perf_counter()
        rate = self.seen / max(now - self.started, 1e-9)
        self.bar.update(self.task, completed=step + 1, rate=f"{rate:,.0f} ex/s")
        if not self.terminal and now - self.last_line >= self.LINE_EVERY:
            self.last_line = now
            done = 100 * (step + 1) / max(self.steps, 1)
            self.console.print(
                f"{self._title(self.epoch)}: {done:.0f}% of its batches, {rate:,.0f} ex/s, "
                f"{now - self.started:.0f}s",
                highlight=False,
                soft_wrap=True,
            )

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def __enter__(self) -> EpochProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)

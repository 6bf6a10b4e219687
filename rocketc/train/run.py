"""`rocketc train`: co-train the generated twins on the spec's data, then launch the light net.

`TrainRecipe.run` reads top to bottom: data -> model -> optimizer -> resume -> epoch loop (each
epoch: validate, select, checkpoint) -> test with the selected weights -> export. The run
directory holds everything needed to ship and to judge the light net: `run.json` (which run it
is and how far it got; `rundir` decides when a run may be resumed or replaced), per-epoch metrics
(JSONL, CSV, curves.png), a checksummed per-epoch `checkpoint.pt` for `--resume` (`checkpoint`),
`best.pt` (the weights of the epoch `train.select` chose), the exported light net of that
epoch (torch.export `light.pt2`, verified `light.onnx`) and report.json/report.md.

Under torchrun (`distributed`) every process runs this recipe with its `World`: it trains its
shard under DDP, validates on the whole split (gathered); ranks other than 0 write to scratch.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from rocketc.compiler import Compiled
from rocketc.data import Dataset, Split, load_data
from rocketc.data.metrics import evaluate
from rocketc.errors import TrainError
from rocketc.files import write_atomic
from rocketc.train import budget, checkpoint, distributed, rundir, streamload, tracking
from rocketc.train.batches import (
    batch_loader,
    eval_loader,
    evaluate_nets,
    predict_nets,
    tensors,
    train_loader,
)
from rocketc.train.generated import Generated, load_generated
from rocketc.train.history import NETS, final_table, plot, write_history
from rocketc.train.recipe import Diverged, Recipe
from rocketc.train.report import launch_light_net
from rocketc.train.result import RunResult

__all__ = [
    "RunResult",
    "TrainRecipe",
    "batch_loader",
    "eval_loader",
    "train_loader",
    "evaluate_nets",
    "predict_nets",
    "train_run",
]

CHECKPOINT, BEST = "checkpoint.pt", "best.pt"


def train_run(
    compiled: Compiled,
    out_dir: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    data: Dataset | None = None,
    console: Console | None = None,
    launch: bool = True,
    world: distributed.World = distributed.SINGLE,
) -> RunResult:
    """Train, select the best epoch, test it and (if `launch`) export it with its report.

    `out_dir` must not hold another run unless `resume` (continue it: same fingerprint only) or
    `overwrite` (replace it); see `rundir`.
    """
    options = {"resume": resume, "overwrite": overwrite, "data": data, "console": console}
    return TrainRecipe(compiled, out_dir, **options, world=world).run(launch)


class TrainRecipe(Recipe):
    """`Recipe` with a run directory: resume, checkpoints, DDP, the test table and the export.
    Tests subclass it to script or interrupt a phase."""

    def __init__(
        self,
        compiled: Compiled,
        out_dir: str | Path,
        *,
        resume: bool = False,
        overwrite: bool = False,
        data: Dataset | None = None,
        console: Console | None = None,
        world: distributed.World = distributed.SINGLE,
    ):
        self.out_dir = Path(out_dir)
        self.world = world
        if not world.is_main:  # the same recipe, writing to a scratch directory, printing nothing
            self._scratch = tempfile.TemporaryDirectory(prefix=f"rocketc-rank{world.rank}-")
            self.out_dir, console = Path(self._scratch.name), distributed.quiet_console()
        self.resume_requested, self.overwrite = resume, overwrite
        super().__init__(None, data, compiled=compiled, console=console, verbose=True)
        self.seconds_before = 0.0  # training time of earlier processes of this run
        self.extensions: list[dict[str, Any]] = []  # each `--resume --epochs N` that changed N

    def run(self, launch: bool = True) -> RunResult:
        budget.check_fits(self.compiled, self.spec.train.batch_size)
        # One writer per run directory, decided before its state is read (ranks > 0 write to
        # scratch directories of their own).
        lock = rundir.locked(self.out_dir) if self.world.is_main else contextlib.nullcontext()
        with lock:
            return self._run(launch)

    def _run(self, launch: bool) -> RunResult:
        self.plan = rundir.plan(self.out_dir, self.resume_requested, self.overwrite)
        if self.world.is_main:
            tracking.check_available(self.spec.train.track)  # before any data is read
        self.setup_data()
        self.setup_run_dir()
        if self.world.is_main:  # under DDP only rank 0 logs
            tags = {
                "rocketc.data_sha256": self.fingerprint["data"][:16],
                "rocketc.run": self.run_id,
            }
            self.tracker = tracking.open_tracker(self.compiled, self.out_dir, self.spec.name, tags)
        try:
            result = self._train_and_launch(launch)
        except BaseException:
            self.tracker.close(ok=False)
            raise
        self._log_files(result)
        self.tracker.close()
        return result

    def _log_files(self, result: RunResult) -> None:
        """The run's files, images and spec to the tracker, after the export wrote them."""
        out = self.out_dir
        compiled = self.compiled

        def diagram(directory: Path) -> Path:
            from rocketc.backends.viz import render

            return render(compiled, directory / "diagram.png")

        self.tracker.drawn_image("diagram", diagram)
        self.tracker.image("curves", out / "curves.png")
        self.tracker.text("spec", tracking.spec_text(self.compiled))
        names = ["report.md", "curves.png", "audit.json", "light.onnx", "preprocess.json"]
        self.tracker.files([out / name for name in names])

    def _train_and_launch(self, launch: bool) -> RunResult:
        with budget.allocating(self.compiled):
            self.setup_model()
        self.setup_optimizer()
        self.resume()
        for record in self.history:  # a resumed run's earlier epochs, for this tracker run
            self.tracker.epoch(record)
        self._started_here = started = time.perf_counter()
        self.console.print(
            f"[bold]{self.spec.name}[/]: {self.data.description}; device {self.device}"
            + (f", {torch.get_num_threads()} thread(s)" if self.device.type == "cpu" else "")
        )
        self.train()
        self._check_in_sync()
        seconds = self.seconds_before + time.perf_counter() - started  # a resumed run: all of it
        if not self.world.is_main:  # rank 0 tests and exports
            return RunResult(self.out_dir, self.history, {}, seconds, self.audit)
        self.load_selected()
        selection = self.selection_summary()
        test = self.evaluate(self.data.test)
        self.log_result(test, selection)
        result = RunResult(self.out_dir, self.history, test, seconds, self.audit, selection)
        result.extensions = self.extensions
        plot(self.out_dir / "curves.png", self.spec.task, self.history, selection["selected_epoch"])
        self.console.print(final_table(test, selection["selected_epoch"]))
        if launch:
            result.report = self.export(result)
            rundir.finish(self.out_dir, self.fingerprint)
        return result

    # --- setup ---------------------------------------------------------------------------------
    def setup_data(self) -> None:
        """The splits, the batch order (its own generator, so a resume replays it) and the
        selection metric (its default depends on the data: GAUC needs groups)."""
        if self.data is None:
            self.data = load_data(self.spec, self.compiled.source)
        super().setup_data()

    def batches(self):
        """Under DDP this rank's shard (its shuffle seeded per epoch), else `Recipe`'s."""
        if not self.world.distributed:
            return super().batches()
        train, size, w = self.data.train, self.spec.train.batch_size, self.world
        weighted, seed = self.spec.sample_weighted, self.spec.train.seed
        if not isinstance(train, Split):  # a streamed table: its shard, read by this rank
            distributed.check_batch_split(size, w.size)
            loader = streamload.shard_loader(
                train, size, w.rank, w.size, seed, weighted, train.workers
            )
            self.sampler = loader  # set_epoch reseeds its shuffle, as a sampler's
            return loader
        loader, self.sampler = distributed.shard_loader(tensors(train, weighted), size, w, seed)
        return loader

    def setup_run_dir(self) -> None:
        """Fingerprint the run. A resume must match run.json and have a sound checkpoint, else
        it is refused here, before anything is written; a new run clears an earlier one
        (--overwrite) and writes run.json."""
        self.fingerprint = rundir.fingerprint(self.compiled, self.data)
        self.run_id = rundir.fingerprint_id(self.fingerprint)
        self.checkpoint_state = None
        if self.plan.resume:
            rundir.check_resume(self.plan, self.fingerprint)
            self.checkpoint_state = self._read_checkpoint()
            if self.checkpoint_state is None:
                self.console.print(f"no {CHECKPOINT} in {self.out_dir}: starting from epoch 1")
            else:
                self._check_extension(int(self.checkpoint_state["epoch"]))
        elif self.resume_requested:
            self.console.print(f"nothing to resume in {self.out_dir}: starting a new run")
        rundir.begin(self.plan, self.fingerprint)
        self.checkpoint_state = self.world.from_main(self.checkpoint_state)  # rank 0's files

    def load_code(self) -> Generated:
        """Import the generated code into the run directory and prove its gradient block."""
        gen = load_generated(self.compiled, self.out_dir / "code")
        self.audit = _audit(self.compiled, self.out_dir)
        return gen

    def resume(self) -> None:
        """With the checkpoint `setup_run_dir` verified, continue after its epoch (metrics.jsonl
        is rebuilt from the history it carries); otherwise start clean."""
        state = self.checkpoint_state
        if state is not None:
            checkpoint.restore(state, self.model, self.optimizer, self.scheduler, self.shuffle)
            self.start_epoch = int(state["epoch"])
            self.selection.load_state_dict(state["selection"])
            self.history = list(state["history"])
            self.seconds_before = float(state.get("seconds", 0.0))
            self.extensions = list(state.get("extensions", []))
            self._repair_best()
            self._replan_schedule()
            self.console.print(
                f"resuming {self.spec.name} after epoch {self.start_epoch}/{self.settings.epochs}"
                f"; best so far: epoch {self.selection.best_epoch}"
            )
        else:
            for stale in ("metrics.jsonl", "metrics.csv", CHECKPOINT, BEST):
                (self.out_dir / stale).unlink(missing_ok=True)
        write_history(self.out_dir, self.history)

    # --- the loop ------------------------------------------------------------------------------
    def next_epoch(self, epoch: int) -> None:
        if self.world.distributed:
            distributed.begin_epoch(self.world, self.sampler, self.settings.seed, epoch)
        super().next_epoch(epoch)

    def distribute(self) -> torch.nn.Module:
        """One process: the model. Several: prove the gradient block through DDP, then wrap."""
        from rocketc.train.audit import audit_error, run_ddp_audit

        if not self.world.distributed:
            return self.model
        self.unused = distributed.unused_parameters(self.gen, self.settings.epochs)
        ddp_audit = run_ddp_audit(self.compiled, self.gen, self.world, bool(self.unused))
        if not ddp_audit.ok:
            raise audit_error(ddp_audit)
        distributed.begin_epoch(self.world, self.sampler, self.settings.seed, self.start_epoch)
        return distributed.wrap(self.model, self.world, find_unused=bool(self.unused))

    def diverged(self, exc: FloatingPointError) -> Diverged:
        kept = f"; last good checkpoint: {self.out_dir / CHECKPOINT}" if self.history else ""
        return Diverged(f"training stopped in epoch {len(self.history) + 1}: {exc}{kept}")

    def _check_in_sync(self) -> None:
        """Several processes: every rank must end with rank 0's weights; distributed.json."""
        if not self.world.distributed:
            return
        digests = distributed.in_sync(self.model, self.world)
        summary = {"unused_parameters": self.unused, "weights_sha256": digests}
        distributed.write_summary(self.out_dir, self.world, self.spec.train.batch_size, summary)

    def end_epoch(self, epoch: int, train_losses: dict[str, float]) -> None:
        """After epoch `epoch` (1-based): validate both nets, select, checkpoint, log."""
        super().end_epoch(epoch, self.world.mean(train_losses))

    def record_history(self) -> None:
        write_history(self.out_dir, self.history)

    def after_epoch(self, epoch: int, improved: bool) -> None:
        self.save_checkpoint(epoch)
        super().after_epoch(epoch, improved)

    def validate(self) -> dict[str, dict[str, float]]:
        """Both nets on the whole validation split (each rank predicts a shard; all gathered)."""
        if not self.world.distributed:
            return super().validate()
        split, w, bs = self.data.val, self.world, self.settings.eval_batch_size
        shard = predict_nets(self.gen, self.model, w.shard(split), bs, self.device)
        logits = {net: w.gather(torch.from_numpy(shard[net]), len(split)).numpy() for net in NETS}
        task = self.spec.task
        return {n: evaluate(task, logits[n], split.target, split.group, split.weight) for n in NETS}

    # --- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self, epoch: int) -> None:
        state = {
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "selection": self.selection.state_dict(),
            "history": self.history,
            "run": self.run_id,
            "seconds": self.seconds_before + self._seconds_here(),
            "extensions": self.extensions,
            "torch_rng": torch.get_rng_state(),
            "shuffle_rng": self.shuffle.get_state(),
        }
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        checkpoint.save(state, self.out_dir / CHECKPOINT)

    def save_best(self) -> None:
        """best.pt: the selected epoch's weights. Written after checkpoint.pt, which records the
        selection, so a kill in between leaves a checkpoint whose own weights are the best."""
        sel = self.selection
        state = {"epoch": sel.best_epoch, "metric": sel.metric, "value": sel.best_value}
        state = {**state, "run": self.run_id, "model": self.model.state_dict()}
        checkpoint.save(state, self.out_dir / BEST)

    # --- extending a run -----------------------------------------------------------------------
    def _check_extension(self, reached: int) -> None:
        """`--resume --epochs N` may extend a run (or cut it short), never below what it trained."""
        epochs = self.spec.train.epochs
        if epochs < reached:
            raise TrainError(
                f"{self.out_dir}: the run already trained {reached} epochs; resume it with "
                f"--epochs {reached} or more, or train again with --overwrite"
            )

    def _replan_schedule(self) -> None:
        """A new epoch budget: the learning-rate schedule is planned again over it, as if the run
        had been started with it, and continues from the epoch reached (said in the report)."""
        before, epochs = rundir.planned_epochs(self.plan), self.settings.epochs
        if before is None or before == epochs:
            return
        lr_before = self.optimizer.param_groups[0]["lr"]
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        with warnings.catch_warnings():  # stepping a fresh schedule before any optimizer step
            warnings.simplefilter("ignore")
            self.scheduler = self.gen.train.build_scheduler(self.optimizer, self.settings)
            for _ in range(self.start_epoch):
                self.scheduler.step()
        lr_after = self.optimizer.param_groups[0]["lr"]
        schedule = self.spec.train.schedule.name
        change = {"after_epoch": self.start_epoch, "epochs_from": before, "epochs_to": epochs}
        change |= {"schedule": schedule, "lr_from": lr_before, "lr_to": lr_after}
        self.extensions.append(change)
        self.console.print(
            f"{before} -> {epochs} epochs: the {schedule} schedule is planned "
            f"again over {epochs} epochs; epoch {self.start_epoch + 1} trains at lr "
            f"{lr_after:.2e} (was {lr_before:.2e})",
            highlight=False,
            soft_wrap=True,
        )

    def _seconds_here(self) -> float:
        """Training time of this process so far (earlier processes': `seconds_before`)."""
        return time.perf_counter() - self._started_here if hasattr(self, "_started_here") else 0.0

    def _read_checkpoint(self) -> dict[str, Any] | None:
        return checkpoint.read_for_resume(
            self.out_dir / CHECKPOINT, self.out_dir / BEST, self.run_id
        )

    def _repair_best(self) -> None:
        best_epoch = self.selection.best_epoch
        if (
            best_epoch is not None
            and checkpoint.best_epoch(self.out_dir / BEST, self.run_id) != best_epoch
        ):
            self.save_best()  # killed between checkpoint.pt and best.pt: the weights just loaded

    def load_selected(self) -> None:
        """Put the selected epoch's weights in the model (test, plot and export use them)."""
        if self.selection.best_epoch is None:
            return  # no finite validation value in any epoch: keep the last weights
        state = checkpoint.load(self.out_dir / BEST, checkpoint.RESTART)
        self.model.load_state_dict(state["model"])

    # --- export --------------------------------------------------------------------------------
    def export(self, result: RunResult) -> dict[str, Any]:
        """Launch the selected light net. A failure loses nothing: the error names the weights
        on disk (best.pt, checkpoint.pt) and `--resume` exports again without training."""
        best = self.out_dir / BEST
        kept = [f"{best} (epoch {self.selection.best_epoch})"] if best.exists() else []
        kept.append(str(self.out_dir / CHECKPOINT))
        model = self.model.cpu()
        return launch_light_net(self.compiled, model, self.data, result, self.console, kept)


def _audit(compiled: Compiled, out_dir: Path) -> dict[str, Any]:
    """Prove the gradient block on the generated model before spending time training it."""
    from rocketc.train.audit import audit_error, run_audit

    result = run_audit(compiled)
    if not result.ok:
        raise audit_error(result)
    summary = {"gradient_block": result.gradient_block, "ok": True, "matrix": result.matrix()}
    write_atomic(out_dir / "audit.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary

"""`rocketc tune`: search loss recipes with Optuna, then judge the best one on the test split.

A recipe with visible phases: open (or resume) the study, train light-alone with the search
seeds as the baseline, search, give the verdict, write the files. A trial compiles the spec
with its recipe, trains it with each seed through the generated `fit`, and scores the light
net alone on validation at its best epoch; the objective is the mean over seeds. After each
epoch the running mean is reported to Optuna as step `seed_index * epochs + epoch`, so the
median pruner stops a recipe that trails the other trials at the same point.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rocketc import files
from rocketc.compiler import Compiled, compile_source
from rocketc.compiler.load import Source
from rocketc.data import load_data
from rocketc.data.metrics import headline
from rocketc.errors import RocketcError, TuneError
from rocketc.experiments.tune import report
from rocketc.experiments.tune.book import book_params
from rocketc.experiments.tune.budget import Budget
from rocketc.experiments.tune.claim import Claim, claim, wait_for
from rocketc.experiments.tune.runs import (
    Diverged,
    RunOutcome,
    describe_runs,
    light_alone_compiled,
    train_once,
)
from rocketc.experiments.tune.space import (
    UNSET,
    Recipe,
    apply_recipe,
    default_space,
    load_space,
    sample_recipe,
    spec_params,
)
from rocketc.experiments.tune.storage import connect, open_study
from rocketc.experiments.tune.study import State, TuneResult, brief, recipe_of
from rocketc.experiments.tune.verdict import Verdict, run_verdict
from rocketc.train import tracking
from rocketc.train.generated import Generated, load_generated


@dataclass
class TuneOptions:
    trials: int = 30  # finished trials the study should hold (a resumed study runs the rest)
    seeds: int = 2  # seeds per trial; the objective is their mean
    timeout: float | None = None  # start no new trial after this many seconds
    storage: str | None = None  # Optuna storage URL; default sqlite:///<out>/study.db
    study: str | None = None  # study name; default the spec's name
    space: Path | None = None  # YAML file overriding the default search space
    verdict_seeds: int = 5  # paired seeds for the test verdict; 0 skips it
    overrides: list[str] = field(default_factory=list)  # the --set values, for the record


_ONE_WORKER = (
    "wait for it to finish, or give this worker its own -o (workers share a study through "
    "--storage and --study)"
)


class _BadRecipe(Exception):
    """The spec rejects this trial's recipe (recorded on the trial, which then fails)."""


class Tuner:
    def __init__(self, compiled: Compiled, out_dir: Path, options: TuneOptions, console: Console):
        self.compiled, self.spec = compiled, compiled.spec
        self.out_dir, self.options, self.console = Path(out_dir), options, console
        self.epochs = self.spec.train.epochs
        base = self.spec.train.seed
        self.seeds = [base + k for k in range(options.seeds)]
        self.verdict_seeds = [base + options.seeds + i for i in range(options.verdict_seeds)]
        self.space = (
            load_space(str(options.space), self.spec, self.epochs)
            if options.space is not None
            else default_space(self.spec, self.epochs)
        )
        self.storage_url = options.storage or f"sqlite:///{(self.out_dir / 'study.db').resolve()}"
        self.study_name = options.study or self.spec.name

    def run(self) -> TuneResult:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.storage = storage = self._connect()  # a bad URL fails before any data is read
        tracking.check_available(self.spec.train.track)
        # One worker per output directory; workers share a study through --storage instead.
        with files.locked(self.out_dir, _ONE_WORKER):
            return self._run(storage)

    def _run(self, storage: optuna.storages.RDBStorage) -> TuneResult:
        self._setup_data()
        self._open_study(storage)
        tags = {"rocketc.study": self.study_name, "rocketc.storage": self.storage_url}
        self.tracker = tracking.open_tracker(self.compiled, self.out_dir, "tune", tags)
        try:
            with tempfile.TemporaryDirectory(prefix=f"rocketc-tune-{self.spec.name}-") as tmp:
                self.code_dir = Path(tmp)
                self._baseline()
                interrupted = self._search()
                verdict = None if interrupted else self._verdict()
            result = self._write(verdict)
        except BaseException:
            self.tracker.close(ok=False)
            raise
        self._log_result(result)
        if interrupted:
            raise TuneError(
                f"interrupted; {result.out_dir} has the trials so far. Run the same command "
                "again to continue the study."
            )
        return result

    def _log_result(self, result: TuneResult) -> None:
        """The study's outcome on its tracker run: the verdict, the baseline, the files."""
        values = {"light_alone/val": self.baseline["mean"]}
        if result.best is not None:
            values["best/val"] = float(result.best.value)
        verdict = result.verdict
        if verdict is not None:
            mean, low, high = verdict.interval
            values |= {"verdict/mean": mean, "verdict/low": low, "verdict/high": high}
            self.tracker.text("verdict", verdict.text)
        self.tracker.metrics(values)
        self.tracker.files(list(result.files))
        self.tracker.close()

    # --- phases ------------------------------------------------------------------------------
    def _setup_data(self) -> None:
        # once per study: every run slices the same arrays
        self.data = load_data(self.spec, self.compiled.source)
        self.metric = headline(self.spec.task, self.data.val.group is not None)
        self.console.print(
            f"[bold]tune {self.spec.name}[/]: {self.data.description}; objective: light net's "
            f"validation {self.metric} at its best epoch, mean over seeds {self.seeds}, "
            f"{self.epochs} epoch(s) per run"
        )

    def _connect(self) -> optuna.storages.RDBStorage:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        return connect(self.storage_url)

    def _open_study(self, storage: optuna.storages.RDBStorage) -> None:
        """Create or join the study (storage.py: concurrent starts, killed trials), then queue
        the spec's own recipe and the book's in a study that has none yet."""
        pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=self.epochs // 2)
        shared = self.options.storage is not None
        opened = open_study(
            storage, self.storage_url, self.study_name, pruner, lambda t: self.console.print(t)
        )
        self.study = study = opened.study
        self._check_config()
        existing = len(study.get_trials(deepcopy=False))
        # Seeded by the trial count, so a resumed study does not redraw its first trials; with
        # a shared --storage also by the process, so parallel workers draw different ones.
        seed = self.spec.train.seed + existing + (os.getpid() if shared else 0)
        study.sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)
        if not opened.created and existing == 0 and not study.user_attrs.get("queued"):
            time.sleep(1.0)  # a process creating it at this moment queues them within ms
        if opened.created or (existing == 0 and not study.user_attrs.get("queued")):
            study.enqueue_trial(spec_params(self.space, self.spec), user_attrs={"origin": "spec"})
            # Then the recipes with evidence behind them (book.py), before the sampler's own.
            data = self.compiled.source.data
            entries = book_params(self.space, self.spec, data, self.epochs)
            for name, params in entries[: max(self.options.trials - 1, 0)]:  # within --trials
                study.enqueue_trial(params, user_attrs={"origin": f"book: {name}"})
            study.set_user_attr("queued", True)
        recovered = ""
        if opened.recovered:
            numbers = ", ".join(str(n) for n in opened.recovered)
            recovered = (
                f"; trial(s) {numbers} were killed mid-way: failed, their recipes queued again "
                "(once)"
            )
        self.console.print(
            f"study '{self.study_name}' in {self.storage_url}: {self._finished()} finished "
            f"trial(s) so far{recovered}"
        )

    def _check_config(self) -> None:
        """A resumed study must keep what makes its objective comparable across trials."""
        data = {k: v for k, v in self.compiled.source.data.items() if k != "loss"}
        config = {
            "spec": self.spec.name,
            "metric": self.metric,
            "epochs": self.epochs,
            "seeds": self.seeds,
            "fingerprint": hashlib.sha256(
                json.dumps(data, sort_keys=True, default=str).encode()
            ).hexdigest()[:16],
        }
        stored = self.study.user_attrs.get("config")
        if stored is None:
            self.study.set_user_attr("config", config)
            return
        changed = [
            f"{k} {stored.get(k)!r} there, {config[k]!r} here"
            for k in config
            if stored.get(k) != config[k]
        ]
        if changed:
            raise TuneError(
                f"study '{self.study_name}' in {self.storage_url} ran with other settings "
                f"({'; '.join(changed)}; fingerprint covers the spec outside `loss:`): resume "
                "with the same spec, --set, --epochs and --seeds, or name a new --study"
            )

    def _baseline(self) -> None:
        # Also the loss best.yaml gets when the verdict says to train the light net alone.
        self.alone_compiled = light_alone_compiled(self.compiled)
        self.alone_gen = self._load(self.alone_compiled, "light_alone")
        stored = self.study.user_attrs.get("light_alone")
        if stored is not None and stored["seeds"] == self.seeds:
            self.baseline = stored
        else:
            runs = []
            for seed in self.seeds:
                self.console.print(f"light alone, seed {seed} ...", end=" ")
                runs.append(train_once(self.alone_gen, self.data, seed, self.metric))
                self.console.print(f"{self.metric} {runs[-1].best:.4f}")
            self.baseline = describe_runs(runs)
            self.baseline["mean"] = statistics.fmean(self.baseline["values"])
            self.study.set_user_attr("light_alone", self.baseline)
        self.console.print(
            f"light alone: validation {self.metric} {self.baseline['mean']:.4f} (mean over "
            f"seeds {self.baseline['seeds']})"
        )

    def _search(self) -> bool:
        """Run the missing trials; True when interrupted (Ctrl-C)."""
        target, done = self.options.trials, self._finished()
        if done >= target:
            self.console.print(
                f"the study holds {done} finished trials (--trials {target}): nothing to search; "
                "raise --trials to add more"
            )
            return False
        self.progress = Progress(
            TextColumn("[bold]trials[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
            console=self.console,
            disable=not self.console.is_terminal,
        )
        self.task = self.progress.add_task("trials", total=target, completed=done, status="")
        try:
            with self.progress:
                self.study.optimize(
                    self._objective,
                    n_trials=target - done,
                    timeout=self.options.timeout,
                    callbacks=[self._after_trial],
                    catch=(_BadRecipe,),
                )
        except KeyboardInterrupt:
            return True
        return False

    def _verdict(self) -> Verdict | None:
        best = self._best()
        if best is None or not self.verdict_seeds:
            return None

        def stored(attrs: dict) -> Verdict | None:
            cached = attrs.get("verdict")
            found = None if cached is None else Verdict.from_json(cached)
            same = found is not None and (found.trial, found.seeds, found.metric) == (
                best.number,
                self.verdict_seeds,
                self.metric,
            )
            return found if same else None

        if (done := stored(self.study.user_attrs)) is not None:
            return done
        # Workers sharing the study: one runs the verdict, the others wait and read it.
        storage = self.storage
        who = f"pid {os.getpid()} on {socket.gethostname()}"
        ticket = claim(storage, self.study_name, who)
        if not ticket.won:
            say = lambda text: self.console.print(text)  # noqa: E731
            if (done := wait_for(self.study, storage, stored, say)) is not None:
                return done
            ticket = claim(storage, self.study_name, who)  # its worker died or gave up
        if ticket.won and (done := stored(self.study.user_attrs)) is not None:
            ticket.release()  # another worker stored the verdict and released just before
            return done
        try:
            return self._run_verdict(best, ticket)
        finally:
            ticket.release()

    def _run_verdict(self, best, ticket: Claim) -> Verdict:
        cached = self.study.user_attrs.get("verdict")
        earlier = None if cached is None else Verdict.from_json(cached)
        self.console.print(
            f"verdict: trial {best.number} against light alone on the test split, paired seeds "
            f"{self.verdict_seeds}"
        )
        gen = self._load(self._compile(recipe_of(best)), "verdict_best")

        def progress(text: str) -> None:
            ticket.beat()
            self.console.print(f"  {text}")

        verdict = run_verdict(
            best.number,
            gen,
            self.alone_gen,
            self.data,
            self.verdict_seeds,
            self.metric,
            progress=progress,
            earlier=earlier,  # more verdict seeds asked for: the seeds already run are kept
        )
        self.study.set_user_attr("verdict", verdict.to_json())
        return verdict

    def _write(self, verdict: Verdict | None) -> TuneResult:
        result = TuneResult(
            self.out_dir,
            self.study,
            self.storage_url,
            self.metric,
            self.baseline,
            self._best(),
            verdict,
            self._budget(verdict),
        )
        result.files = report.write_all(self, result)
        return result

    def _budget(self, verdict: Verdict | None) -> Budget | None:
        """Best epochs of every run trained: light alone, each complete trial (not one that
        reused a twin's score), each verdict seed (not one that diverged)."""
        best_epochs = list(self.baseline.get("best_epochs", []))
        for t in self.study.get_trials(deepcopy=False, states=(State.COMPLETE,)):
            if "duplicate_of" not in t.user_attrs:
                best_epochs += t.user_attrs.get("best_epochs", [])
        if verdict is not None:
            best_epochs += verdict.rocket_epochs + verdict.alone_epochs
        return Budget.of(self.epochs, best_epochs)

    # --- one trial -----------------------------------------------------------------------------
    def _objective(self, trial: optuna.Trial) -> float:
        recipe = sample_recipe(self.space, trial, self.spec, self.compiled.source.data)
        trial.set_user_attr("recipe", {k: None if v is UNSET else v for k, v in recipe.items()})
        twin = self._same_recipe(trial)
        if twin is not None:  # the sampler drew a recipe already trained: reuse its score
            trial.set_user_attr("duplicate_of", twin.number)
            for key, value in twin.user_attrs.items():
                if key not in ("recipe", "origin", "duplicate_of"):
                    trial.set_user_attr(key, value)
            if twin.state == State.PRUNED:  # pruned once: the same run would be pruned again
                raise optuna.TrialPruned()
            return float(twin.value)
        try:
            compiled = self._compile(recipe)
        except RocketcError as exc:
            trial.set_user_attr("error", str(exc))
            raise _BadRecipe(str(exc)) from None
        gen = self._load(compiled, f"trial_{trial.number}")
        runs: list[RunOutcome] = []
        params = {k: v for k, v in trial.user_attrs["recipe"].items() if v is not None}
        tracker = self.tracker.child(f"trial {trial.number}", params)
        try:
            for k, seed in enumerate(self.seeds):
                hook = self._report_hook(trial, k, sum(r.best for r in runs))
                seeded = tracker.prefixed(f"seed{seed}/")
                try:
                    runs.append(train_once(gen, self.data, seed, self.metric, hook, tracker=seeded))
                except Diverged as exc:
                    trial.set_user_attr("error", f"seed {seed} diverged in {exc}")
                    raise optuna.TrialPruned() from None
            value = statistics.fmean(r.best for r in runs)
            tracker.metrics({"objective": value})
        except optuna.TrialPruned:
            tracker.text("state", "pruned")
            tracker.close()
            raise
        except BaseException:
            tracker.close(ok=False)
            raise
        tracker.close()
        for key, recorded in describe_runs(runs).items():
            trial.set_user_attr(key, recorded)
        return value

    def _report_hook(self, trial: optuna.Trial, k: int, finished: float):
        """Per epoch of seed number `k`: report the running mean over seeds, maybe prune."""
        seed = self.seeds[k]

        def on_epoch(epoch: int, best: float) -> None:
            value = (finished + best) / (k + 1)
            self._status(f"trial {trial.number} seed {seed} epoch {epoch + 1}/{self.epochs}")
            if value == value:  # NaN: no finite value yet, nothing to compare
                trial.report(value, k * self.epochs + epoch)
            if trial.should_prune():
                trial.set_user_attr("pruned_at", f"seed {seed}, epoch {epoch + 1}")
                raise optuna.TrialPruned()

        return on_epoch

    def _after_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.progress.update(self.task, advance=1, status="")
        value = f"{trial.value:.4f}" if trial.value is not None else "-"
        note = trial.user_attrs.get("error") or trial.user_attrs.get("pruned_at") or ""
        self.console.print(
            f"trial {trial.number} {trial.state.name.lower()}: val {self.metric} {value} "
            f"(light alone {self.baseline['mean']:.4f})  {brief(recipe_of(trial))}"
            + (f"  [{note}]" if note else ""),
            soft_wrap=True,
            markup=False,
        )
        if self._finished() >= self.options.trials:
            study.stop()  # other workers on a shared study may have filled it already

    # --- helpers -------------------------------------------------------------------------------
    def _same_recipe(self, trial: optuna.Trial) -> optuna.trial.FrozenTrial | None:
        """A finished or pruned trial with exactly this trial's recipe (same seeds and epochs)."""
        recipe = trial.user_attrs["recipe"]
        done = (State.COMPLETE, State.PRUNED)
        for other in self.study.get_trials(deepcopy=False, states=done):
            if other.number != trial.number and other.user_attrs.get("recipe") == recipe:
                return other
        return None

    def _compile(self, recipe: Recipe) -> Compiled:
        data = apply_recipe(self.compiled.source.data, recipe)
        return compile_source(Source(data, self.compiled.source.source_map))

    def _load(self, compiled: Compiled, name: str) -> Generated:
        return load_generated(compiled, self.code_dir / name)

    def _status(self, text: str) -> None:
        self.progress.update(self.task, status=text)

    def _finished(self) -> int:
        """Trials that count toward --trials: complete, pruned, or failed on a bad recipe.

        A trial failed by a crash or Ctrl-C does not count: resuming runs it again.
        """
        return sum(
            1
            for t in self.study.get_trials(deepcopy=False)
            if t.state in (State.COMPLETE, State.PRUNED)
            or (t.state == State.FAIL and "error" in t.user_attrs)
        )

    def _best(self) -> optuna.trial.FrozenTrial | None:
        complete = self.study.get_trials(deepcopy=False, states=(State.COMPLETE,))
        return max(complete, key=lambda t: (t.value, -t.number)) if complete else None


def tune(
    compiled: Compiled,
    out_dir: str | Path,
    options: TuneOptions | None = None,
    console: Console | None = None,
) -> TuneResult:
    """Search, judge and write `best.yaml`, `trials.csv`, `report.md` (see the module doc)."""
    console = console or Console(stderr=True)
    return Tuner(compiled, Path(out_dir), options or TuneOptions(), console).run()

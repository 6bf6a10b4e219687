"""Experiment tracking: a run's epochs, results and files where teams already look.

`train.track` (or `--track`) picks the back end:

- `tensorboard`: event files under `<run dir>/tensorboard/` (a nested run: a sub-directory
  named for it): every logged loss term and metric per epoch for both nets (`train/<term>`,
  `val/<net>/<metric>`), the learning rate, the test metrics and the shipped epoch, images
  (the diagram, the curves) and texts (the spec).
- `mlflow`: one run in an MLflow store (`train.track_uri`; default `sqlite:///mlruns/mlflow.db`
  in the working directory, artifacts in `mlruns/artifacts/`): params = the spec after `--set`,
  flattened; metrics per epoch; tags = rocketc's version, the spec's and the data's hashes;
  artifacts = the run's report, curves, audit, light net and preprocessing. `tune`, `ablate` and
  `shrink` open one parent run and a nested run per trial or training.

Both are optional dependencies (`pip install 'rocketc[track]'`): without them, asking for one is
a one-line error naming the extra, raised before anything trains. `Tracker` (the base) logs
nothing, so callers never test which back end they hold.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import re
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rocketc import __version__
from rocketc.compiler import Compiled
from rocketc.errors import RocketcError

EXTRA = "pip install 'rocketc[track]'"
DEFAULT_MLFLOW_DIR = "mlruns"


class Tracker:
    """Logs nothing: the back ends override what they record."""

    def child(self, name: str, params: dict[str, Any] | None = None) -> Tracker:
        """A nested run (a trial of `tune`, a training of `ablate` or `shrink`)."""
        return self

    def epoch(self, record: dict[str, Any]) -> None:
        """One epoch's record as `Recipe` keeps it: train losses, lr, val metrics per net."""
        self.metrics(epoch_metrics(record), step=record["epoch"])

    def metrics(self, values: dict[str, float], step: int | None = None) -> None:
        pass

    def params(self, values: dict[str, Any]) -> None:
        pass

    def text(self, name: str, text: str) -> None:
        pass

    def image(self, name: str, path: Path) -> None:
        pass

    def drawn_image(self, name: str, draw: Callable[[Path], Path]) -> None:
        """An image that `draw(directory)` renders into a scratch directory, drawn only when a
        back end logs it (and off the training's thread); a failed drawing logs nothing."""
        if type(self).image is Tracker.image:
            return
        with tempfile.TemporaryDirectory(prefix="rocketc-track-") as tmp:
            try:
                path = draw(Path(tmp))
            except RocketcError:  # no graphviz: no diagram, no failure
                return
            self.image(name, path)

    def files(self, paths: list[Path]) -> None:
        pass

    def close(self, ok: bool = True) -> None:
        pass

    def prefixed(self, prefix: str) -> Tracker:
        """This run, with every metric key under `prefix` (a seed's epochs inside a trial)."""
        return _Prefixed(self, prefix) if self is not NONE else self


class _Prefixed(Tracker):
    def __init__(self, inner: Tracker, prefix: str):
        self.inner, self.prefix = inner, prefix

    def metrics(self, values: dict[str, float], step: int | None = None) -> None:
        self.inner.metrics({f"{self.prefix}{k}": v for k, v in values.items()}, step)


NONE = Tracker()


def epoch_metrics(record: dict[str, Any]) -> dict[str, float]:
    out = {f"train/{term}": float(v) for term, v in record.get("train_loss", {}).items()}
    for net, scores in record.get("val", {}).items():
        out.update({f"val/{net}/{metric}": float(v) for metric, v in scores.items()})
    if "lr" in record:
        out["lr"] = float(record["lr"])
    return out


def flat_spec(compiled: Compiled) -> dict[str, str]:
    """The spec after `--set` with every default filled in, flattened to dotted keys (layers
    and inputs by their id or name): MLflow's params."""
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, v in enumerate(value):
                walk(f"{prefix}.{v.get('id') or v.get('name') or i}", v)
        else:
            out[prefix] = json.dumps(value) if isinstance(value, list) else str(value)

    walk("", compiled.spec.model_dump(mode="json", by_alias=True, exclude_none=True))
    return out


def spec_text(compiled: Compiled) -> str:
    """The spec as compiled (after `--set`), as JSON text."""
    return json.dumps(compiled.source.data, indent=2, default=str)


def spec_hash(compiled: Compiled) -> str:
    text = json.dumps(compiled.source.data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_MODULES = {"tensorboard": "torch.utils.tensorboard", "mlflow": "mlflow.tracking"}


def check_available(kind: str) -> None:
    """The one-line error for a back end whose package is not installed (before training);
    when it is, its import starts on a thread of its own, so that its second or two overlap
    the data loading instead of delaying the training."""
    module = {"tensorboard": "tensorboard", "mlflow": "mlflow"}.get(kind)
    if module is None:
        return
    if importlib.util.find_spec(module) is None:
        raise RocketcError(f"train.track: {kind} needs the '{module}' package: {EXTRA}")
    threading.Thread(target=_import_quietly, args=(_MODULES[kind],), daemon=True).start()


def _import_quietly(module: str) -> None:
    with contextlib.suppress(Exception):  # a broken install is reported where it is used
        importlib.import_module(module)


def open_tracker(
    compiled: Compiled,
    run_dir: Path,
    name: str,
    tags: dict[str, str] | None = None,
) -> Tracker:
    """The spec's tracker for a run named `name` whose files live in `run_dir`."""
    kind = compiled.spec.train.track
    if kind == "none":
        return NONE
    check_available(kind)
    tags = {
        "rocketc.version": __version__,
        "rocketc.spec_hash": spec_hash(compiled),
        **(tags or {}),
    }
    params = flat_spec(compiled)

    def start() -> Tracker:
        if kind == "tensorboard":
            tracker: Tracker = TensorBoard(run_dir / "tensorboard")
            tracker.text("tags", "\n".join(f"{k}: {v}" for k, v in tags.items()))
        else:
            tracker = MLflow.start(compiled.spec.train.track_uri, compiled.spec.name, name, tags)
        tracker.params(params)
        return tracker

    return _Background(_Worker(kind), start)


# --- off the training's thread -----------------------------------------------------------------
class _Worker:
    """One thread that makes a back end's calls in the order they were made, so the training
    never waits on an import, a store's migrations or a write. A failure there stops the
    logging and is raised on the training's thread at its next call to the tracker (an
    unreachable store: at the first epoch), or at the end."""

    def __init__(self, kind: str):
        self.kind = kind
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rocketc-track")
        self.error: BaseException | None = None
        self.reported = False

    def submit(self, call: Callable[[], Any]) -> Future:
        return self.pool.submit(self._guarded, call)

    def _guarded(self, call: Callable[[], Any]) -> Any:
        if self.error is not None:
            return None
        try:
            return call()
        except BaseException as exc:  # noqa: BLE001 (raised on the caller's thread)
            self.error = exc
            return None

    def check(self) -> None:
        """Raise the back end's failure, once, on the calling thread."""
        if self.error is None or self.reported:
            return
        self.reported = True
        if isinstance(self.error, RocketcError):
            raise self.error
        reason = (str(self.error).strip().splitlines() or [type(self.error).__name__])[0][:200]
        raise RocketcError(f"train.track: {self.kind} failed: {reason}") from None

    def finish(self, ok: bool) -> None:
        self.pool.shutdown(wait=True)
        if ok:  # a failed training's own error is the one to show
            self.check()


class _Background(Tracker):
    """A back end driven from `_Worker`'s thread; what the training holds."""

    def __init__(self, worker: _Worker, make: Callable[[], Tracker], root: bool = True):
        self.worker, self.root = worker, root
        self.inner = worker.submit(make)

    def _call(self, method: str, *args: Any) -> None:
        self.worker.check()
        inner = self.inner
        self.worker.submit(lambda: getattr(inner.result(), method)(*args))

    def child(self, name: str, params: dict[str, Any] | None = None) -> Tracker:
        self.worker.check()
        inner = self.inner
        return _Background(self.worker, lambda: inner.result().child(name, params), root=False)

    def metrics(self, values: dict[str, float], step: int | None = None) -> None:
        self._call("metrics", dict(values), step)

    def params(self, values: dict[str, Any]) -> None:
        self._call("params", dict(values))

    def text(self, name: str, text: str) -> None:
        self._call("text", name, text)

    def image(self, name: str, path: Path) -> None:
        self._call("image", name, path)

    def drawn_image(self, name: str, draw: Callable[[Path], Path]) -> None:
        self._call("drawn_image", name, draw)

    def files(self, paths: list[Path]) -> None:
        self._call("files", list(paths))

    def close(self, ok: bool = True) -> None:
        inner = self.inner
        self.worker.submit(lambda: inner.result().close(ok))
        if self.root:
            self.worker.finish(ok)


# --- TensorBoard -------------------------------------------------------------------------------
class TensorBoard(Tracker):
    def __init__(self, log_dir: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = log_dir
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def child(self, name: str, params: dict[str, Any] | None = None) -> Tracker:
        child = TensorBoard(self.log_dir / _safe(name))
        if params:
            child.params(params)
        return child

    def metrics(self, values: dict[str, float], step: int | None = None) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, global_step=step)

    def params(self, values: dict[str, Any]) -> None:
        rows = "\n".join(f"| {k} | {v} |" for k, v in sorted(values.items()))
        self.writer.add_text("params", "| key | value |\n|---|---|\n" + rows)

    def text(self, name: str, text: str) -> None:
        self.writer.add_text(name, text)

    def image(self, name: str, path: Path) -> None:
        if not path.is_file():
            return
        import matplotlib.image

        pixels = matplotlib.image.imread(str(path))  # float in [0, 1], (H, W, C)
        self.writer.add_image(name, pixels[..., :3], dataformats="HWC")

    def close(self, ok: bool = True) -> None:
        self.writer.close()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", name)


# --- MLflow ------------------------------------------------------------------------------------
class MLflow(Tracker):
    def __init__(self, client: Any, experiment_id: str, run_id: str):
        self.client, self.experiment_id, self.run_id = client, experiment_id, run_id

    @classmethod
    def start(cls, uri: str | None, experiment: str, name: str, tags: dict[str, str]) -> MLflow:
        import logging

        from mlflow.tracking import MlflowClient

        logging.getLogger("mlflow").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        artifacts = None
        if uri is None:
            root = Path(DEFAULT_MLFLOW_DIR).resolve()
            root.mkdir(parents=True, exist_ok=True)
            uri = f"sqlite:///{root / 'mlflow.db'}"
            artifacts = (root / "artifacts").as_uri()
        try:
            client = MlflowClient(tracking_uri=uri)
            found = client.get_experiment_by_name(experiment)
            if found is not None:
                experiment_id = found.experiment_id
            else:
                experiment_id = client.create_experiment(experiment, artifact_location=artifacts)
            run = client.create_run(experiment_id, run_name=name, tags=tags)
        except Exception as exc:  # an unreachable or refused store: the user's setting
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise RocketcError(
                f"train.track_uri {uri}: cannot open the MLflow store ({reason})"
            ) from None
        return cls(client, experiment_id, run.info.run_id)

    def child(self, name: str, params: dict[str, Any] | None = None) -> Tracker:
        run = self.client.create_run(
            self.experiment_id, run_name=name, tags={"mlflow.parentRunId": self.run_id}
        )
        child = MLflow(self.client, self.experiment_id, run.info.run_id)
        if params:
            child.params(params)
        return child

    def metrics(self, values: dict[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(__import__("time").time() * 1000)
        batch = [
            Metric(_key(k), float(v), now, step or 0)
            for k, v in values.items()
            if v == v  # MLflow stores NaN, but a dashboard cannot plot it
        ]
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def params(self, values: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(_key(k), str(v)[:6000]) for k, v in values.items()]
        for start in range(0, len(items), 100):  # MLflow takes at most 100 params a call
            self.client.log_batch(self.run_id, params=items[start : start + 100])

    def text(self, name: str, text: str) -> None:
        self.client.log_text(self.run_id, text, f"{_safe(name)}.txt")

    def image(self, name: str, path: Path) -> None:
        if path.is_file():
            self.client.log_artifact(self.run_id, str(path))

    def files(self, paths: list[Path]) -> None:
        for path in paths:
            if path.is_file():
                self.client.log_artifact(self.run_id, str(path))

    def close(self, ok: bool = True) -> None:
        self.client.set_terminated(self.run_id, "FINISHED" if ok else "FAILED")


def _key(key: str) -> str:
    """MLflow keys: letters, digits, `_ - . / space`."""
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", key)

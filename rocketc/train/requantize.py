"""`rocketc export RUN --int8`: quantize an exported run's light net again, without training.

The run directory must hold a complete run whose light.onnx and report.json are the ones its
preprocess.json lists (a re-export never blesses a file changed since). The spec given must be
the run's (its fingerprint, the data's SHA-256 included, equals run.json's; the `export:`
section and the epoch budget aside), so calibration and the paired test metric read the run's
own validation and test rows. Then light.int8.onnx, the report's INT8 section (report.json and
report.md) and preprocess.json, last, are written again, under the run's lock.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console

from rocketc.compiler import Compiled
from rocketc.data import load_data
from rocketc.errors import TrainError
from rocketc.train import int8, rundir
from rocketc.train.report import write_report, write_serving_bundle


def requantize(compiled: Compiled, run_dir: str | Path, console: Console) -> dict[str, Any]:
    """Quantize run_dir's light.onnx again under `compiled`'s `export.int8` settings; return
    report.json's new INT8 section."""
    from rocketc.serve.bundle import MODEL, REPORT, check_files

    run_dir = Path(run_dir)
    with rundir.locked(run_dir):
        manifest = rundir.read_manifest(run_dir)
        if manifest is None or manifest["state"] != "complete":
            state = "no run.json" if manifest is None else f"a run in state {manifest['state']}"
            raise TrainError(
                f"{run_dir}: holds {state}, not a finished run; train it first (rocketc train "
                f"SPEC -o {run_dir}, or --resume)"
            )
        check_files(run_dir, (MODEL, REPORT))
        report = _read_report(run_dir / REPORT)
        data = load_data(compiled.spec, compiled.source)
        changes = rundir.differences(manifest["fingerprint"], rundir.fingerprint(compiled, data))
        if changes:
            raise TrainError(
                f"{run_dir}: the run was trained with other settings: {rundir.shown(changes)}. "
                "Give the spec (and --set values) it was trained with"
            )
        section = int8.int8_export(compiled.spec, run_dir, data, console, asked=True)
        report["int8"] = section
        files = [f for f in report.get("files", []) if f != int8.INT8_MODEL]
        if "file" in section:
            files.insert(files.index(MODEL) + 1 if MODEL in files else 0, int8.INT8_MODEL)
        report["files"] = files
        write_report(run_dir, report)
        write_serving_bundle(compiled, data, run_dir, console, section["default"])
    return section


def _read_report(path: Path) -> dict[str, Any]:
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TrainError(f"{path}: not readable JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(report, dict):
        raise TrainError(f"{path}: not a JSON object")
    return report

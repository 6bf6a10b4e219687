"""The serving bundle of a run: `light.onnx` + `preprocess.json`, checked, and scoring with it.

`write_bundle` (called by the export step) writes preprocess.json: the fitted preprocessing of
every input, what the label means, the spec/rocketc/onnx versions and the SHA-256 of light.onnx.
`load_bundle` refuses a bundle whose light.onnx does not have that hash, or whose inputs do not
match the model's, so a server never scores with preprocessing fitted for another model.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rocketc import __version__
from rocketc.data.preprocess import Preprocessor
from rocketc.errors import BundleError

BUNDLE = "preprocess.json"
MODEL = "light.onnx"
REPORT = "report.json"
SCORE_ROWS = 4096  # rows per onnxruntime call (see Bundle.predict)
_DTYPES = {
    "dense": "tensor(float)",
    "categorical": "tensor(int64)",
    "hashed": "tensor(int64)",
    "categorical_list": "tensor(int64)",
}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_bundle(run_dir: str | Path, preprocess: Preprocessor, spec: Any) -> Path:
    """Write run_dir/preprocess.json for the run's light.onnx (already exported)."""
    import onnx
    import onnxruntime

    run_dir = Path(run_dir)
    model_path = run_dir / MODEL
    model = onnx.load(str(model_path), load_external_data=False)
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    header = {
        "model": MODEL,
        "light_onnx_sha256": sha256(model_path),
        "spec": {"name": spec.name, "version": spec.version, "task": spec.task},
        "versions": {
            "rocketc": __version__,
            "onnx": onnx.__version__,
            "onnx_opset": opset,
            "onnxruntime": onnxruntime.__version__,
        },
    }
    path = run_dir / BUNDLE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(preprocess.dumps(header), encoding="utf-8")
    os.replace(tmp, path)
    return path


@dataclass
class Output:
    """Scores of n rows: binary -> P(label) (n,); multiclass -> (n, C) and the argmax (n,)."""

    probabilities: np.ndarray
    predicted: np.ndarray | None


@dataclass
class Bundle:
    run_dir: Path
    preprocess: Preprocessor
    header: dict[str, Any]  # preprocess.json's spec, versions and model hash
    session: Any  # onnxruntime.InferenceSession
    threads: int
    report: dict[str, Any] | None  # report.json when present (test metrics for /v1/metadata)

    @property
    def task(self) -> str:
        return self.preprocess.label["task"]

    def predict(self, inputs: dict[str, np.ndarray]) -> Output:
        """Run light.onnx on encoded inputs; probabilities in float64.

        Rows go through the model SCORE_ROWS at a time: onnxruntime keeps the largest batch's
        activations allocated for the session's life (its memory arena), and a wide net's are
        several kB per row, so one 65,536-row call held about 400 MB to the end of `predict`.
        """
        n = len(next(iter(inputs.values()))) if inputs else 0
        blocks = [
            self.session.run(None, {k: v[a : a + SCORE_ROWS] for k, v in inputs.items()})[0]
            for a in range(0, max(n, 1), SCORE_ROWS)
        ]
        logits = (blocks[0] if len(blocks) == 1 else np.concatenate(blocks)).astype(np.float64)
        if self.task == "binary":
            # sigmoid(x) = exp(-log(1 + exp(-x))): no overflow for any x.
            return Output(np.exp(-np.logaddexp(0.0, -logits.reshape(-1))), None)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return Output(shifted / shifted.sum(axis=1, keepdims=True), logits.argmax(axis=1))


def load_bundle(run_dir: str | Path, threads: int = 1) -> Bundle:
    """Load and check run_dir's bundle; BundleError says what is wrong and what to do."""
    import onnxruntime as ort

    run_dir = Path(run_dir)
    path, model_path = run_dir / BUNDLE, run_dir / MODEL
    for needed in (path, model_path):
        if not needed.is_file():
            raise BundleError(
                f"{needed}: missing; a run directory written by `rocketc train` holds "
                f"{MODEL} and {BUNDLE} (retrain, or re-run the export)"
            )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        preprocess = Preprocessor.from_dict(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(
            f"{path}: not a readable {BUNDLE} ({type(exc).__name__}: {exc})"
        ) from None
    if data.get("format") != 1:
        raise BundleError(f"{path}: bundle format {data.get('format')!r}; this rocketc reads 1")
    want, got = data.get("light_onnx_sha256"), sha256(model_path)
    if want != got:
        raise BundleError(
            f"{model_path}: SHA-256 {got[:16]}... does not match the {want and want[:16]}... "
            f"recorded in {BUNDLE}; the model was changed after training, so its preprocessing "
            "cannot be trusted: re-export the run or retrain"
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    _check_inputs(model_path, session, preprocess)
    report = None
    if (run_dir / REPORT).is_file():
        report = json.loads((run_dir / REPORT).read_text(encoding="utf-8"))
    header = {k: data[k] for k in ("model", "light_onnx_sha256", "spec", "versions") if k in data}
    return Bundle(run_dir, preprocess, header, session, threads, report)


def _check_inputs(model_path: Path, session: Any, preprocess: Preprocessor) -> None:
    model = {i.name: i.type for i in session.get_inputs()}
    bundle = {f.input: _DTYPES[f.kind] for f in preprocess.features}
    if model != bundle:
        raise BundleError(
            f"{model_path}: the model's inputs {model} differ from the bundle's {bundle}; "
            f"{BUNDLE} belongs to another model"
        )

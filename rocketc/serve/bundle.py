"""The serving bundle of a run: `light.onnx` + `preprocess.json` (+ `report.json`), checked.

`bundle_text` (written last by the export) is preprocess.json: the fitted preprocessing of
every input, what the label means, the spec/rocketc/onnx versions, the models it holds (FP32
`light.onnx`, and `light.int8.onnx` when quantized) and which one is served by default, and the
bundle's manifest: the SHA-256 of every other file `predict` and `serve` read (both models,
report.json), plus its own SHA-256 over the rest of preprocess.json. `load_bundle` checks them
all before anything else, whichever model is served, so an edited vocabulary, mean or model, a
torn or foreign file is refused with one line naming the file; then it holds the preprocessing
against the served model (consistency.py). Written last, the manifest makes an interrupted
export a run without a servable bundle, never a half-new one.

These are checksums, not signatures: whoever can write the run directory can write matching
digests. They catch damage and edits made without rocketc, not an attacker with write access.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rocketc import __version__
from rocketc.data.preprocess import Preprocessor, dumps_json
from rocketc.errors import BundleError
from rocketc.files import write_atomic
from rocketc.serve.consistency import check_consistency

BUNDLE = "preprocess.json"
MODEL = "light.onnx"
INT8_MODEL = "light.int8.onnx"
MODELS = {"fp32": MODEL, "int8": INT8_MODEL}  # `--model` -> its file
REPORT = "report.json"
MANIFEST_FORMAT = 2  # preprocess.json's "bundle": 1 (no manifest, rocketc before it), 2
COVERED = (MODEL, INT8_MODEL, REPORT)  # what the manifest may list: never a path from the file
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


def digest_of_document(data: dict[str, Any]) -> str:
    """preprocess.json's own SHA-256: of its JSON without the "sha256" key, keys sorted."""
    rest = {k: v for k, v in data.items() if k != "sha256"}
    text = json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def write_bundle(
    run_dir: str | Path, preprocess: Preprocessor, spec: Any, default_model: str = "fp32"
) -> Path:
    """Write run_dir/preprocess.json for the run's light.onnx, light.int8.onnx (when
    `default_model` is "int8" or the INT8 export kept it) and report.json, already written: the
    manifest covers every file of COVERED that is there. `default_model`: what `predict` and
    `serve` load without `--model`."""
    run_dir = Path(run_dir)
    covered = {
        name: (run_dir / name).read_bytes() for name in COVERED if (run_dir / name).is_file()
    }
    path = run_dir / BUNDLE
    write_atomic(path, bundle_text(covered, preprocess, spec, default_model))
    return path


def bundle_text(
    covered: dict[str, bytes], preprocess: Preprocessor, spec: Any, default_model: str = "fp32"
) -> str:
    """preprocess.json's text for the files of COVERED in `covered` (name -> bytes, light.onnx
    among them), before they are written: the export writes them all together."""
    import onnx
    import onnxruntime

    model = onnx.load_from_string(covered[MODEL])
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    manifest = {
        name: hashlib.sha256(covered[name]).hexdigest() for name in COVERED if name in covered
    }
    models = {kind: name for kind, name in MODELS.items() if name in manifest}
    if default_model not in models:
        raise ValueError(f"default model {default_model!r}: no {MODELS.get(default_model)}")
    header = {
        "model": MODEL,
        "bundle": MANIFEST_FORMAT,
        "manifest": manifest,
        "models": models,
        "default_model": default_model,
        "spec": {"name": spec.name, "version": spec.version, "task": spec.task},
        "versions": {
            "rocketc": __version__,
            "onnx": onnx.__version__,
            "onnx_opset": opset,
            "onnxruntime": onnxruntime.__version__,
        },
    }
    data = json.loads(preprocess.dumps(header))
    data["sha256"] = digest_of_document(data)
    return dumps_json(data) + "\n"


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
    # Which model `session` runs: {"model": "int8" | "fp32", "file", "default", "chosen_by"}.
    served: dict[str, Any] | None = None

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
        with np.errstate(invalid="ignore"):  # a NaN logit stays NaN: the callers refuse its row
            if self.task == "binary":
                # sigmoid(x) = exp(-log(1 + exp(-x))): no overflow for any x.
                return Output(np.exp(-np.logaddexp(0.0, -logits.reshape(-1))), None)
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            return Output(shifted / shifted.sum(axis=1, keepdims=True), logits.argmax(axis=1))


def load_bundle(run_dir: str | Path, threads: int = 1, model: str | None = None) -> Bundle:
    """Load and check run_dir's bundle; BundleError says what is wrong and what to do.

    `model`: "int8" or "fp32"; None serves the bundle's default (INT8 when it passed the
    export's bar, else FP32; FP32 in a bundle from before INT8). Every file the manifest lists
    is checked, whichever is served."""
    import onnx
    import onnxruntime as ort

    run_dir = Path(run_dir)
    path = run_dir / BUNDLE
    for needed in (path, run_dir / MODEL):
        if not needed.is_file():
            raise BundleError(
                f"{needed}: missing; a run directory written by `rocketc train` holds "
                f"{MODEL} and {BUNDLE} (retrain, or re-run the export)"
            )
    data = _read_json(path)
    _check_manifest(run_dir, path, data)
    served = _served(run_dir, path, data, model)
    model_path = run_dir / served["file"]
    try:
        preprocess = Preprocessor.from_dict(data)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise BundleError(
            f"{path}: not a readable {BUNDLE} ({type(exc).__name__}: {exc})"
        ) from None
    try:
        model = onnx.load(str(model_path), load_external_data=False)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # noqa: BLE001 (onnx/onnxruntime raise many types for a bad model)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise BundleError(f"{model_path}: onnxruntime cannot load it: {first}") from None
    _check_inputs(model_path, session, preprocess)
    check_consistency(path, model_path, model, preprocess)
    report = None
    if REPORT in data["manifest"]:
        report = _read_json(run_dir / REPORT)
    header = {k: data[k] for k in ("model", "manifest", "spec", "versions") if k in data}
    header["model"] = served["file"]
    return Bundle(run_dir, preprocess, header, session, threads, report, served)


def _served(run_dir: Path, path: Path, data: dict[str, Any], asked: str | None) -> dict[str, Any]:
    """Which model to load: `asked`, else the bundle's default (FP32 in a bundle from before
    INT8); a model the bundle does not hold is refused, naming how to make it."""
    models = data.get("models", {"fp32": MODEL})
    default = data.get("default_model", "fp32")
    if (
        not isinstance(models, dict)
        or not isinstance(default, str)
        or any(MODELS.get(k) != v or v not in data["manifest"] for k, v in models.items())
        or default not in models
    ):
        raise BundleError(
            f"{path}: its models {models!r} (default {default!r}) do not match its manifest"
        )
    kind = asked or default
    if kind not in models:
        raise BundleError(
            f"{run_dir / MODELS.get(kind, kind)}: this bundle holds no {kind.upper()} model "
            f"(it holds {', '.join(sorted(models))}); quantize it with `rocketc export "
            f"{run_dir} --int8 --spec SPEC`, or use --model {default}"
        )
    chosen_by = "--model" if asked else "the bundle's default"
    return {"model": kind, "file": models[kind], "default": default, "chosen_by": chosen_by}


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from `path`, or a BundleError naming the file (never a traceback)."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise BundleError(f"{path}: not readable JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise BundleError(f"{path}: not a JSON object")
    return data


def check_files(run_dir: str | Path, names: tuple[str, ...]) -> dict[str, Any]:
    """preprocess.json, its own digest checked, and the files of `names` its manifest lists:
    what a re-export builds on (it must not bless a file changed since the export)."""
    run_dir = Path(run_dir)
    path = run_dir / BUNDLE
    if not path.is_file():
        raise BundleError(f"{path}: missing; export the run first (rocketc train SPEC --resume)")
    data = _read_json(path)
    _check_manifest(run_dir, path, data, names)
    return data


def _check_manifest(
    run_dir: Path, path: Path, data: dict[str, Any], only: tuple[str, ...] = COVERED
) -> None:
    """preprocess.json's own digest, then every file its manifest lists (of `only`)."""
    if data.get("format") != 1:
        raise BundleError(f"{path}: bundle format {data.get('format')!r}; this rocketc reads 1")
    if "manifest" not in data:
        made = (data.get("versions") or {}).get("rocketc", "an older rocketc")
        raise BundleError(
            f"{path}: written by rocketc {made} without a manifest, so its preprocessing cannot "
            "be checked; re-export the run: rocketc train SPEC -o "
            f"{run_dir} --resume (exports again without training)"
        )
    manifest = data["manifest"]
    if data.get("sha256") != digest_of_document(data):
        raise BundleError(
            f"{path}: its contents do not match the SHA-256 recorded in it: the file was edited "
            "or damaged after export; re-export the run (rocketc train SPEC -o "
            f"{run_dir} --resume) or retrain"
        )
    if not isinstance(manifest, dict) or MODEL not in manifest or set(manifest) - set(COVERED):
        raise BundleError(f"{path}: its manifest must list {MODEL} (and only {COVERED})")
    for name, want in manifest.items():
        if name not in only:
            continue
        file = run_dir / name
        if not file.is_file():
            raise BundleError(f"{file}: missing; {BUNDLE}'s manifest lists it")
        got = sha256(file)
        if got != want:
            raise BundleError(
                f"{file}: SHA-256 {got[:16]}... does not match the {str(want)[:16]}... "
                f"recorded in {BUNDLE}; the file was changed after export, so the bundle cannot "
                f"be trusted: re-export the run (rocketc train SPEC -o {run_dir} --resume) or "
                "retrain"
            )


def _check_inputs(model_path: Path, session: Any, preprocess: Preprocessor) -> None:
    model = {i.name: i.type for i in session.get_inputs()}
    bundle = {f.input: _DTYPES[f.kind] for f in preprocess.features}
    if model != bundle:
        raise BundleError(
            f"{model_path}: the model's inputs {model} differ from the bundle's {bundle}; "
            f"{BUNDLE} belongs to another model"
        )

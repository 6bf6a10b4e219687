"""The INT8 light net: `light.int8.onnx`, quantized from light.onnx by onnxruntime, with its bill.

Every net is quantized statically in QDQ form: MatMul/Gemm (DENSE_OPS) for MLP towers; for a
net with convolutions also Conv and the pools, activations and reshapes between them
(STATIC_OPS); weights int8 per channel, activations uint8 with ranges calibrated (min/max) on
CALIBRATION_ROWS validation rows, preprocessed as the bundle preprocesses them. Static, not
dynamic, so that a row's score never depends on the rows scored with it (dynamic quantization
takes each call's activation range). Embedding tables (Gather) stay float: lookups, not
arithmetic.

The bill, beside FP32 and measured the same way in one go: size on disk; latency at 1 and 100
candidates (single thread; FP32 and INT8 interleaved round by round, the median of each); the
test metric of both ONNX models on the same test rows, their paired difference and how many
rows change their predicted class. The INT8 model is served by default only when its metric
drops by at most `export.int8.max_drop` (in the metric's own units) and it is faster: its
latency at 100 candidates at most `export.int8.max_latency_ratio` of FP32's; otherwise it is
kept and FP32 stays the default. A model onnxruntime cannot quantize (or run) costs one warning
line and leaves FP32 alone; the report says why.
"""

from __future__ import annotations

import contextlib
import logging
import math
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rocketc.data.metrics import evaluate, headline
from rocketc.errors import RocketcError
from rocketc.files import write_atomic
from rocketc.train.timing import median_ms

INT8_MODEL = "light.int8.onnx"  # rocketc.serve.bundle.INT8_MODEL
CALIBRATION_ROWS = 256
LATENCY_BATCHES = (1, 100)
ROUNDS, REPEATS = 3, 50  # interleaved FP32/INT8 rounds, calls per measurement
SCORE_ROWS = 4096  # test rows per onnxruntime call
LOWER_IS_BETTER = frozenset({"error", "ce", "logloss"})
# Static QDQ: the arithmetic, and the ops between it that onnxruntime runs on int8 directly, so
# the activations stay int8 from one conv to the next. Quantizing Conv/MatMul/Gemm alone left
# a Dequantize/Quantize pair around every pool: 2.4x FP32's time on fashion_mnist_cnn's light
# net at 100 candidates, against 1.2-1.7x with this list (hand measurements on a busy 2-core
# machine; onnxruntime's QLinearConv is itself slower there than its NCHWc float Conv).
# Gather (embeddings) stays float.
STATIC_OPS = (
    "Conv",
    "MatMul",
    "Gemm",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "Relu",
    "Clip",
    "Add",
    "Mul",
    "Concat",
    "Reshape",
    "Flatten",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Resize",
    "Split",
)
DENSE_OPS = ("MatMul", "Gemm")  # a net without convolutions


def int8_export(
    spec: Any, out_dir: Path, data: Any, console: Any, asked: bool = False
) -> dict[str, Any]:
    """Quantize out_dir/light.onnx, measure it beside FP32 and decide the default model.

    Returns report.json's "int8" section; never raises for a model onnxruntime cannot quantize
    or run (a warning line, FP32 only, the reason in the section). `asked` (`rocketc export
    --int8`) quantizes even when the spec's `export.int8.enabled` is false."""
    settings = spec.export.int8
    target = out_dir / INT8_MODEL
    if not (settings.enabled or asked):
        target.unlink(missing_ok=True)
        return {"status": "off", "default": "fp32", "why": "export.int8.enabled is false"}
    try:
        method = quantize(out_dir / "light.onnx", target, data.val)
        section = measure(spec, out_dir / "light.onnx", target, data)
    except RocketcError:  # the run directory's own trouble (a full disk): the export's error
        target.unlink(missing_ok=True)
        raise
    except Exception as exc:  # noqa: BLE001 (any failure of quantization leaves FP32 served)
        target.unlink(missing_ok=True)
        lines = str(exc).strip().splitlines()
        cause = f"{type(exc).__name__}: {lines[0][:200] if lines else ''}"
        console.print(
            f"warning: INT8 quantization failed ({cause}); serving FP32 only",
            highlight=False,
            soft_wrap=True,
        )
        return {"status": "failed", "default": "fp32", "why": f"quantization failed: {cause}"}
    section = {"method": method, "file": INT8_MODEL, **section}
    test = section["test"]
    ratio = section["latency_ratio"]["batch_100"]
    good = math.isfinite(test["drop"]) and test["drop"] <= settings.max_drop
    fast = math.isfinite(ratio) and ratio <= settings.max_latency_ratio
    passed = good and fast
    section["default"] = "int8" if passed else "fp32"
    section["status"] = "default" if passed else "not_default"
    section["why"] = (
        f"test {test['metric']} {test['int8']:.4f} (INT8) vs {test['fp32']:.4f} (FP32): a drop "
        f"of {test['drop']:.4f}, {'within' if good else 'beyond'} export.int8.max_drop "
        f"{settings.max_drop}; latency at 100 candidates {ratio:.2f}x FP32's, "
        f"{'within' if fast else 'above'} export.int8.max_latency_ratio "
        f"{settings.max_latency_ratio}"
        + ("" if passed else f"; {INT8_MODEL} is kept, FP32 stays the default")
    )
    console.print(
        f"INT8: {INT8_MODEL} ({method.split(':')[0]}), {ratio:.2f}x FP32's latency at 100 "
        f"candidates; {section['why']}",
        highlight=False,
        soft_wrap=True,
    )
    return section


def quantize(fp32: Path, out: Path, calibration: Any) -> str:
    """Write `out`, the INT8 form of `fp32`; return how it was quantized, in words."""
    import onnx
    from onnxruntime import quantization as q

    model = onnx.load(str(fp32), load_external_data=False)
    convolutional = any(node.op_type == "Conv" for node in model.graph.node)
    names = [i.name for i in model.graph.input]
    with tempfile.TemporaryDirectory(prefix="rocketc-int8-") as tmp, _quiet():
        staged = Path(tmp) / INT8_MODEL
        # Static for every net: activation ranges calibrated once, so a row's score never
        # depends on the rows scored with it. Dynamic quantization (ranges taken per call) made
        # `predict`'s chunked scores differ from one call over the same rows by up to 2e-4:
        # a served score must not depend on its batch-mates.
        rows = calibration.head(CALIBRATION_ROWS)
        q.quantize_static(
            str(fp32),
            str(staged),
            _Calibration(rows.inputs, names),
            quant_format=q.QuantFormat.QDQ,
            op_types_to_quantize=list(STATIC_OPS if convolutional else DENSE_OPS),
            per_channel=True,
            activation_type=q.QuantType.QUInt8,
            weight_type=q.QuantType.QInt8,
            calibrate_method=q.CalibrationMethod.MinMax,
        )
        what = "Conv, MatMul, Gemm and the ops between them" if convolutional else "MatMul, Gemm"
        method = (
            f"static QDQ: {what}; int8 weights per channel, uint8 activations calibrated on "
            f"{len(rows)} validation rows"
        )
        write_atomic(out, staged.read_bytes())
    return method


class _Calibration:
    """onnxruntime's CalibrationDataReader over validation rows, 32 at a time."""

    def __init__(self, inputs: dict[str, np.ndarray], names: list[str], batch: int = 32):
        n = len(next(iter(inputs.values())))
        self._feeds = [
            {name: np.ascontiguousarray(inputs[name][a : a + batch]) for name in names}
            for a in range(0, n, batch)
        ]
        self._next = iter(self._feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._next, None)

    def rewind(self) -> None:
        self._next = iter(self._feeds)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """onnxruntime.quantization logs advice (pre-processing, ...) through the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def measure(spec: Any, fp32: Path, int8: Path, data: Any) -> dict[str, Any]:
    """Size, interleaved latency and the paired test metric of the two ONNX models."""
    sessions = {"fp32": _session(fp32), "int8": _session(int8)}
    latency = _latency(sessions, data.val.head(256).inputs)
    return {
        "size_bytes": {"fp32": fp32.stat().st_size, "int8": int8.stat().st_size},
        "latency_ms": latency,
        "latency_ratio": {
            key: round(latency["int8"][key] / latency["fp32"][key], 3) for key in latency["fp32"]
        },
        "latency_note": (
            f"median wall time of one onnxruntime call, single thread, after warm-up; FP32 and "
            f"INT8 interleaved over {ROUNDS} rounds of {REPEATS} calls, median of the rounds"
        ),
        "test": _paired_test(spec, sessions, data.test),
    }


def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _rows(inputs: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """The first `n` rows of every input, repeating rows of a smaller sample."""
    out = {}
    for name, array in inputs.items():
        reps = -(-n // len(array))
        out[name] = np.ascontiguousarray(np.concatenate([array] * reps)[:n])
    return out


def _latency(sessions: dict[str, Any], inputs: dict[str, np.ndarray]) -> dict[str, Any]:
    rounds: dict[str, dict[str, list[float]]] = {k: {} for k in sessions}
    for b in LATENCY_BATCHES:
        feed = _rows(inputs, b)
        for _ in range(ROUNDS):
            for kind, session in sessions.items():
                fn = lambda s=session, f=feed: s.run(None, f)  # noqa: E731
                rounds[kind].setdefault(f"batch_{b}", []).append(median_ms(fn, REPEATS))
    return {
        kind: {key: round(statistics.median(v), 4) for key, v in by_batch.items()}
        for kind, by_batch in rounds.items()
    }


def _paired_test(spec: Any, sessions: dict[str, Any], test: Any) -> dict[str, Any]:
    """Both models' test metric on the same rows, the paired difference and the rows whose
    predicted class changes."""
    logits: dict[str, list[np.ndarray]] = {k: [] for k in sessions}
    for inputs in _chunks(test):
        for kind, session in sessions.items():
            logits[kind].append(session.run(None, inputs)[0])
    scores = {k: np.concatenate(v).astype(np.float64) for k, v in logits.items()}
    group, weight = getattr(test, "group", None), getattr(test, "weight", None)
    metric = spec.train.select.metric or headline(spec.task, group is not None)
    values = {
        k: float(evaluate(spec.task, v, test.target, group, weight)[metric])
        for k, v in scores.items()
    }
    difference = values["int8"] - values["fp32"]
    if spec.task == "multiclass":
        changed = scores["int8"].argmax(axis=1) != scores["fp32"].argmax(axis=1)
    else:
        changed = (scores["int8"].reshape(-1) > 0) != (scores["fp32"].reshape(-1) > 0)
    return {
        "metric": metric,
        "rows": int(len(scores["fp32"])),
        "fp32": values["fp32"],
        "int8": values["int8"],
        "difference": difference,  # INT8 - FP32, paired: the same rows
        "drop": difference if metric in LOWER_IS_BETTER else 0.0 - difference,
        "predictions_changed": int(changed.sum()),
        "max_abs_logit_diff": float(np.max(np.abs(scores["int8"] - scores["fp32"]))),
    }


def _chunks(split: Any) -> Iterator[dict[str, np.ndarray]]:
    """The split's inputs, SCORE_ROWS rows at a time (a streamed split: read from its file)."""
    if hasattr(split, "blocks"):
        for inputs, _target, _weight in split.blocks():
            yield inputs
        return
    for a in range(0, len(split), SCORE_ROWS):
        yield {k: np.ascontiguousarray(v[a : a + SCORE_ROWS]) for k, v in split.inputs.items()}


def markdown_lines(section: dict[str, Any] | None) -> list[str]:
    """report.md's INT8 paragraph."""
    if not section:
        return []
    if section["status"] in ("off", "failed"):
        return ["", f"INT8: none ({section['why']}); FP32 `light.onnx` is served."]
    size, lat, test = section["size_bytes"], section["latency_ms"], section["test"]
    lines = [
        "",
        f"## INT8: `{INT8_MODEL}` ({section['method']})",
        "",
        "| | FP32 `light.onnx` | INT8 | INT8 vs FP32 |",
        "|---|---:|---:|---:|",
        f"| size on disk (bytes) | {size['fp32']:,} | {size['int8']:,} | "
        f"{size['int8'] / size['fp32']:.2f} |",
    ]
    for key, ratio in section["latency_ratio"].items():
        b = key.removeprefix("batch_")
        lines.append(
            f"| latency onnxruntime, batch {b} (ms) | {lat['fp32'][key]} | {lat['int8'][key]} | "
            f"{ratio:.2f} |"
        )
    lines += [
        f"| test {test['metric']} ({test['rows']:,} rows) | {test['fp32']:.4f} | "
        f"{test['int8']:.4f} | {test['difference']:+.4f} |",
        "",
        f"Served by default: **{section['default'].upper()}**: {section['why']}. "
        f"{test['predictions_changed']:,} of {test['rows']:,} test rows change their predicted "
        f"class. Latency: {section['latency_note']}.",
    ]
    return lines

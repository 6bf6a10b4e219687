"""Launch the light net: export it without the booster, verify the export, measure its cost.

The model it is given carries the weights of the epoch `train.select` chose. Writes `light.pt2`
(a torch.export program; torch names these .pt2), `light.onnx` (checked against PyTorch on real
validation rows with onnxruntime), `light.int8.onnx` (its INT8 quantization, `int8.py`, unless
`export.int8.enabled` is false), `light_state_dict.pt` (for `LightNet().load_state_dict`), and
report.json / report.md with parameter counts, multiply-accumulates per example, latencies, the
test metrics, and which epoch was shipped and why.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from rocketc.compiler import Compiled
from rocketc.data import Dataset, Split
from rocketc.errors import RocketcError, TrainError
from rocketc.files import write_atomic, write_atomic_all
from rocketc.train import int8
from rocketc.train.checkpoint import torch_bytes
from rocketc.train.result import RunResult
from rocketc.train.timing import median_ms

ONNX_TOLERANCE = 1e-5
LATENCY_BATCHES = (1, 100)


def launch_light_net(
    compiled: Compiled,
    model: torch.nn.Module,
    data: Dataset,
    result: RunResult,
    console: Console,
    kept: Sequence[str] = (),
) -> dict[str, Any]:
    """Export the light net of `model`, verify and measure it, write report.json/md.

    Any failure becomes a TrainError that names the weights already on disk (`kept`, plus
    light_state_dict.pt, the first file written here) and says how to retry; the traceback goes
    to export_error.log for a bug report.
    """
    try:
        return _launch(compiled, model, data, result, console)
    except Exception as exc:  # noqa: BLE001 (whatever broke, the trained weights must be named)
        raise _export_failed(exc, result.out_dir, kept) from None


def _export_failed(exc: Exception, out_dir: Path, kept: Sequence[str]) -> TrainError:
    log = out_dir / "export_error.log"
    try:
        write_atomic(log, "".join(traceback.format_exception(exc)))
        details = f"; details in {log}"
    except RocketcError:  # the disk is full: the one line below says so
        details = ""
    if isinstance(exc, RocketcError):
        cause = "; ".join(str(d) if d.file else d.message for d in exc.diagnostics)
    else:
        lines = str(exc).strip().splitlines()
        cause = f"{type(exc).__name__}: {lines[0][:200] if lines else ''}"
    state_dict = out_dir / "light_state_dict.pt"
    weights = [*kept, *([f"{state_dict} (the light net)"] if state_dict.exists() else [])]
    return TrainError(
        f"export failed: {cause}. The trained weights are kept in {', '.join(weights)}"
        f"{details}. Fix the cause, then run the same command with --resume to export again "
        "without training"
    )


def _launch(
    compiled: Compiled, model: torch.nn.Module, data: Dataset, result: RunResult, console: Console
) -> dict[str, Any]:
    out_dir = result.out_dir
    model.eval()
    light = model.light_net().eval()
    booster = model.booster_net().eval()
    sample = data.val.head(256)  # in memory, even from a streamed table
    names = list(sample.inputs)
    # Real validation rows, at least 2 (a 1-row split repeats its row): with a batch of 1,
    # torch.export would specialise the batch dimension instead of keeping it dynamic.
    rows = _batch(sample, max(2, min(len(sample), 256)))

    # The trained light net first, on its own: an export that fails later names it. Then every
    # file is made in memory (INT8 in a staging directory: onnxruntime quantizes files) and all
    # are written together, the bundle last (files.write_atomic_all): a full disk replaces none
    # of them, so an earlier export stays whole and servable.
    write_atomic(out_dir / "light_state_dict.pt", torch_bytes(light.state_dict()))
    export: dict[str, bytes | str] = {}
    program = export_program(light, rows, names)
    export["light.pt2"] = program_bytes(program)
    _check_no_booster(light, program.state_dict)
    export["light.onnx"], onnx_diff = onnx_bytes(light, rows, names)
    console.print(f"exported light.pt2 and light.onnx (onnxruntime max |diff| {onnx_diff:.2e})")

    # Only timed, never shipped (nor written): no equality gate on it.
    booster_onnx, _ = onnx_bytes(booster, rows, names, output="booster_logits", verify=False)
    latency = {
        "pytorch": {
            net: torch_latency(m, sample) for net, m in (("light", light), ("booster", booster))
        },
        "onnxruntime": {
            net: ort_latency(model, sample)
            for net, model in (("light", export["light.onnx"]), ("booster", booster_onnx))
        },
    }
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out_dir) as staging:
        write_atomic(Path(staging) / "light.onnx", export["light.onnx"])
        quantized = int8.int8_export(compiled.spec, Path(staging), data, console)
        if "file" in quantized:
            export[int8.INT8_MODEL] = (Path(staging) / int8.INT8_MODEL).read_bytes()
    counts = compiled.param_counts()
    report = {
        "spec": compiled.spec.name,
        "task": compiled.spec.task,
        "epochs": len(result.history),
        "selection": result.selection,
        "train_seconds": round(result.seconds, 2),
        "extensions": result.extensions,
        "params": counts,
        "macs_per_example": {"light": macs(light, sample), "booster": macs(booster, sample)},
        "latency_ms": latency,
        "latency_note": "Latency: median wall time of one forward, single thread, after warm-up",
        "test": result.test,
        "onnx_max_abs_diff": onnx_diff,
        "gradient_audit": result.audit,
        "int8": quantized,
        "files": [
            "light.pt2",
            "light.onnx",
            *([int8.INT8_MODEL] if "file" in quantized else []),
            "preprocess.json",
            "light_state_dict.pt",
            "code/model.py",
        ],
    }
    export["report.json"] = json.dumps(report, indent=2, sort_keys=True) + "\n"
    export["report.md"] = render_markdown(report)
    # Last: preprocess.json's manifest covers the models and report.json as written here, so an
    # export cut short (a kill between renames) never leaves a bundle that mixes runs.
    export["preprocess.json"] = _bundle(compiled, data, export, quantized["default"])
    write_atomic_all({out_dir / name: content for name, content in export.items()})
    if int8.INT8_MODEL not in export:  # an earlier run's, listed by no manifest now
        (out_dir / int8.INT8_MODEL).unlink(missing_ok=True)
    _said_bundle(out_dir / "preprocess.json", quantized["default"], console)
    console.print(f"report: {out_dir / 'report.md'}")
    return report


def _bundle(
    compiled: Compiled, data: Dataset, export: dict[str, bytes | str], default_model: str
) -> str:
    """preprocess.json for the files in `export`, before they are written."""
    from rocketc.data.preprocess import identity
    from rocketc.serve.bundle import COVERED, bundle_text

    preprocess = data.preprocess or identity(compiled.spec)  # hand-made data: inputs as given
    covered = {
        name: content.encode() if isinstance(content, str) else content
        for name, content in export.items()
        if name in COVERED
    }
    return bundle_text(covered, preprocess, compiled.spec, default_model)


def write_report(out_dir: Path, report: dict[str, Any]) -> None:
    write_atomic(out_dir / "report.json", json.dumps(report, indent=2, sort_keys=True) + "\n")
    write_atomic(out_dir / "report.md", render_markdown(report))


def write_serving_bundle(
    compiled: Compiled, data: Dataset, out_dir: Path, console, default_model: str = "fp32"
) -> None:
    """preprocess.json beside light.onnx: with it, `rocketc predict`/`serve` need nothing else."""
    from rocketc.data.preprocess import identity
    from rocketc.serve.bundle import write_bundle

    preprocess = data.preprocess or identity(compiled.spec)  # hand-made data: inputs as given
    path = write_bundle(out_dir, preprocess, compiled.spec, default_model)
    _said_bundle(path, default_model, console)


def _said_bundle(path: Path, default_model: str, console) -> None:
    served = "light.int8.onnx" if default_model == "int8" else "light.onnx"
    console.print(
        f"wrote {path}: with the models and report.json, all predict/serve read (their SHA-256 "
        f"in its manifest); served by default: {served}",
        soft_wrap=True,
    )


def _rows(split: Split, n: int) -> tuple[torch.Tensor, ...]:
    """The first `n` real rows of a split, as the net's positional inputs."""
    return tuple(torch.from_numpy(np.ascontiguousarray(a[:n])) for a in split.inputs.values())


def _batch(split: Split, n: int) -> tuple[torch.Tensor, ...]:
    rows = _rows(split, n)
    if len(rows[0]) < n:  # a tiny split: repeat rows to reach the batch size
        reps = -(-n // len(rows[0]))
        rows = tuple(r.repeat(reps, *([1] * (r.dim() - 1)))[:n] for r in rows)
    return rows


def export_program(net: torch.nn.Module, rows: tuple[torch.Tensor, ...], names: list[str]):
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    shapes = {name: {0: batch} for name in names}
    return torch.export.export(net, rows, dynamic_shapes=shapes)


def program_bytes(program) -> bytes:
    """`torch.export.save(program)` into memory (the .pt2 archive)."""
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    return buffer.getvalue()


def export_onnx(
    net: torch.nn.Module,
    rows: tuple[torch.Tensor, ...],
    names: list[str],
    path: Path,
    output: str = "light_logits",
    verify: bool = True,
) -> float:
    """`onnx_bytes`, written to `path` whole (`write_atomic`); return the max |diff|."""
    model, diff = onnx_bytes(net, rows, names, output, verify)
    write_atomic(path, model)
    return diff


def onnx_bytes(
    net: torch.nn.Module,
    rows: tuple[torch.Tensor, ...],
    names: list[str],
    output: str = "light_logits",
    verify: bool = True,
) -> tuple[bytes, float]:
    """Export to ONNX with a dynamic batch, in memory; return the model's bytes and
    onnxruntime's max |diff| from PyTorch.

    With `verify`, every output must be within ONNX_TOLERANCE absolute plus ONNX_TOLERANCE
    relative (numpy's allclose): float32 kernels differ by a few ulps, and logits near 20
    carry ulps of 2e-6.
    """
    import onnxruntime as ort

    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    with _quiet_exporter():
        program = torch.onnx.export(
            net,
            rows,
            None,
            input_names=names,
            output_names=[output],
            dynamic_shapes={name: {0: batch} for name in names},
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    model = program.model_proto.SerializeToString()  # what ONNXProgram.save writes, < 2 GB
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    got = session.run(None, {n: r.numpy() for n, r in zip(names, rows, strict=True)})[0]
    with torch.inference_mode():
        want = net(*rows).numpy()
    diff = float(np.max(np.abs(got - want)))
    close = np.allclose(got, want, rtol=ONNX_TOLERANCE, atol=ONNX_TOLERANCE)
    if verify and not close:
        raise TrainError(
            f"the ONNX export of {output}: onnxruntime differs from PyTorch by up to {diff:.2e} "
            f"on real validation rows (tolerance {ONNX_TOLERANCE} absolute + {ONNX_TOLERANCE} "
            "relative)"
        )
    return model, diff


@contextlib.contextmanager
def _quiet_exporter():
    """The ONNX exporter logs about optional torchvision ops and deprecations; none concern us."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*axis name")
            yield
    finally:
        logger.setLevel(level)


def _check_no_booster(light: torch.nn.Module, exported: dict[str, torch.Tensor]) -> None:
    want = {k for k, _ in light.named_parameters()}
    got = {k for k in exported if k in want or "booster" in k.split(".")[0]}
    if got != want:
        raise TrainError(f"exported light net parameters differ from LightNet's: {got ^ want}")


def macs(net: torch.nn.Module, split: Split) -> int:
    """Multiply-accumulates for one example (FLOPs / 2, as torch's flop counter reports)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        net(*_batch(split, 1))
    return counter.get_total_flops() // 2


def torch_latency(net: torch.nn.Module, split: Split, repeats: int = 50) -> dict[str, float]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = {}
        for b in LATENCY_BATCHES:
            rows = _batch(split, b)
            with torch.inference_mode():
                out[f"batch_{b}"] = round(median_ms(lambda rows=rows: net(*rows), repeats), 4)
        return out
    finally:
        torch.set_num_threads(threads)


def ort_latency(model: bytes | Path, split: Split, repeats: int = 50) -> dict[str, float]:
    """Median latencies of an ONNX model (its bytes, or its file) in onnxruntime."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    model = model if isinstance(model, bytes) else str(model)
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    out = {}
    for b in LATENCY_BATCHES:
        feed = {n: r.numpy() for n, r in zip(names, _batch(split, b), strict=True)}
        out[f"batch_{b}"] = round(median_ms(lambda feed=feed: session.run(None, feed), repeats), 4)
    return out


def _audit_line(audit: dict[str, Any]) -> str:
    if not audit:
        return "Gradient flow was not audited for this run."
    reach = {
        term: [g for g, hit in groups.items() if hit] for term, groups in audit["matrix"].items()
    }
    terms = "; ".join(
        f"{term} → {', '.join(groups) or 'nothing'}" for term, groups in reach.items()
    )
    return (
        f"Gradient flow audited on the generated model before training "
        f"(gradient_block: {audit['gradient_block']}): {terms}."
    )


def _selection_line(sel: dict[str, Any]) -> str:
    if not sel:
        return "The last epoch's weights are shipped."
    value = "n/a" if sel["value"] is None else f"{sel['value']:.4f}"
    if sel["patience"] is None:
        stop = "early stopping off"
    elif sel["stopped_early"]:
        stop = (
            f"stopped early after epoch {sel['epochs_trained']} of {sel['epochs']}: no better "
            f"value in {sel['patience']} epochs"
        )
    else:
        stop = f"patience {sel['patience']} not reached, all {sel['epochs']} epochs trained"
    return (
        f"Shipped: epoch {sel['selected_epoch']}'s weights, chosen by {sel['why']}: "
        f"{value}; {stop}. The test metrics below are that epoch's."
    )


def _extension_lines(extensions: list[dict[str, Any]]) -> list[str]:
    """One line per `--resume --epochs N` that changed the run's epoch budget."""
    return [
        f"Extended after epoch {e['after_epoch']}: {e['epochs_from']} -> {e['epochs_to']} "
        f"epochs, the {e['schedule']} schedule planned again over {e['epochs_to']} epochs "
        f"(learning rate {e['lr_from']:.2e} -> {e['lr_to']:.2e} at epoch {e['after_epoch'] + 1})."
        "\n"
        for e in extensions
    ]


def render_markdown(r: dict[str, Any]) -> str:
    p, m, lat = r["params"], r["macs_per_example"], r["latency_ms"]
    lines = [
        f"# {r['spec']}: light net launch report",
        "",
        f"Trained {r['epochs']} epochs in {r['train_seconds']:.1f} s. Serve `light.onnx` or "
        "`light.pt2` (`torch.export.load(...).module()`); neither holds a booster weight.",
        "",
        *_extension_lines(r.get("extensions") or []),
        _selection_line(r.get("selection") or {}),
        "",
        "| | light (served) | booster |",
        "|---|---:|---:|",
        f"| parameters | {p['light_net']:,} | {p['booster_net']:,} |",
        f"| multiply-accumulates / example | {m['light']:,} | {m['booster']:,} |",
    ]
    for runtime in ("pytorch", "onnxruntime"):
        for b in LATENCY_BATCHES:
            key = f"batch_{b}"
            lines.append(
                f"| latency {runtime}, batch {b} (ms) | {lat[runtime]['light'][key]} | "
                f"{lat[runtime]['booster'][key]} |"
            )
    for metric in r["test"]["light"]:
        lines.append(
            f"| test {metric} | {r['test']['light'][metric]:.4f} | "
            f"{r['test']['booster'][metric]:.4f} |"
        )
    lines += [
        "",
        f"Shared parameters: {p['shared']:,} (counted in both nets). {r['latency_note']}. "
        f"ONNX export verified against PyTorch on real validation rows: max |diff| "
        f"{r['onnx_max_abs_diff']:.2e}.",
        "",
        _audit_line(r.get("gradient_audit") or {}),
        *int8.markdown_lines(r.get("int8")),
        "",
    ]
    return "\n".join(lines)

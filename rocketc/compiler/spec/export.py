"""The spec's `export:`: what `rocketc train` ships beside the FP32 light net (an INT8 copy)."""

from __future__ import annotations

from pydantic import Field

from rocketc.compiler.spec.base import SpecModel


class Int8(SpecModel):
    """`light.int8.onnx`: onnxruntime's quantization of light.onnx, and the two bars it must
    pass to be served by default: quality (max_drop) and speed (max_latency_ratio)."""

    enabled: bool = Field(
        default=True,
        description="Quantize the light net to INT8 after the FP32 export (static QDQ, "
        "activation ranges calibrated on validation rows).",
    )
    max_drop: float = Field(
        default=0.001,
        ge=0.0,
        le=1.0,
        description="Largest drop of the test metric, INT8 against FP32 on the same rows, in the "
        "metric's own units (0.001 = 0.1 point of accuracy or AUC), for light.int8.onnx to be "
        "served by default; a bigger drop keeps the file, FP32 stays the default.",
    )
    max_latency_ratio: float = Field(
        default=0.9,
        gt=0.0,
        description="INT8's onnxruntime latency at 100 candidates over FP32's, measured side by "
        "side, must be at most this for light.int8.onnx to be served by default: an INT8 model "
        "that is not faster only changes the scores (onnxruntime's int8 convolutions can be "
        "slower than its float ones on a CPU; BENCHMARKS.md, serving part).",
    )


class Export(SpecModel):
    int8: Int8 = Int8()

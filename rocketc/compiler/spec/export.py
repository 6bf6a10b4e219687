"""The spec's `export:`: what `rocketc train` ships beside the FP32 light net (an INT8 copy)."""

from __future__ import annotations

from pydantic import Field

from rocketc.compiler.spec.base import SpecModel


class Int8(SpecModel):
    """`light.int8.onnx`: onnxruntime's quantization of light.onnx, and the bar it must pass to
    be served by default."""

    enabled: bool = Field(
        default=True,
        description="Quantize the light net to INT8 after the FP32 export (dynamic for "
        "MatMul/Gemm; static QDQ calibrated on validation rows when it has convolutions).",
    )
    max_drop: float = Field(
        default=0.001,
        ge=0.0,
        le=1.0,
        description="Largest drop of the test metric, INT8 against FP32 on the same rows, in the "
        "metric's own units (0.001 = 0.1 point of accuracy or AUC), for light.int8.onnx to be "
        "served by default; a bigger drop keeps the file, FP32 stays the default.",
    )


class Export(SpecModel):
    int8: Int8 = Int8()

"""Image ops: conv2d, batchnorm, pool, and the wide-ResNet group."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from rocketc.compiler.ops.base import (
    LayerBase,
    OpError,
    Port,
    TensorType,
    conv_out,
    image,
    one_float,
    same_layout,
    stride_text,
)
from rocketc.compiler.ops.registry import register_op


@register_op
class Conv2d(LayerBase):
    """2-D convolution over (B, C, H, W)."""

    op: Literal["conv2d"]
    out_channels: int = Field(ge=1)
    kernel: int = Field(ge=1)
    stride: int = Field(default=1, ge=1)
    padding: int = Field(default=0, ge=0)
    bias: bool = True

    def infer(self, ins: list[Port]) -> TensorType:
        _, h, w = image(self, ins)
        oh, ow = (conv_out(s, self.kernel, self.stride, self.padding) for s in (h, w))
        if oh < 1 or ow < 1:
            raise OpError(
                f"layer '{self.id}' (conv2d) kernel {self.kernel} does not fit the "
                f"{h}x{w} map from '{ins[0].name}' (padding {self.padding})"
            )
        return TensorType((self.out_channels, oh, ow))

    def num_params(self, ins: list[Port]) -> int:
        c = ins[0].type.shape[0]
        return c * self.out_channels * self.kernel**2 + (self.out_channels if self.bias else 0)

    def init_args(self, ins: list[Port]) -> dict[str, Any]:
        return {
            "in_channels": ins[0].type.shape[0],
            "out_channels": self.out_channels,
            "kernel": self.kernel,
            "stride": self.stride,
            "padding": self.padding,
            "bias": self.bias,
        }

    def tie_paths(
        self, ins: list[Port], other: LayerBase, other_ins: list[Port]
    ) -> list[tuple[str, int]]:
        assert isinstance(other, Conv2d)
        same_layout(
            self,
            other,
            in_channels=(ins[0].type.shape[0], other_ins[0].type.shape[0]),
            out_channels=(self.out_channels, other.out_channels),
            kernel=(self.kernel, other.kernel),
            bias=(self.bias, other.bias),
        )
        c = ins[0].type.shape[0]
        tied = [("weight", c * self.out_channels * self.kernel**2)]
        return tied + [("bias", self.out_channels)] if self.bias else tied

    def tie_args(self, ins: list[Port]) -> dict[str, Any]:
        return {"bias": self.bias}

    def macs(self, ins: list[Port]) -> int:
        c = ins[0].type.shape[0]
        _, oh, ow = self.infer(ins).shape
        return c * self.out_channels * self.kernel**2 * oh * ow

    def widths(self) -> dict[str, int | list[int]]:
        return {"out_channels": self.out_channels}

    def label(self, ins: list[Port]) -> str:
        k = self.kernel
        return f"conv2d {k}×{k} → {self.out_channels}{stride_text(self.stride)}"


@register_op
class Batchnorm(LayerBase):
    """Batch normalisation over the channel (first feature) dim.

    BatchNorm1d for (B, C) or (B, C, L), BatchNorm2d for (B, C, H, W) maps.
    """

    op: Literal["batchnorm"]

    def infer(self, ins: list[Port]) -> TensorType:
        t = one_float(self, ins)
        if len(t.shape) > 3:
            raise OpError(
                f"layer '{self.id}' (batchnorm) takes up to 3 feature dims, "
                f"'{ins[0].name}' gives {t}"
            )
        return t

    def num_params(self, ins: list[Port]) -> int:
        return 2 * ins[0].type.shape[0]

    def init_args(self, ins: list[Port]) -> dict[str, Any]:
        shape = ins[0].type.shape
        return {"kind": "2d" if len(shape) == 3 else "1d", "features": shape[0]}

    def macs(self, ins: list[Port]) -> int:
        return 0  # element-wise


@register_op
class Pool(LayerBase):
    """Max or average pooling over (B, C, H, W); `global_avg` gives (B, C)."""

    op: Literal["pool"]
    kind: Literal["max", "avg", "global_avg"]
    kernel: int | None = Field(default=None, ge=1)
    stride: int | None = Field(default=None, ge=1, description="Defaults to the kernel size.")
    padding: int = Field(default=0, ge=0)

    stateful = False

    def infer(self, ins: list[Port]) -> TensorType:
        c, h, w = image(self, ins)
        if self.kind == "global_avg":
            if self.kernel is not None:
                raise OpError(f"layer '{self.id}' (pool global_avg) takes no kernel")
            return TensorType((c,))
        if self.kernel is None:
            raise OpError(f"layer '{self.id}' (pool {self.kind}) needs a kernel")
        if self.padding > self.kernel // 2:  # torch refuses it at the first forward
            raise OpError(
                f"layer '{self.id}' (pool) padding {self.padding} is more than half "
                f"its kernel {self.kernel}"
            )
        stride = self.stride or self.kernel
        oh, ow = (conv_out(s, self.kernel, stride, self.padding) for s in (h, w))
        if oh < 1 or ow < 1:
            raise OpError(
                f"layer '{self.id}' (pool) kernel {self.kernel} does not fit the "
                f"{h}x{w} map from '{ins[0].name}'"
            )
        return TensorType((c, oh, ow))

    def call_args(self, ins: list[Port]) -> dict[str, Any]:
        extra = []
        if self.stride is not None and self.stride != self.kernel:
            extra.append(f"stride={self.stride}")
        if self.padding:
            extra.append(f"padding={self.padding}")
        return {"kind": self.kind, "kernel": self.kernel, "extra": extra}

    def macs(self, ins: list[Port]) -> int:
        return 0  # no matrix product

    def label(self, ins: list[Port]) -> str:
        if self.kind == "global_avg":
            return "global avg pool"
        k = self.kernel
        return f"{self.kind} pool {k}×{k}{stride_text(self.stride)}"


@register_op
class WrnGroup(LayerBase):
    """A group of pre-activation wide-ResNet basic blocks (Zagoruyko & Komodakis, 2016).

    WRN-d-k stacks a 3x3 stem conv, three groups of n = (d - 4) / 6 blocks of widths
    16k, 32k, 64k (strides 1, 2, 2), then BN-ReLU-pool-linear.
    """

    op: Literal["wrn_group"]
    blocks: int = Field(ge=1)
    width: int = Field(ge=1)
    stride: int = Field(default=1, ge=1)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)

    helpers = ("wide_basic_block", "wide_group")

    def infer(self, ins: list[Port]) -> TensorType:
        _, h, w = image(self, ins)
        oh, ow = (conv_out(s, 3, self.stride, 1) for s in (h, w))
        return TensorType((self.width, oh, ow))

    def _block_params(self, c_in: int, stride: int) -> int:
        p = 2 * c_in + c_in * self.width * 9 + 2 * self.width + self.width * self.width * 9
        if stride != 1 or c_in != self.width:
            p += c_in * self.width
        return p

    def num_params(self, ins: list[Port]) -> int:
        c_in = ins[0].type.shape[0]
        first = self._block_params(c_in, self.stride)
        return first + (self.blocks - 1) * self._block_params(self.width, 1)

    def init_args(self, ins: list[Port]) -> dict[str, Any]:
        return {
            "in_channels": ins[0].type.shape[0],
            "width": self.width,
            "blocks": self.blocks,
            "stride": self.stride,
            "dropout": self.dropout,
        }

    def tie_paths(
        self, ins: list[Port], other: LayerBase, other_ins: list[Port]
    ) -> list[tuple[str, int]]:
        """Interval sharing (paper Fig. 3b): block i reuses the booster's block i convs."""
        assert isinstance(other, WrnGroup)
        same_layout(
            self,
            other,
            in_channels=(ins[0].type.shape[0], other_ins[0].type.shape[0]),
            width=(self.width, other.width),
            stride=(self.stride, other.stride),
        )
        if self.blocks > other.blocks:
            raise OpError(
                f"layer '{self.id}' has {self.blocks} blocks but tied '{other.id}' "
                f"has only {other.blocks}"
            )
        c_in, w = ins[0].type.shape[0], self.width
        tied = [("[0].conv1.weight", c_in * w * 9), ("[0].conv2.weight", w * w * 9)]
        if self.stride != 1 or c_in != w:
            tied.append(("[0].shortcut.weight", c_in * w))
        for i in range(1, self.blocks):
            tied += [(f"[{i}].conv1.weight", w * w * 9), (f"[{i}].conv2.weight", w * w * 9)]
        return tied

    def macs(self, ins: list[Port]) -> int:
        c_in, w = ins[0].type.shape[0], self.width
        _, oh, ow = self.infer(ins).shape
        first = c_in * w * 9 + w * w * 9 + (c_in * w if self.stride != 1 or c_in != w else 0)
        return (first + (self.blocks - 1) * 2 * w * w * 9) * oh * ow

    def widths(self) -> dict[str, int | list[int]]:
        return {"width": self.width}

    def label(self, ins: list[Port]) -> str:
        return f"wrn_group {self.blocks} blocks × width {self.width}{stride_text(self.stride)}"

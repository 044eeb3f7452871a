"""The layer set ttvsim is cross-checked on against the real SCALE-Sim 3.0.

Small conv and GEMM layers chosen to hit the awkward corners of the fold arithmetic: partial
folds, reductions shorter than the array (K < rows), GEMV (M = 1), single-column outputs,
1x1 and strided convs, a stride that does not divide the window travel, and scaled-down shapes
of Stable Diffusion UNet / DiT / video-attention layers. Small enough that SCALE-Sim's
pure-Python trace simulation runs all of them x 3 dataflows x 2 arrays in a few minutes.

This module is plain Python (no ttvsim imports) so the SCALE-Sim venv can import it too.

SCALE-Sim topology conventions (3.0.0, `scalesim/topology_utils.py`):
  * conv rows: `Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels,
    Num Filter, Strides,` -- no padding; Ho = ceil((H - R + s) / s), i.e. ceil((H - R)/s) + 1,
    which is PyTorch's floor((H - R)/s) + 1 only when s divides H - R.
  * GEMM rows: `name, M, N, K,` (N before K); SCALE-Sim turns them into an M x K ifmap with a
    1 x K filter, so M ofmap pixels, window K and N filters.
  * A layer name containing "DP" is treated as depthwise: avoid it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ConvLayer:
    """A SCALE-Sim conv topology row (square stride, no padding)."""

    name: str
    h: int
    w: int
    r: int
    s: int
    c: int
    f: int
    stride: int = 1
    note: str = ""

    kind = "conv"

    @property
    def out_hw(self) -> tuple[int, int]:
        """SCALE-Sim's ofmap size: ceil((H - R + stride) / stride) per dimension."""
        return (math.ceil((self.h - self.r + self.stride) / self.stride),
                math.ceil((self.w - self.s + self.stride) / self.stride))

    @property
    def torch_out_hw(self) -> tuple[int, int]:
        """PyTorch's (and ttvsim's GraphBuilder's) ofmap size with padding 0."""
        return ((self.h - self.r) // self.stride + 1, (self.w - self.s) // self.stride + 1)

    def gemm_dims(self) -> tuple[int, int, int]:
        """(M, K, N) as SCALE-Sim maps the conv: M = Ho*Wo, K = R*S*C, N = filters."""
        ho, wo = self.out_hw
        return ho * wo, self.r * self.s * self.c, self.f

    def topology_row(self) -> str:
        return f"{self.name}, {self.h}, {self.w}, {self.r}, {self.s}, {self.c}, {self.f}, {self.stride},"


@dataclass(frozen=True)
class GemmLayer:
    """A GEMM of an M x K input times a K x N weight."""

    name: str
    m: int
    k: int
    n: int
    note: str = ""

    kind = "gemm"

    def gemm_dims(self) -> tuple[int, int, int]:
        """(M, K, N)."""
        return self.m, self.k, self.n

    def topology_row(self) -> str:
        """SCALE-Sim GEMM row: N comes before K."""
        return f"{self.name}, {self.m}, {self.n}, {self.k},"


Layer = ConvLayer | GemmLayer

CONV_HEADER = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,"
GEMM_HEADER = "Layer, M, N, K,"

LAYERS: list[Layer] = [
    # -- convolutions -------------------------------------------------------------------
    ConvLayer("conv3x3", 10, 10, 3, 3, 4, 8, note="plain 3x3"),
    ConvLayer("conv1x1", 8, 8, 1, 1, 16, 24, note="1x1 pointwise"),
    ConvLayer("conv3x3_s2", 11, 11, 3, 3, 8, 16, 2, note="strided"),
    ConvLayer("conv3x3_s2_ragged", 10, 10, 3, 3, 6, 10, 2,
              note="stride does not divide H-R: SCALE-Sim rounds Ho up (5), PyTorch down (4)"),
    ConvLayer("conv5x5", 12, 12, 5, 5, 3, 6, note="5x5, 3 input channels"),
    ConvLayer("conv3x1_rect", 9, 14, 3, 1, 5, 7, note="non-square ifmap and kernel"),
    ConvLayer("conv_1ch", 16, 16, 3, 3, 1, 4, note="K = 9 < rows"),
    ConvLayer("conv_single_px", 3, 3, 3, 3, 6, 5, note="kernel covers the ifmap: M = 1"),
    ConvLayer("conv7x7_s2_stem", 13, 13, 7, 7, 3, 8, 2, note="ResNet-stem-like"),
    ConvLayer("unet_conv_in", 10, 10, 3, 3, 4, 40, note="SD UNet conv_in 4->320, scaled /8"),
    ConvLayer("unet_resnet_conv", 6, 6, 3, 3, 16, 16, note="SD UNet ResNet conv 320->320, scaled"),
    ConvLayer("unet_downsample", 9, 9, 3, 3, 16, 16, 2, note="SD UNet Downsample2D (stride 2), scaled"),
    ConvLayer("unet_shortcut_1x1", 6, 6, 1, 1, 24, 12, note="SD UNet ResNet 1x1 shortcut 640->320, scaled"),
    ConvLayer("unet_conv_out", 6, 6, 3, 3, 20, 4, note="SD UNet conv_out 320->4, scaled"),
    ConvLayer("vae_conv", 12, 12, 3, 3, 8, 8, note="VAE decoder conv at high resolution, scaled"),
    ConvLayer("dit_patch_embed", 8, 8, 2, 2, 4, 12, 2, note="DiT patchify: 2x2 kernel, stride 2"),
    ConvLayer("unet_resnet_conv_big", 14, 14, 3, 3, 32, 32,
              note="SD UNet ResNet conv, operands larger than the 4 KiB SRAMs"),
    # -- GEMMs ---------------------------------------------------------------------------
    GemmLayer("gemv_m1", 1, 40, 24, note="M = 1 (autoregressive decode)"),
    GemmLayer("gemm_square", 32, 32, 32),
    GemmLayer("gemm_partial", 17, 33, 19, note="every dimension a partial fold"),
    GemmLayer("gemm_k3", 40, 3, 20, note="K = 3 < rows"),
    GemmLayer("gemm_n1", 24, 20, 1, note="N = 1"),
    GemmLayer("gemm_prime", 13, 7, 11),
    GemmLayer("gemm_tall", 100, 16, 5),
    GemmLayer("attn_qk", 64, 8, 64, note="self-attention QK^T per head, scaled (L=64, d=8)"),
    GemmLayer("attn_pv", 64, 64, 8, note="self-attention PV per head, scaled"),
    GemmLayer("xattn_qk", 16, 8, 77, note="cross-attention to 77 text tokens"),
    GemmLayer("temporal_attn_qk", 8, 8, 8, note="temporal attention over 8 frames"),
    GemmLayer("proj_linear", 20, 40, 24, note="attention projection"),
    GemmLayer("ff_geglu", 16, 24, 96, note="feed-forward up-projection"),
    GemmLayer("attn_qk_big", 128, 40, 128, note="self-attention QK^T, operands larger than 4 KiB"),
]

DATAFLOWS: tuple[str, ...] = ("os", "ws", "is")
# (rows, cols); the non-square arrays catch any rows/cols swap in the fold formulas.
ARRAYS: tuple[tuple[int, int], ...] = ((8, 8), (16, 16), (8, 32), (32, 8))


@dataclass(frozen=True)
class MemorySetup:
    """SRAM sizes (KiB, SCALE-Sim's 'kB') and DRAM bandwidth (words per cycle)."""

    name: str
    ifmap_kb: int
    filter_kb: int
    ofmap_kb: int
    bandwidth: int


MEMORY_SETUPS: tuple[MemorySetup, ...] = (
    MemorySetup("bw10", 64, 64, 64, 10),
    MemorySetup("bw2", 4, 4, 4, 2),
)


def layer_by_name(name: str) -> Layer:
    """Look a layer up by its name."""
    for layer in LAYERS:
        if layer.name == name:
            return layer
    raise KeyError(f"unknown layer {name!r}")


# -- sparse cases (SCALE-Sim 3.0 layer-wise N:M: `[sparsity] SparsitySupport = true`,
#    `OptimizedMapping = false`, the ratio in the topology's last column) ---------------------
# Ratios: 1:1 (sparse mode, dense weights: metadata only), the usual N:M, M = 8 (3 metadata
# bits) and M = 5 (not a power of two); the layers' K values leave partial last blocks.
SPARSE_RATIOS: tuple[str, ...] = ("1:1", "1:4", "2:4", "3:4", "2:8", "3:5")
SPARSE_FORMATS: tuple[str, ...] = ("ellpack_block", "csr", "csc")  # SCALE-Sim's SparseRep values
SPARSE_ARRAYS: tuple[tuple[int, int], ...] = ((8, 8), (8, 32), (32, 8))
SPARSE_LAYERS: tuple[str, ...] = (
    "conv3x3", "conv1x1", "conv3x3_s2", "conv5x5", "conv_1ch", "conv_single_px", "unet_resnet_conv",
    "gemv_m1", "gemm_partial", "gemm_k3", "gemm_prime", "attn_pv", "proj_linear", "ff_geglu",
)  # fmt: skip
SPARSE_MEMORY = MEMORY_SETUPS[0]


@dataclass(frozen=True)
class SparseCase:
    """One sparse SCALE-Sim run: a layer at an N:M ratio on an array, dataflow and format."""

    layer: str
    ratio: str
    rows: int
    cols: int
    dataflow: str
    format: str


def sparse_cases() -> list[SparseCase]:
    """Every layer x ratio x dataflow; the array and the storage format rotate so that every
    ratio and dataflow meets every array and format (compute cycles do not depend on the
    format, storage does not depend on the array or dataflow)."""
    n_arrays, n_formats = len(SPARSE_ARRAYS), len(SPARSE_FORMATS)
    return [
        SparseCase(name, ratio, *SPARSE_ARRAYS[(i + j) % n_arrays], df, SPARSE_FORMATS[(i + 2 * j + d) % n_formats])
        for i, name in enumerate(SPARSE_LAYERS)
        for j, ratio in enumerate(SPARSE_RATIOS)
        for d, df in enumerate(DATAFLOWS)
    ]

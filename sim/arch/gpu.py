"""GPU execution constants: what a GPU kernel costs beyond the array/vector model.

Read by `sim.cost.gpu` for kernels a runtime model (`sim.runtime`) tagged with a GPU kernel
class; every constant is 0 by default (no GPU model: a `runtime=` on such an arch is an error).
The `h100` and `h200` presets fill it (`a100` has none: no A100 was measured); the h200's values come from the H200 microbenchmarks in
`arch_configs/calibration/h200/` (`python experiments/gpu/derive_constants.py` prints each value
with its CSV rows; `tests/test_runtime.py` checks the preset against it), never from the
end-to-end forwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workloads.errors import unknown

from .schema import doc

# Memory-bound kernel classes with a measured bandwidth (bytes read + written per second).
MEMORY_KINDS = (
    "elementwise", "broadcast", "permute", "copy", "act_transpose", "weight_transpose",
    "resample", "softmax", "layernorm", "gn_apply", "head_copy", "strided",
)  # fmt: skip
# Row lengths at which softmax rates were measured. PyTorch's softmax runs a warp per row up to 2048
# fp16 elements (its loop sized to the next power of two; `scaling.csv`), then a register kernel whose
# rate steps with the row's fit to its thread block (a saw-tooth of period 2048, dropping just past
# 4096, 6144, 8192: `dispatch.csv` every 256 elements, aligned r and r + 4), to ~9.2k; beyond, rows
# that are a multiple of 16 bytes run a shared-memory kernel (9472, 9672: `dispatch.csv`) and then a
# looping one (`scaling.csv`), other rows PyTorch's generic kernel (SOFTMAX_UNALIGNED_ROW_LENGTHS).
SOFTMAX_REG_ROWS = tuple(range(2304, 9473, 256))
SOFTMAX_ROW_LENGTHS = tuple(sorted({
    16, 32, 64, 77, 120, 226, 256, 512, 1024, 1025, 2048, 2052, 3072, 4096, 8192, 12288, 16384, 24576, 65536,
    *SOFTMAX_REG_ROWS, *(r + 4 for r in SOFTMAX_REG_ROWS if r < 9216), 9672}))  # fmt: skip
# Row lengths of the measured rates of fp16 rows not a multiple of 16 bytes past the register kernel
# (`dispatch.csv`: PyTorch's generic kernel in place of the shared-memory one).
SOFTMAX_UNALIGNED_ROW_LENGTHS = (9220, 9476, 9676, 12292, 16388, 17780, 24580, 32772, 65540)
# Row lengths of the measured fp32 softmax rates (`dispatch.csv`: diffusers' upcast attention).
SOFTMAX_FP32_ROW_LENGTHS = (64, 77, 256, 1024, *range(2048, 9217, 512), 9676, 17776, 32768)
# Fused attention kernels: cuDNN's SDPA (FA3-class, PyTorch's default on sm90), FlashAttention-2,
# the memory-efficient (CUTLASS) kernel.
ATTENTION_BACKENDS = ("cudnn", "flash2", "efficient")
# Ops whose eager host cost per call was measured (`host.csv` op_*).
EAGER_OPS = ("linear", "conv", "group_norm", "layer_norm", "activation", "attention")


def _measured(help: str, unit: str) -> Any:
    """A non-negative measured constant, 0 (not modelled) by default."""
    return field(default=0.0, metadata=doc(help, unit, positive=False))


def _keyed(help: str, unit: str, keys: tuple[str, ...], **kw: float) -> dict:
    return {**doc(help, unit, positive=False, **kw), "keys": keys, "default_value": 0.0}


@dataclass(frozen=True)
class GpuConfig:
    calibration: str = field(
        default="",
        metadata=doc("calibration data the constants were derived from (documentation; a path under arch_configs/)"),
    )
    kernel_floor_us: float = field(
        default=0.0,
        metadata=doc("fixed GPU time of every memory-bound kernel (launch latency, ramp)", "us", positive=False),
    )
    # -- GEMM --------------------------------------------------------------------------------
    gemm_tile: int = field(
        default=128,
        metadata=doc(
            "cuDNN's thread-block tile edge; tiles are tile x tile, tile x 2 tile, 2 tile x tile, "
            "tile/2 x tile, tile x tile/2 (cuBLAS's tiles: sim.cost.gpu._tile)"
        ),
    )
    gemm_efficiency: float = field(
        default=0.0,
        metadata=doc("mainloop MAC rate of a thread block relative to its SM's peak", "x", positive=False, max=1),
    )
    gemm_tile_overhead_k: float = field(
        default=0.0,
        metadata=doc(
            "a thread-block tile's prologue + epilogue (pipeline fill, output write), as main-loop K depth: "
            "a tile of depth K runs at gemm_efficiency x K / (K + this)",
            "elements",
            positive=False,
        ),  # fmt: skip
    )
    gemm_tile_feed_gbs: float = field(
        default=0.0,
        metadata=doc(
            "operand bytes per second fed into one SM's thread-block tile (its A and B slices per unit of "
            "K, from L2 through shared memory): a small tile runs below the mainloop MAC rate; 0: unlimited",
            "GB/s",
            positive=False,
        ),  # fmt: skip
    )
    gemm_read_gbs: float = field(
        default=0.0,
        metadata=doc(
            "DRAM read rate of a GEMM's compulsory operand traffic (weight streaming)", "GB/s", positive=False
        ),
    )
    gemm_write_gbs: float = field(
        default=0.0, metadata=doc("DRAM write rate of a GEMM's output", "GB/s", positive=False)
    )
    gemm_mem_latency_us: float = field(
        default=0.0,
        metadata=doc("time before a memory-bound GEMM streams at its rates (DRAM latency, ramp)", "us", positive=False),
    )
    gemm_fixed_us: float = field(default=0.0, metadata=doc("fixed GPU time of a GEMM kernel", "us", positive=False))
    gemm_bias_us: float = field(
        default=0.0,
        metadata=doc(
            "extra time of a linear GEMM with its bias fused in the epilogue, launched in a chain of dependent "
            "kernels (input just written by the previous kernel, bias read in the epilogue)",
            "us",
            positive=False,
        ),  # fmt: skip
    )
    gemm_unaligned_slowdown: float = field(
        default=0.0,
        metadata=doc(
            "time factor of a GEMM whose K or N is not a multiple of 8 (cuBLAS align1 kernels); 0: none",
            "x",
            positive=False,
        ),  # fmt: skip
    )
    sustained_tensor_ratio: float = field(
        default=0.0,
        metadata=doc(
            "tensor-core rate under sustained load (power cap) relative to the bursts the GEMM constants "
            "come from; 0: no derate",
            "x",
            positive=False,
            max=1,
        ),  # fmt: skip
    )
    gemm_split_k_min: int = field(
        default=128, metadata=doc("smallest K per split when split-K spreads too few tiles over the SMs")
    )
    # -- memory-bound kernels ----------------------------------------------------------------
    bandwidth_gbs: dict[str, float] = field(
        default_factory=dict,
        metadata=_keyed(
            f"bandwidth of memory-bound kernels by class ({', '.join(MEMORY_KINDS)})", "GB/s", MEMORY_KINDS
        ),
    )
    softmax_row_gbs: dict[str, float] = field(
        default_factory=dict,
        metadata=_keyed(
            "softmax rate by row length (a row of w elements: the longest listed length <= w; unset: "
            "bandwidth_gbs.softmax)",
            "GB/s",
            tuple(str(n) for n in SOFTMAX_ROW_LENGTHS),
        ),
    )
    softmax_unaligned_row_gbs: dict[str, float] = field(
        default_factory=dict,
        metadata=_keyed(
            "fp16 softmax rate over rows whose bytes are not a multiple of 16, by row length (the longest listed "
            "<= w; shorter rows and unset: softmax_row_gbs)",
            "GB/s",
            tuple(str(n) for n in SOFTMAX_UNALIGNED_ROW_LENGTHS),
        ),
    )
    softmax_fp32_row_gbs: dict[str, float] = field(
        default_factory=dict,
        metadata=_keyed(
            "fp32 softmax rate by row length (the longest listed <= w, the shortest for shorter rows; unset: "
            "softmax_row_gbs)",
            "GB/s",
            tuple(str(n) for n in SOFTMAX_FP32_ROW_LENGTHS),
        ),
    )
    cudnn_plan_us: float = _measured(
        "host time of cuDNN's fused attention building an execution plan for a shape it has not run (every call "
        "of a decode step over a grown cache: attention with `kv_growing`), eager and compiled runtimes",
        "us",
    )
    fp32_gemm_tflops: float = _measured(
        "rate of an fp32 GEMM on the CUDA cores (PyTorch's default allow_tf32=False: diffusers' upcast attention "
        "scores); 0: the array's fp32 (TF32) rate",
        "TFLOP/s",
    )
    layernorm_row_ns: float = field(
        default=0.0, metadata=doc("LayerNorm time per row beyond its bytes", "ns", positive=False)
    )
    layernorm_block_us: float = field(
        default=0.0,
        metadata=doc(
            "latency of one LayerNorm row's thread block beyond its bytes (a kernel of few rows cannot hide "
            "it); 0: not modelled",
            "us",
            positive=False,
        ),  # fmt: skip
    )
    layernorm_block_gbs: float = field(
        default=0.0,
        metadata=doc("rate at which one LayerNorm thread block reads + writes its row", "GB/s", positive=False),
    )
    l2_read_gbs: float = _measured(
        "read rate of an arithmetic pointwise/copy kernel's operands that recent kernels touched and the L2 still "
        "holds (reuse distance + the kernel's bytes within global_buffer.size_kb); 0: not modelled",
        "GB/s",
    )
    l2_kernel_floor_us: float = _measured(
        "fixed time of such a kernel when all its inputs are L2-resident (no DRAM latency; else kernel_floor_us)", "us"
    )
    gather_latency_us: float = _measured(
        "extra fixed time of an indexed gather (embedding lookup) over a copy: the rows' load waits for the indices'",
        "us",
    )
    transpose_row_ns: float = field(
        default=0.0,
        metadata=doc(
            "NCHW<->NHWC transpose time per contiguous run (image x channel) beyond its bytes", "ns", positive=False
        ),  # fmt: skip
    )
    gn_block_gbs: float = field(
        default=0.0,
        metadata=doc("GroupNorm statistics rate of one thread block (one per sample x group)", "GB/s", positive=False),
    )
    gn_block_us: float = _measured("latency of a GroupNorm statistics thread block beyond its bytes", "us")
    gn_block_far_gbs: float = _measured(
        "GroupNorm statistics rate of one thread block when the input exceeds gn_far_from_mb (a latency-bound "
        "stream slows with the longer access latency of large tensors); 0: gn_block_gbs",
        "GB/s",
    )
    gn_far_from_mb: float = _measured("input size from which GroupNorm statistics blocks run at gn_block_far_gbs", "MB")
    gn_stats_max_gbs: float = field(
        default=0.0, metadata=doc("GroupNorm statistics kernel rate with many blocks", "GB/s", positive=False)
    )
    # -- fused attention ---------------------------------------------------------------------
    attention_efficiency: dict[str, float] = field(
        default_factory=dict,
        metadata=_keyed("MMA rate of fused attention relative to peak, by backend", "x", ATTENTION_BACKENDS, max=1),
    )
    attention_gscores_s: dict[str, float] = field(
        default_factory=dict,
        metadata=_keyed(
            "softmax exp (SFU) ceiling of fused attention, scores per second, by backend", "G/s", ATTENTION_BACKENDS
        ),
    )
    attention_tile_us: dict[str, float] = field(
        default_factory=dict,
        metadata=_keyed(
            "start-up of a wave of thread blocks beyond its key tiles, by backend", "us", ATTENTION_BACKENDS
        ),
    )
    attention_partial_us: dict[str, float] = field(
        default_factory=dict,
        metadata=_keyed("extra time of a wave whose last key tile is partial (the key length not a multiple of "
                        "the key tile), by backend", "us", ATTENTION_BACKENDS),  # fmt: skip
    )
    attention_fixed_us: dict[str, float] = field(
        default_factory=dict,
        metadata=_keyed(
            "fixed GPU time of a fused attention call (launch, prologue, epilogue, cuDNN's memset), by backend",
            "us",
            ATTENTION_BACKENDS,
        ),  # fmt: skip
    )
    attention_tile_q: dict[str, float] = field(
        default_factory=dict, metadata=_keyed("query rows per thread block, by backend", "rows", ATTENTION_BACKENDS)
    )
    attention_tile_kv: dict[str, float] = field(
        default_factory=dict,
        metadata=_keyed("key rows per main-loop iteration, by backend", "rows", ATTENTION_BACKENDS),
    )
    # -- host --------------------------------------------------------------------------------
    eager_kernel_us: float = field(
        default=0.0, metadata=doc("eager host cost per kernel (dispatcher + allocator + launch)", "us", positive=False)
    )
    eager_op_us: dict[str, float] = field(
        default_factory=dict, metadata=_keyed("eager host cost per call of measured ops", "us", EAGER_OPS)
    )
    compiled_kernel_us: float = field(
        default=0.0,
        metadata=doc("host cost per kernel launched by compiled code (no dispatcher)", "us", positive=False),
    )
    graph_gap_us: float = field(
        default=0.0, metadata=doc("device gap between kernels of a replayed CUDA graph", "us", positive=False)
    )
    graph_gemm_gap_us: float = field(
        default=0.0,
        metadata=doc(
            "extra device gap of a GEMM kernel (linear, matmul) in a replayed CUDA graph", "us", positive=False
        ),
    )
    graph_memset_gap_us: float = _measured(
        "extra device gap per cuDNN fused-attention call in a replayed CUDA graph (its memset node before the "
        "kernel: switch/switch.csv cuDNN vs FlashAttention-2 chains)",
        "us",
    )
    graph_small_kernel_us: float = _measured(
        "extra time of a small kernel (an op touching <= 1 MiB) replayed from a CUDA graph over the same kernel "
        "launched eagerly (the memory-bound constants come from eager profiles)",
        "us",
    )
    graph_launch_us: float = field(default=0.0, metadata=doc("host cost of one graph replay", "us", positive=False))
    graph_node_launch_us: float = _measured(
        "host time of a graph replay's launch per kernel node, which a replay started from an idle GPU waits for "
        "(runtime replay: from_idle; switch/switch.csv launch rows)",
        "us",
    )

    def __post_init__(self) -> None:
        for name in ("bandwidth_gbs", "softmax_row_gbs", "softmax_unaligned_row_gbs", "softmax_fp32_row_gbs",
                     "attention_efficiency", "attention_gscores_s", "attention_tile_us", "attention_partial_us",
                     "attention_fixed_us", "attention_tile_q", "attention_tile_kv", "eager_op_us"):  # fmt: skip
            keys = type(self).__dataclass_fields__[name].metadata["keys"]
            for key in set(getattr(self, name)) - set(keys):
                raise unknown("key", key, keys, where=f"gpu.{name}")

    @property
    def available(self) -> bool:
        """Whether the arch describes a GPU (runtime models need these constants)."""
        return self.kernel_floor_us > 0 and self.gemm_efficiency > 0

"""Which kernels a GPU software stack launches for each op (PyTorch + cuDNN/cuBLAS, diffusers).

`expand(op, kernels, graph, config)` rewrites the default kernels of one op (`sim.lower`) into
the kernels the stack launches, each tagged with its GPU class (`sim.cost.gpu.GK_*`); all of
them stay attributed to the op, as a profiler attributes kernels to the aten op launching them.

- conv: cuDNN runs NCHW convolutions in NHWC: the input and the weights (every call) are
  transposed (`nchwToNhwcKernel`, 2 launches; `par`: the contiguous runs moved, one per image x
  channel), the output transposed back, and the bias added by a
  separate broadcast kernel. 1x1 convs run as a GEMM on NCHW (no transposes), and overlapping
  convs over fewer than 8 channels (a UNet's conv_in) take a non-tensor-core NCHW path without them
  (`conv.csv`: conv1x1*, conv3x3_in); patchify convs (kernel = stride) over 3-16 channels do
  transpose (`reuse/reuse.csv` patch). channels_last: the conv and its bias add only.
- linear / matmul: one GEMM (cuBLASLt fuses the bias: a linear with a bias is `GK_LINEAR`).
- GroupNorm: statistics (one thread block per sample x group), parameters, apply: 3 kernels.
  LayerNorm: one kernel costed per row; a per-head (q/k) LayerNorm over a rank-4 input first
  copies it (diffusers' processors normalize the transposed [b, h, s, d] view: a head copy); RMSNorm as transformers writes it (to fp32, pow, mean,
  add eps, rsqrt, mul, to fp16, mul weight: 8 kernels; 1 when compiled).
- GEGLU / SwiGLU: the activation over the gate half, then a mul, both over the projection's two
  chunk halves (non-contiguous views: PyTorch's non-vectorized kernel, `strided`). Rotary embeddings as
  transformers writes them: mul, neg, cat, mul, add.
- attention: fused (cuDNN, FlashAttention-2, memory-efficient; head dims padded to the kernel's
  supported sizes; cuDNN's launches a memset first) or unfused as diffusers' AttnProcessor: head split copies of q, k, v,
  baddbmm, softmax (rows of Lk), bmm, head merge copy; `math` adds fp32 upcast kernels around the softmax.
  An `upcast` attention (diffusers' upcast_attention, SD 2.x) in the unfused processor casts q and k
  to fp32 (PyTorch's non-vectorized cast kernel: `strided`), computes the scores with an fp32 GEMM on
  the CUDA cores (`GK_SGEMM`), the softmax in fp32, and casts the probabilities back (dispatch.csv).
- diffusers' divisions by a unit factor (`rescale_div`: ResnetBlock2D's `/ output_scale_factor`,
  AttnProcessor's `/ rescale_output_factor`): one vectorized pointwise kernel over the op's output
  (the profiled forwards' `aten::div` launches: one per resnet and per attention module).
- diffusers' timestep embedding: 12 tiny kernels (`_sinusoidal`); adaLN's `x * (1 + scale)`: the
  `1 + scale` over the modulation chunk, then the broadcast multiply.
- L2 reuse: a lone arithmetic elementwise (not an activation) or copy kernel records its inputs produced inside the graph and
  their reuse distance (`sim.runtime.l2`); the cost model reads them from L2 when that fits.
- compiled modes: pointwise ops (activation, elementwise) fuse into a producing norm or
  pointwise op that feeds only them (no launch, no round trip), and into GEMM epilogues (the
  `fuse_elementwise` pass, added by the engine).
"""

from __future__ import annotations

import math

from workloads.ir import CONV_KINDS, Op, OpGraph, OpKind, numel

from ..arch import VECTOR_CLASSES
from ..cost.gpu import (
    GK_ACT_TRANSPOSE,
    GK_ATTN_CUDNN,
    GK_ATTN_EFFICIENT,
    GK_ATTN_FLASH2,
    GK_BROADCAST,
    GK_CONV,
    GK_COPY,
    GK_ELEMENTWISE,
    GK_FUSED,
    GK_GATHER,
    GK_GEMM,
    GK_GN_APPLY,
    GK_GN_PARAMS,
    GK_GN_STATS,
    GK_HEAD_COPY,
    GK_LAYERNORM,
    GK_LINEAR,
    GK_PERMUTE,
    GK_RESAMPLE,
    GK_SGEMM,
    GK_SOFTMAX,
    GK_STRIDED,
    GK_WEIGHT_TRANSPOSE,
)  # fmt: skip
from ..lower.kernels import Unit
from .config import RuntimeConfig
from .l2 import reuse

_VCLASS = {name: i for i, name in enumerate(VECTOR_CLASSES)}
# Head dims each fused kernel is compiled for (a head dim is padded to the next one).
HEAD_DIMS = {
    GK_ATTN_CUDNN: (64, 128, 192, 256),  # cuDNN sm90 SDPA kernels 64x128x{64,128,192} (calibration.yaml)
    GK_ATTN_FLASH2: (32, 64, 96, 128, 160, 192, 224, 256),  # FlashAttention-2 (Dao 2023)
}
BACKENDS = {"cudnn": GK_ATTN_CUDNN, "flash2": GK_ATTN_FLASH2, "efficient": GK_ATTN_EFFICIENT}
POINTWISE = frozenset({OpKind.ACTIVATION, OpKind.ELEMENTWISE})
FUSION_HOSTS = frozenset({OpKind.ACTIVATION, OpKind.ELEMENTWISE, OpKind.GROUP_NORM, OpKind.LAYER_NORM})


def vector(
    gk: int, words_in: int, words_out: int, elements: int = 0, par: int = 0, vclass: str = "elementwise"
) -> dict:
    """A memory-bound GPU kernel."""
    return {
        "unit": Unit.VECTOR, "vclass": _VCLASS[vclass], "elements": elements or words_out, "words_in": words_in,
        "words_out": words_out, "launches": 1, "par": par, "gpu_kind": gk,
    }  # fmt: skip


def move(gk: int, words: int, par: int = 0) -> dict:
    """A copy kernel reading and writing `words` (`par`: its contiguous runs, where costed)."""
    return {"unit": Unit.MOVE, "words_in": words, "words_out": words, "launches": 1, "par": par, "gpu_kind": gk}


def gemm(m: int, k: int, n: int, count: int = 1, gk: int = GK_GEMM, **extra: int) -> dict:
    return {"unit": Unit.GEMM, "m": m, "k": k, "n": n, "count": count, "a_dram": 1, "b_dram": 1, "c_dram": 1,
            "launches": 1, "gpu_kind": gk, **extra}  # fmt: skip


RESCALE_DIV = "rescale_div"  # attribute set by `workloads.zoo.blocks.layers.mark_rescale_div`


def expand(op: Op, kernels: list[dict], graph: OpGraph, config: RuntimeConfig) -> list[dict]:
    """The kernels `config`'s software stack launches for `op` (default kernels: `kernels`)."""
    result = _stack_kernels(op, kernels, graph, config)
    if op.attrs.get(RESCALE_DIV) and not config.compiled:
        # diffusers divides the output by a unit factor: a vectorized pointwise kernel over what
        # the op just wrote (read from L2 when it fits); a compiler fuses it away
        out = numel(op.output)
        result.append({**vector(GK_ELEMENTWISE, out, out), L2_WORDS: out, L2_DISTANCE: 0})
    return result


def _stack_kernels(op: Op, kernels: list[dict], graph: OpGraph, config: RuntimeConfig) -> list[dict]:
    kind, out = op.kind, numel(op.output)
    if op.annotations.get("epilogue_of") is not None:  # runs inside its GEMM's epilogue
        return [{**kernels[0], "gpu_kind": GK_FUSED}]
    if kind in CONV_KINDS:
        return _conv(op, kernels[0], config)
    if kind in (OpKind.LINEAR, OpKind.MATMUL):  # cuBLASLt adds a linear's bias in the GEMM epilogue
        gk = GK_LINEAR if kind is OpKind.LINEAR and op.attrs.get("bias") else GK_GEMM
        return [{**k, "gpu_kind": gk} for k in kernels]
    if kind is OpKind.ATTENTION:
        return _attention(op, kernels, config)
    words_in = sum(numel(s) for s in op.inputs)
    if kind is OpKind.GROUP_NORM:
        par = op.output[0] * op.attrs["groups"]
        result = [vector(GK_GN_STATS, words_in, 0, words_in, par, "norm")]
        if not config.compiled:
            result.append(vector(GK_GN_PARAMS, 0, 0, par, par, "norm"))
        result.append(vector(GK_GN_APPLY, words_in, out, out, 0, "norm"))
    elif kind is OpKind.LAYER_NORM:
        rows = out // op.output[-1]
        if op.attrs.get("rms") and not config.compiled:
            result = _rms_norm(out, rows)
        else:
            result = [vector(GK_LAYERNORM, words_in, out, out, rows, "norm")]
        if len(op.inputs[0]) == 4 and not config.compiled:  # a per-head q/k norm: its input is a
            result.insert(0, move(GK_HEAD_COPY, words_in))  # transposed head view, copied first
    elif kind is OpKind.ACTIVATION and op.attrs.get("fn") in ("geglu", "swiglu"):
        # the gate and value are the two chunk halves of one projection: non-contiguous views
        result = [vector(GK_STRIDED, out, out, vclass="activation"), vector(GK_STRIDED, 2 * out, out)]
    elif kind is OpKind.ELEMENTWISE and op.attrs.get("fn") == "sinusoidal" and not config.compiled:
        result = _sinusoidal(op)
    elif kind is OpKind.ELEMENTWISE and op.attrs.get("fn") == "rope":
        result = [vector(GK_ELEMENTWISE, 2 * out, out), vector(GK_ELEMENTWISE, out // 2, out // 2),
                  move(GK_COPY, out), vector(GK_ELEMENTWISE, 2 * out, out), vector(GK_ELEMENTWISE, 2 * out, out)]  # fmt: skip
    elif kind in POINTWISE:
        broadcast = any(tuple(s) != tuple(op.output) for s in op.inputs)
        result = [{**kernels[0], "gpu_kind": GK_BROADCAST if broadcast else GK_ELEMENTWISE}]
        if _is_modulation(op) and not config.compiled:  # `1 + scale` over the per-sample vector first
            small = min(numel(s) for s in op.inputs)
            result.insert(0, vector(GK_STRIDED, small, small))
    elif kind is OpKind.SOFTMAX:
        result = [{**kernels[0], "gpu_kind": GK_SOFTMAX, "par": out // op.output[-1]}]
    elif kind is OpKind.RESAMPLE:
        result = [{**kernels[0], "gpu_kind": GK_RESAMPLE}]
    elif kind is OpKind.DATA_MOVEMENT:
        result = [{**k, "gpu_kind": GK_COPY if op.attrs.get("what") == "concat" else GK_PERMUTE} for k in kernels]
    else:  # embedding: an indexed gather
        result = [{**k, "gpu_kind": GK_GATHER} for k in kernels]
    if config.compiled:
        _fuse_pointwise(op, result, graph)
    elif len(result) == 1 and result[0]["gpu_kind"] in L2_REUSE_KINDS and kind is not OpKind.ACTIVATION:
        words, distance = reuse(op, graph)  # not under a compiler's fusion; activations are ALU-bound
        result[0] = {**result[0], L2_WORDS: words, L2_DISTANCE: distance}
    return result


# A vectorized arithmetic (add, mul) or copy kernel, one per op, reading tensors recent kernels
# touched: the words produced inside the graph and their reuse distance (kernel fields `l2_words`,
# `l2_distance`; `sim.cost.gpu`: L2-resident reads). Activations (exp, erf,
# division per element) gain nothing from L2: reuse.csv's SiLU of an L2-resident input takes
# 1.45 us in graph replay, its add 1.0 (the contiguous GELU runs at 3.0 TB/s against 4.1, memory.csv).
L2_REUSE_KINDS = frozenset({GK_ELEMENTWISE, GK_COPY})
L2_WORDS, L2_DISTANCE = "l2_words", "l2_distance"


ADALN_SCALE = "adaln_scale"  # the `role` attribute of adaLN's `x * (1 + scale)` multiply


def _is_modulation(op: Op) -> bool:
    """adaLN modulation `x * (1 + scale)` (`workloads.zoo.blocks.dit_blocks.modulate` gives its
    multiply `role="adaln_scale"`): PyTorch first adds 1 to the chunk of the modulation vector
    (a non-contiguous view: the non-vectorized kernel), then runs the broadcast multiply."""
    return op.kind is OpKind.ELEMENTWISE and op.attrs.get("role") == ADALN_SCALE


def _sinusoidal(op: Op) -> list[dict]:
    """diffusers' `get_timestep_embedding` and its caller in eager PyTorch: arange, the exponent's
    multiply and divide, exp, the timesteps' cast to fp32 and outer product, the `scale *` multiply,
    sin, cos, the cat and the flip_sin_to_cos cat, and the embedding's cast to the model's dtype
    (`.to(hidden_dtype)`) -- twelve tiny kernels (the profiled DiT forward shows each per block:
    `forward_kernels.csv`, aten::arange/mul/div/exp/sin/cos/cat/to)."""
    out, n = numel(op.output), op.output[0]
    half = max(1, op.output[-1] // 2)
    tiny = [vector(GK_ELEMENTWISE, 0, half)] + [vector(GK_ELEMENTWISE, half, half) for _ in range(3)]
    cast = {**vector(GK_ELEMENTWISE, n, n), "c_bits": 32}
    rows = [{**vector(GK_ELEMENTWISE, out // 2, out // 2), "a_bits": 32, "c_bits": 32} for _ in range(4)]
    cats = [{**move(GK_COPY, out), "a_bits": 32, "c_bits": 32} for _ in range(2)]
    to16 = {**vector(GK_ELEMENTWISE, out, out), "a_bits": 32}
    return [*tiny, cast, *rows, *cats, to16]


def _rms_norm(out: int, rows: int) -> list[dict]:
    """transformers' LlamaRMSNorm in eager PyTorch: 8 kernels, the fp32 copies twice as wide."""
    to32 = {**vector(GK_ELEMENTWISE, out, out), "c_bits": 32}
    pow_ = {**vector(GK_ELEMENTWISE, out, out), "a_bits": 32, "c_bits": 32}
    mean = {**vector(GK_LAYERNORM, out, rows, par=rows), "a_bits": 32, "c_bits": 32}
    eps = {**vector(GK_ELEMENTWISE, rows, rows), "a_bits": 32, "c_bits": 32}
    rsqrt = {**vector(GK_ELEMENTWISE, rows, rows), "a_bits": 32, "c_bits": 32}
    mul = {**vector(GK_BROADCAST, out + rows, out), "a_bits": 32, "c_bits": 32}
    to16 = {**vector(GK_ELEMENTWISE, out, out), "a_bits": 32}
    return [to32, pow_, mean, eps, rsqrt, mul, to16, vector(GK_BROADCAST, out, out)]


def _conv(op: Op, k: dict, config: RuntimeConfig) -> list[dict]:
    a = op.attrs
    conv = {**k, "gpu_kind": GK_CONV}
    result = [conv]
    # a patchify conv (kernel = stride: DiT/PixArt's 4 channels, a ViT's 3) runs the NHWC tensor-core
    # path whatever its channels; an overlapping conv over < 8 channels does not (reuse/reuse.csv patch)
    patchify = tuple(a["kernel"]) == tuple(a.get("stride", ()))
    transposes = (config.conv_layout == "nchw" and math.prod(a["kernel"]) > 1
                  and (a["in_ch"] % 8 == 0 or patchify))  # fmt: skip
    if transposes:  # each moves runs of one (image, channel)'s spatial extent (a weight's: the kernel's)
        x, y = op.inputs[0], op.output
        w_rows = a["out_ch"] * a["in_ch"] // a["groups"]
        result = [move(GK_ACT_TRANSPOSE, numel(x), x[0] * x[1]),
                  move(GK_WEIGHT_TRANSPOSE, w_rows * math.prod(a["kernel"]), w_rows), conv,
                  move(GK_ACT_TRANSPOSE, numel(y), y[0] * y[1])]  # fmt: skip
    if a.get("bias"):
        out = numel(op.output)
        result.append(vector(GK_BROADCAST, out + a["out_ch"], out))
    return result


def _backend(op: Op, config: RuntimeConfig, attention: str) -> str:
    choice = config.attention_kernel
    if choice != "auto":
        return choice
    if attention == "unfused":
        return "unfused"
    return "efficient" if max(op.attrs["head_dim"], op.attrs["v_head_dim"]) > 256 else "cudnn"


def _pad(d: int, gk: int) -> int:
    for size in HEAD_DIMS.get(gk, ()):
        if d <= size:
            return size
    return -(-d // 8) * 8


def _attention(op: Op, kernels: list[dict], config: RuntimeConfig) -> list[dict]:
    a = op.attrs
    attention = "unfused" if len(kernels) == 3 and kernels[0].get("role") == "qk" else "fused"
    backend = _backend(op, config, attention)
    bh, lq, lk = a["batch"] * a["heads"], a["lq"], a["lk"]
    if backend in BACKENDS:
        gk = BACKENDS[backend]
        d = _pad(max(a["head_dim"], a["v_head_dim"]), gk)
        # cuDNN's SDPA clears a buffer (a memset node) before its kernel on every call
        return [gemm(lq, d, lk, bh, gk, launches=2 if gk == GK_ATTN_CUDNN else 1)]
    q, kv, o = bh * lq * a["head_dim"], bh * lk * a["head_dim"], bh * lq * a["v_head_dim"]
    scores = bh * lq * lk
    softmax = vector(GK_SOFTMAX, scores, scores, par=bh * lq, vclass="softmax")
    middle = [softmax]
    if backend == "math":  # scores upcast to fp32 for the softmax, and back
        middle = [{**vector(GK_ELEMENTWISE, scores, scores), "c_bits": 32},
                  {**softmax, "a_bits": 32, "c_bits": 32}, {**vector(GK_ELEMENTWISE, scores, scores), "a_bits": 32}]  # fmt: skip
    qk = {**gemm(lq, a["head_dim"], lk, bh), "role": "qk"}
    pv = {**gemm(lq, lk, a["v_head_dim"], bh), "role": "pv"}
    split = [move(GK_HEAD_COPY, q), move(GK_HEAD_COPY, kv), move(GK_HEAD_COPY, bh * lk * a["v_head_dim"])]
    if a.get("upcast") and backend == "unfused":
        fp32 = {"a_bits": 32, "c_bits": 32}
        # the casts are aten::to copies (PyTorch's unrolled kernel up, its vectorized copy back down)
        split += [{**move(GK_STRIDED, q), "c_bits": 32}, {**move(GK_STRIDED, kv), "c_bits": 32}]
        qk = {**qk, **fp32, "b_bits": 32, "gpu_kind": GK_SGEMM}
        middle = [{**softmax, **fp32}, {**move(GK_COPY, scores), "a_bits": 32}]
    return [*split, qk, *middle, pv, move(GK_HEAD_COPY, o)]


def _fused_producer(op: Op, graph: OpGraph) -> Op | None:
    """The norm or pointwise op `op` fuses into under a compiler (None: it launches its own)."""
    if op.kind not in POINTWISE or op.attrs.get("fn") in ("rope",):
        return None
    for name in graph.graph.predecessors(op.name):
        producer = graph[name]
        if (producer.kind in FUSION_HOSTS and graph.graph.out_degree(name) == 1
                and numel(producer.output) == numel(op.output) and not producer.annotations.get("epilogue_of")):  # fmt: skip
            return producer
    return None


def _fuse_pointwise(op: Op, kernels: list[dict], graph: OpGraph) -> None:
    """Compiled fusion: `op`'s pointwise consumer keeps `op`'s output on chip (no write), and
    `op`, when it fuses into its producer, runs in the producer's kernel (no launch, no read)."""
    consumers = list(graph.graph.successors(op.name))
    fused = _fused_producer(graph[consumers[0]], graph) if len(consumers) == 1 else None
    if fused is not None and fused.name == op.name:
        kernels[-1]["words_out"] = 0
    producer = _fused_producer(op, graph)
    if producer is not None:
        first = kernels[0]
        kernels[0] = {**first, "words_in": max(0, first["words_in"] - numel(producer.output)), "launches": 0,
                      "gpu_kind": GK_FUSED}  # fmt: skip

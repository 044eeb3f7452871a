"""Host cost of a runtime: what the device waits for between kernels.

- eager: each op costs the host its measured dispatch time (`gpu.eager_op_us` for the ops the
  calibration timed, else `gpu.eager_kernel_us` per kernel launched), in an asynchronous launch
  queue (`sim.schedule.queued`): the device idles only when the host falls behind.
- compiled: generated code launches each kernel at `gpu.compiled_kernel_us`, no dispatcher.
- eager and compiled: a cuDNN fused attention over a key length it has not run (a decode step over
  a grown cache) first builds an execution plan on the host (`gpu.cudnn_plan_us` per call;
  holdout/llama_growing/host_profile); under graph replay shapes are fixed and plans reused.
- cuda_graph / compiled_graph: one replay per plan entry (`gpu.graph_launch_us`) and a gap of
  `gpu.graph_gap_us` per kernel on the device, `gpu.graph_gemm_gap_us` more per GEMM kernel (a
  linear or matmul: chains.csv, cuBLAS kernels in a dependent chain), `gpu.graph_memset_gap_us` more per
  cuDNN fused-attention call (its memset node: switch.csv); with `replay: from_idle` (each replay
  started from an idle GPU) also the host's launch of every node, `gpu.graph_node_launch_us` (a replay
  from idle = back to back + the host launch: switch.csv launch rows); each kernel of an op touching
  at most `SMALL_OP_BYTES` runs `gpu.graph_small_kernel_us` longer than launched eagerly (chains.csv
  twin rows: +0.1 us for kernels of few thread blocks, ~0 above a few MB), charged with the gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from workloads.ir import CONV_KINDS, Op, OpKind, PlanStep

from ..arch.gpu import EAGER_OPS, GpuConfig
from ..schedule import Schedule, queued, serial
from .config import RuntimeConfig
from .l2 import op_bytes

SMALL_OP_BYTES = 1 << 20  # an op's kernels are small (few thread blocks) at most this many bytes

GEMM_OPS = frozenset({OpKind.LINEAR, OpKind.MATMUL})  # ops launching one cuBLAS GEMM per call
_EAGER_KEY = {OpKind.LINEAR: "linear", OpKind.GROUP_NORM: "group_norm", OpKind.ACTIVATION: "activation",
              OpKind.ATTENTION: "attention", **dict.fromkeys(CONV_KINDS, "conv")}  # fmt: skip


def _eager_key(op: Op) -> str | None:
    if op.kind is OpKind.LAYER_NORM:
        return None if op.attrs.get("rms") else "layer_norm"
    return _EAGER_KEY.get(op.kind)


@dataclass(frozen=True)
class HostModel:
    """Host seconds per call of each op (`per_op_s`), before its first kernel (`first_s`), per
    plan entry (`entry_s`), and whether the host runs ahead of the device (`asynchronous`)."""

    per_op_s: np.ndarray
    first_s: np.ndarray
    entry_s: float
    asynchronous: bool

    def schedule(self, plan: Sequence[PlanStep], busy_s: np.ndarray, extra_s: np.ndarray) -> Schedule:
        if self.asynchronous:
            return queued(plan, busy_s, self.per_op_s, self.first_s, extra_s)
        return serial(plan, busy_s, self.per_op_s + extra_s, self.entry_s)


def host_model(
    ops: Sequence[Op],
    launches: np.ndarray,
    gpu: GpuConfig,
    config: RuntimeConfig,
    plan_builds: np.ndarray | None = None,
    cudnn_calls: np.ndarray | None = None,
) -> HostModel:
    """The host model of `config` for ops launching `launches` kernels per call, `cudnn_calls` of them
    cuDNN fused attention (a memset node first) and `plan_builds` of those building a plan first
    (None: none)."""
    launches = np.asarray(launches, dtype=np.float64)
    plans = np.zeros_like(launches) if plan_builds is None else np.asarray(plan_builds, dtype=np.float64)
    plan_s = plans * gpu.cudnn_plan_us * 1e-6
    if config.graph:
        gemms = np.array([op.kind in GEMM_OPS for op in ops], dtype=np.float64) * np.minimum(launches, 1.0)
        small = np.array([op_bytes(op) <= SMALL_OP_BYTES for op in ops], dtype=np.float64)
        per_launch = gpu.graph_gap_us + small * gpu.graph_small_kernel_us
        if config.replay == "from_idle":  # the device waits for the host's launch of every node
            per_launch = per_launch + gpu.graph_node_launch_us
        memsets = np.zeros_like(launches) if cudnn_calls is None else np.asarray(cudnn_calls, dtype=np.float64)
        gap = (launches * per_launch + gemms * gpu.graph_gemm_gap_us + memsets * gpu.graph_memset_gap_us) * 1e-6
        return HostModel(gap, np.zeros_like(gap), gpu.graph_launch_us * 1e-6, asynchronous=False)
    if config.compiled:
        per_op = launches * gpu.compiled_kernel_us * 1e-6 + plan_s
        return HostModel(per_op, np.minimum(per_op, gpu.compiled_kernel_us * 1e-6) + plan_s, 0.0, asynchronous=True)
    measured = {k: gpu.eager_op_us.get(k, 0.0) for k in EAGER_OPS}
    per_kernel = gpu.eager_kernel_us * 1e-6
    per_op = np.array([max(measured.get(_eager_key(op) or "", 0.0) * 1e-6, n * per_kernel) if n else 0.0
                       for op, n in zip(ops, launches)])  # fmt: skip
    first = np.where(launches > 0, per_op / np.maximum(launches, 1), 0.0) + plan_s
    return HostModel(per_op + plan_s, first, 0.0, asynchronous=True)

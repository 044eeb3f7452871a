"""Everything about one lowered graph that does not depend on the hardware, computed once.

A design-space sweep simulates one lowering on many archs: the kernel table, its unique
kernels, the step plan and the per-op static columns are built here once per (graph, passes,
lowering options) and reused by every `Result.assemble`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from workloads.ir import Op, OpGraph, PlanStep

from ..arch import VECTOR_CLASSES
from ..cost import KERNEL, group_sum
from ..cost.gpu import GK_ATTN_CUDNN
from ..lower import Kernels, Unit


@dataclass(frozen=True)
class Prepared:
    """A lowered graph: its kernels (`kernels.cols`) and their unique records, and per op the
    repeat, true MACs, launches, extra latency, op class and stage codes."""

    graph: OpGraph
    kernels: Kernels

    @cached_property
    def ops(self) -> list[Op]:
        return self.graph.ops()

    @cached_property
    def plan(self) -> list[PlanStep]:
        return self.graph.step_plan()

    @cached_property
    def unique(self) -> tuple[np.ndarray, np.ndarray]:
        """(unique kernel records, index of each kernel's unique record)."""
        records = self.kernels.records()
        matrix = records.view(np.int64).reshape(len(records), -1)
        unique, inverse = np.unique(matrix, axis=0, return_inverse=True)
        return np.ascontiguousarray(unique).view(KERNEL).reshape(-1), inverse.reshape(-1)

    def source(self, kind: str) -> np.ndarray:
        """The metric row each kernel reads: 'unique' (one row per unique kernel) or 'kernels'."""
        return self.unique[1] if kind == "unique" else self._kernel_rows

    @cached_property
    def _kernel_rows(self) -> np.ndarray:
        return np.arange(len(self.idx), dtype=np.int64)

    def action_weights(self, native: str, source: np.ndarray) -> dict[str, Any]:
        """Per metric row of `source` (see `source`), the repeats of the kernels reading it, in
        all ('repeat'), by compute dtype ('dtypes' rows, 'dtype_names') and for vector kernels by
        class ('classes' rows, 'class_names'): action totals are these weights times the row's
        per-call counts."""
        key = (native, source is self._kernel_rows)
        if key not in self._weights:
            rows = int(source.max()) + 1 if len(source) else 0
            per_kernel = self.repeat[self.idx]

            def weigh(mask: np.ndarray) -> np.ndarray:
                return np.bincount(source, weights=np.where(mask, per_kernel, 0.0), minlength=rows)

            dtypes = self.compute_dtypes(native)
            self._weights[key] = {
                "repeat": np.bincount(source, weights=per_kernel, minlength=rows),
                "dtype_names": list(dtypes),
                "dtypes": np.array([weigh(mask[self.idx]) for mask in dtypes.values()]).reshape(len(dtypes), rows),
                "class_names": list(self.vector_rows),
                "classes": np.array([weigh(r) for r in self.vector_rows.values()]).reshape(len(self.vector_rows), rows),
            }
        return self._weights[key]

    @cached_property
    def _weights(self) -> dict[tuple, dict[str, Any]]:
        return {}

    @cached_property
    def idx(self) -> np.ndarray:
        return self.kernels.cols["op"]

    @cached_property
    def hidden(self) -> np.ndarray:
        """Kernels that run concurrently with their op's other kernels (fused softmax)."""
        return self.kernels.cols["overlap"].astype(bool)

    @cached_property
    def hidden_ops(self) -> tuple[np.ndarray, np.ndarray]:
        """(ops with hidden kernels, each kernel's position among them or -1 when not hidden)."""
        ops, position = np.unique(self.idx[self.hidden], return_inverse=True)
        group = np.full(len(self.idx), -1, dtype=np.int64)
        group[self.hidden] = position.reshape(-1)
        return ops, group

    @cached_property
    def repeat(self) -> np.ndarray:
        return np.array([op.repeat for op in self.ops], dtype=np.float64)

    @cached_property
    def macs(self) -> np.ndarray:
        """True MACs of one call (padded tiles cost cycles but are not MACs)."""
        return np.array([op.macs for op in self.ops], dtype=np.float64)

    @cached_property
    def launches(self) -> np.ndarray:
        return np.bincount(self.idx, weights=self.kernels.cols["launches"], minlength=len(self.ops))

    @cached_property
    def cudnn_calls(self) -> np.ndarray:
        """cuDNN fused-attention calls per op call."""
        return np.bincount(self.idx, weights=self.kernels.cols["gpu_kind"] == GK_ATTN_CUDNN, minlength=len(self.ops))

    @cached_property
    def plan_builds(self) -> np.ndarray:
        """cuDNN fused-attention calls per op call over a key length new to cuDNN (`kv_growing` ops)."""
        growing = np.array([bool(op.attrs.get("kv_growing")) for op in self.ops])
        return np.where(growing, np.minimum(self.cudnn_calls, 1.0), 0.0)

    @cached_property
    def extra_latency_s(self) -> np.ndarray:
        """Device idle per call that passes attach (e.g. a cache lookup)."""
        return np.array([op.annotations.get("extra_latency_s", 0.0) for op in self.ops], dtype=np.float64)

    @cached_property
    def kernel_count(self) -> np.ndarray:
        return np.bincount(self.idx, minlength=len(self.ops))

    def codes(self, column: str) -> tuple[list[str], np.ndarray]:
        """(distinct values in order of first appearance, code of each op) of an op column."""
        return self._codes[column]

    @cached_property
    def _codes(self) -> dict[str, tuple[list[str], np.ndarray]]:
        out = {}
        for column, values in (("op_class", [op.op_class for op in self.ops]), ("stage", [op.stage for op in self.ops])):
            names = list(dict.fromkeys(values))
            index = {v: i for i, v in enumerate(names)}
            out[column] = (names, np.array([index[v] for v in values], dtype=np.int64))
        return out

    def compute_dtypes(self, native: str) -> dict[str, np.ndarray]:
        """Per compute dtype, the mask of ops whose MACs run in it (unset precision: `native`)."""
        if native not in self._dtype_masks:
            dtypes = np.array([op.precision.compute if op.precision else native for op in self.ops])
            self._dtype_masks[native] = {d: dtypes == d for d in dict.fromkeys(dtypes.tolist())}
        return self._dtype_masks[native]

    @cached_property
    def _dtype_masks(self) -> dict[str, dict[str, np.ndarray]]:
        return {}

    @cached_property
    def _entry_groups(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Plan entries grouped by identical op lists (the 50 steps of a loop are one group):
        (group of each entry, ops of every group concatenated, group of each of those, groups)."""
        index: dict[tuple[int, ...], int] = {}
        group = np.array([index.setdefault(p.ops, len(index)) for p in self.plan], dtype=np.int64)
        ops = np.fromiter((i for key in index for i in key), dtype=np.int64)
        owner = np.repeat(np.arange(len(index), dtype=np.int64), [len(key) for key in index])
        return group, ops, owner, len(index)

    @cached_property
    def first_of_entry(self) -> np.ndarray:
        """How many plan entries each op opens (a captured-graph replay is charged to it)."""
        firsts = [p.ops[0] for p in self.plan if p.ops]
        return np.bincount(np.array(firsts, dtype=np.int64), minlength=len(self.ops)).astype(np.float64)

    def per_entry(self, values: np.ndarray) -> np.ndarray:
        """Sum of a per-op, per-call quantity (ops, or archs x ops) over each plan entry's ops
        (one sum per distinct entry, however many steps share it)."""
        group, ops, owner, groups = self._entry_groups
        v = np.ascontiguousarray(values, dtype=np.float64)
        sums = group_sum(v.reshape(1, -1, v.shape[-1]), ops, owner, groups)[0][:, group]
        return sums.reshape(*v.shape[:-1], len(group))

    @cached_property
    def vector_rows(self) -> dict[str, np.ndarray]:
        """Per vector class, the mask of the kernels of that class."""
        vector = self.kernels.cols["unit"] == Unit.VECTOR
        out = {}
        for j, vclass in enumerate(VECTOR_CLASSES):
            rows = vector & (self.kernels.cols["vclass"] == j)
            if rows.any():
                out[vclass] = rows
        return out

    @cached_property
    def first_gemm(self) -> dict[str, np.ndarray]:
        """Dims of each op's first GEMM kernel (zeros for ops without one)."""
        n, cols = len(self.ops), self.kernels.cols
        out = {c: np.zeros(n, dtype=np.int64) for c in ("m", "k", "n", "count")}
        is_gemm = cols["unit"] == Unit.GEMM
        _, first = np.unique(cols["op"][is_gemm], return_index=True)
        rows = np.flatnonzero(is_gemm)[first]
        for c, column in out.items():
            column[cols["op"][rows]] = cols[c][rows]
        return out

"""Timeline export: a Chrome/Perfetto trace of the schedule, idle gaps and steps included.

Process "device" has a "steps" track (each stage part and loop step is a slice), one track per
unit ("systolic arrays (GEMM)", "vector unit", "DMA (data movement)"): every op occurrence of the
step plan is a slice on its unit's track (50 denoising steps are 50 slices per op), and a "DRAM
bandwidth (GB/s)" counter track (each op's DRAM bytes over its busy time). Process "host" has
the launch gaps ("host launch (device idle)"). Open the JSON in https://ui.perfetto.dev or
chrome://tracing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .result import Result

HOST, STEPS = 2, 3


def timeline(result: Result) -> pd.DataFrame:
    """Per op occurrence in execution order: op, step label, start, end of the idle launch gap
    (busy_start_s), end, and idle seconds."""
    s, o = result.schedule, result.ops
    return pd.DataFrame(
        {
            "op": o["op"].to_numpy()[s.op],
            "step": result.steps["step"].to_numpy()[s.entry],
            "stage": o["stage"].to_numpy()[s.op],
            "op_class": o["op_class"].to_numpy()[s.op],
            "start_s": s.start_s,
            "busy_start_s": s.start_s + s.idle_s,
            "end_s": s.end_s,
            "idle_s": s.idle_s,
        }
    )


UNIT_TRACKS = {0: (10, "systolic arrays (GEMM)"), 1: (11, "vector unit"), 2: (12, "DMA (data movement)")}
DEVICE_PID, HOST_PID = 1, 2


def op_units(result: Result) -> np.ndarray:
    """Per op, the unit its time is charged to: GEMM if it has a GEMM kernel (a fused attention's
    softmax overlaps the arrays), else vector if it has a vector kernel, else DMA."""
    n = len(result.ops)
    if not result.kernel_data:
        return np.full(n, 1)
    kernels = result.kernel_data[1]
    op, unit = kernels.cols["op"], kernels.cols["unit"].astype(np.int64)
    best = np.full(n, 2)
    np.minimum.at(best, op, unit)
    return best


def trace_events(result: Result) -> list[dict]:
    """Chrome trace events (microseconds). Process "device": the steps track (one slice per stage
    part and loop step), one track per unit (systolic arrays, vector unit, DMA) with one slice per
    op occurrence, and a DRAM bandwidth counter (GB/s averaged over each op's busy time). Process
    "host": the launch gaps in which the device idles."""
    device = f"device: {result.arch.name} ({result.name})"
    events: list[dict] = [
        {"ph": "M", "pid": DEVICE_PID, "tid": 0, "name": "process_name", "args": {"name": device}},
        {"ph": "M", "pid": DEVICE_PID, "tid": 0, "name": "process_sort_index", "args": {"sort_index": 0}},
        {"ph": "M", "pid": HOST_PID, "tid": 0, "name": "process_name", "args": {"name": "host"}},
        {"ph": "M", "pid": HOST_PID, "tid": 0, "name": "process_sort_index", "args": {"sort_index": 1}},
        {"ph": "M", "pid": DEVICE_PID, "tid": STEPS, "name": "thread_name", "args": {"name": "steps"}},
        {"ph": "M", "pid": HOST_PID, "tid": HOST, "name": "thread_name", "args": {"name": "host launch (device idle)"}},
    ]
    for tid, name in UNIT_TRACKS.values():
        events.append({"ph": "M", "pid": DEVICE_PID, "tid": tid, "name": "thread_name", "args": {"name": name}})
    for row in result.steps.itertuples(index=False):
        events.append({"ph": "X", "pid": DEVICE_PID, "tid": STEPS, "name": row.step, "cat": row.stage,
                       "ts": 1e6 * row.start_s, "dur": 1e6 * (row.end_s - row.start_s),
                       "args": {"stage": row.stage, "ops": int(row.ops)}})  # fmt: skip
    o = result.ops
    units = op_units(result)
    dram_call = ((o["dram_read_bytes"] + o["dram_write_bytes"]) / o["repeat"].clip(lower=1)).to_numpy()
    s = result.schedule
    op_index = s.op if s is not None else np.arange(len(o))
    for row, i in zip(timeline(result).itertuples(index=False), op_index):
        args = {"stage": row.stage, "class": row.op_class, "step": row.step}
        if row.idle_s > 0:
            events.append({"ph": "X", "pid": HOST_PID, "tid": HOST, "name": "launch", "cat": "idle",
                           "ts": 1e6 * row.start_s, "dur": 1e6 * row.idle_s, "args": args})  # fmt: skip
        busy = row.end_s - row.busy_start_s
        events.append({"ph": "X", "pid": DEVICE_PID, "tid": UNIT_TRACKS[int(units[i])][0], "name": row.op,
                       "cat": row.op_class, "ts": 1e6 * row.busy_start_s, "dur": 1e6 * busy, "args": args})  # fmt: skip
        if busy > 0:
            gbs = dram_call[i] / busy / 1e9
            events.append({"ph": "C", "pid": DEVICE_PID, "name": "DRAM bandwidth (GB/s)", "ts": 1e6 * row.busy_start_s,
                           "args": {"GB/s": round(float(gbs), 3)}})  # fmt: skip
            events.append({"ph": "C", "pid": DEVICE_PID, "name": "DRAM bandwidth (GB/s)", "ts": 1e6 * row.end_s,
                           "args": {"GB/s": 0.0}})  # fmt: skip
    return events


def write_trace(result: Result, path: str | Path) -> Path:
    """Write the Perfetto/Chrome JSON trace of `result` to `path`."""
    path = Path(path)
    path.write_text(json.dumps({"traceEvents": trace_events(result), "displayTimeUnit": "ms"}))
    return path

"""Timeline export: a Chrome/Perfetto trace of the schedule, idle gaps and steps included.

Every op occurrence of the step plan is a slice on the "device (ops)" track (50 denoising steps
are 50 slices per op); its launch gap is a slice on the "host launch (device idle)" track; each
stage and loop step is a slice on the "steps" track. Open the JSON in https://ui.perfetto.dev
or chrome://tracing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .result import Result

DEVICE, HOST, STEPS = 1, 2, 3


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


def trace_events(result: Result) -> list[dict]:
    """Chrome trace events (microseconds): steps, device slices per op occurrence, idle gaps."""
    events: list[dict] = [
        {"ph": "M", "pid": 1, "tid": 0, "name": "process_name", "args": {"name": f"{result.name} on {result.arch.name}"}},
        {"ph": "M", "pid": 1, "tid": STEPS, "name": "thread_name", "args": {"name": "steps"}},
        {"ph": "M", "pid": 1, "tid": DEVICE, "name": "thread_name", "args": {"name": "device (ops)"}},
        {"ph": "M", "pid": 1, "tid": HOST, "name": "thread_name", "args": {"name": "host launch (device idle)"}},
    ]
    for row in result.steps.itertuples(index=False):
        events.append({"ph": "X", "pid": 1, "tid": STEPS, "name": row.step, "cat": row.stage,
                       "ts": 1e6 * row.start_s, "dur": 1e6 * (row.end_s - row.start_s),
                       "args": {"stage": row.stage, "ops": int(row.ops)}})  # fmt: skip
    for row in timeline(result).itertuples(index=False):
        args = {"stage": row.stage, "class": row.op_class, "step": row.step}
        if row.idle_s > 0:
            events.append({"ph": "X", "pid": 1, "tid": HOST, "name": "launch", "cat": "idle",
                           "ts": 1e6 * row.start_s, "dur": 1e6 * row.idle_s, "args": args})  # fmt: skip
        events.append({"ph": "X", "pid": 1, "tid": DEVICE, "name": row.op, "cat": row.op_class,
                       "ts": 1e6 * row.busy_start_s, "dur": 1e6 * (row.end_s - row.busy_start_s), "args": args})  # fmt: skip
    return events


def write_trace(result: Result, path: str | Path) -> Path:
    """Write the Perfetto/Chrome JSON trace of `result` to `path`."""
    path = Path(path)
    path.write_text(json.dumps({"traceEvents": trace_events(result), "displayTimeUnit": "ms"}))
    return path

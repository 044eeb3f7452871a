"""Timeline export: a Chrome/Perfetto trace of the serial op schedule, idle gaps included.

Ops run one after another; an op's launch overhead is an idle gap on the device before it
(`launch_cycles`), drawn on a separate "host launch (device idle)" track. Open the JSON in
https://ui.perfetto.dev or chrome://tracing. An op with repeat > 1 (a denoising step) is one
slice covering all its repeats.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .result import Result


def timeline(result: Result) -> pd.DataFrame:
    """Per op: start, end of the idle launch gap (busy_start_s), end, and idle seconds."""
    o = result.ops
    hz = result.arch.frequency_mhz * 1e6
    idle = o["launch_cycles"] / hz
    return pd.DataFrame(
        {
            "op": o["op"],
            "stage": o["stage"],
            "op_class": o["op_class"],
            "repeat": o["repeat"],
            "start_s": o["start_s"],
            "busy_start_s": o["start_s"] + idle,
            "end_s": o["end_s"],
            "idle_s": idle,
        }
    )


def trace_events(result: Result) -> list[dict]:
    """Chrome trace events (microseconds): device slices per op, idle launch gaps."""
    events: list[dict] = [
        {"ph": "M", "pid": 1, "tid": 1, "name": "thread_name", "args": {"name": "device (ops)"}},
        {"ph": "M", "pid": 1, "tid": 2, "name": "thread_name", "args": {"name": "host launch (device idle)"}},
    ]
    for row in timeline(result).itertuples(index=False):
        args = {"stage": row.stage, "class": row.op_class, "repeat": int(row.repeat)}
        if row.idle_s > 0:
            events.append({"ph": "X", "pid": 1, "tid": 2, "name": "launch", "cat": "idle",
                           "ts": 1e6 * row.start_s, "dur": 1e6 * row.idle_s, "args": args})  # fmt: skip
        events.append({"ph": "X", "pid": 1, "tid": 1, "name": row.op, "cat": row.op_class,
                       "ts": 1e6 * row.busy_start_s, "dur": 1e6 * (row.end_s - row.busy_start_s), "args": args})  # fmt: skip
    return events


def write_trace(result: Result, path: str | Path) -> Path:
    """Write the Perfetto/Chrome JSON trace of `result` to `path`."""
    path = Path(path)
    path.write_text(json.dumps({"traceEvents": trace_events(result), "displayTimeUnit": "ms"}))
    return path

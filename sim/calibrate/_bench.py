"""Timing harness shared by the calibration families: CUDA-event timing with warm-up, an L2
flush before every timed repeat and the median of the repeats; an internal time budget; tidy
CSV writers that flush every row; a profiler helper that returns the kernels an op launched.

torch is imported by the caller (`Context.torch`); nothing here imports it at module load.
"""

from __future__ import annotations

import csv
import json
import math
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any

L2_FLUSH_BYTES = 256 << 20  # 4x the H200's 60 MB L2 (and the H100's 50 MB)


class Context:
    """What every family gets: torch, the device, the dtype, the output folder, the budget."""

    def __init__(self, torch: Any, device: str, dtype: Any, out: str, budget_s: float, quick: bool):
        self.torch = torch
        self.device = device
        self.dtype = dtype
        self.dtype_name = str(dtype).replace("torch.", "")
        self.out = out
        self.quick = quick
        self.t0 = time.monotonic()
        self.deadline = self.t0 + budget_s
        self.family_deadline = self.deadline
        self.cuda = device.startswith("cuda")
        self._flush = torch.empty(L2_FLUSH_BYTES if self.cuda else 1 << 20, dtype=torch.int8, device=device)
        self._writers: dict[str, tuple[Any, csv.DictWriter]] = {}
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.skipped: list[str] = []
        os.makedirs(out, exist_ok=True)
        self._log = open(os.path.join(out, "log.txt"), "a", buffering=1)

    # -- logging and budget -------------------------------------------------------------------
    def log(self, msg: str) -> None:
        line = f"[{time.monotonic() - self.t0:7.1f}s] {msg}"
        print(line, flush=True)
        self._log.write(line + "\n")

    def error(self, what: str, exc: BaseException) -> None:
        self.log(f"FAILED {what}: {type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")
        self._log.write(traceback.format_exc() + "\n")
        self.skipped.append(f"{what}: {type(exc).__name__}: {str(exc)[:200]}")
        if self.cuda:
            try:
                self.torch.cuda.synchronize()
            except Exception:  # a sticky CUDA error: nothing more can run
                pass
            self.torch.cuda.empty_cache()

    def left(self) -> float:
        return min(self.deadline, self.family_deadline) - time.monotonic()

    def out_of_time(self, what: str = "") -> bool:
        if self.left() > 0:
            return False
        if what:
            self.skipped.append(f"{what}: out of time budget")
        return True

    def begin_family(self, name: str, share: float) -> None:
        """This family may use `share` of what is left of the whole budget."""
        now = time.monotonic()
        self.family_deadline = now + max(0.0, self.deadline - now) * share
        self.log(f"== {name}: {self.family_deadline - now:.0f} s of budget")

    # -- CSV ----------------------------------------------------------------------------------
    def write(self, family: str, columns: Sequence[str], row: dict[str, Any]) -> None:
        if family not in self._writers:
            f = open(os.path.join(self.out, f"{family}.csv"), "w", newline="", buffering=1)
            w = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
            w.writeheader()
            self._writers[family] = (f, w)
            self.rows[family] = []
        clean = {k: _fmt(row.get(k)) for k in columns}
        self._writers[family][1].writerow(clean)
        self._writers[family][0].flush()
        self.rows[family].append(dict(row))

    def close(self) -> None:
        for f, _ in self._writers.values():
            f.close()
        self._log.close()

    # -- timing -------------------------------------------------------------------------------
    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def flush_l2(self) -> None:
        self._flush.zero_()

    def bench(
        self,
        fn: Callable[[], Any],
        *,
        flush: bool = True,
        warmup: int = 2,
        min_reps: int = 5,
        max_reps: int = 100,
        target_ms: float = 25.0,
    ) -> dict[str, float]:
        """Median/min time of one call of `fn` in microseconds (CUDA events around each call,
        L2 flushed before each one when `flush`)."""
        torch = self.torch
        fn()
        self.sync()
        est = self._time_once(fn, flush)
        reps = int(min(max_reps, max(min_reps, target_ms * 1e3 / max(est, 1.0))))
        for _ in range(warmup):
            fn()
        times: list[float] = []
        if self.cuda:
            events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
            for start, end in events:
                if flush:
                    self.flush_l2()
                start.record()
                fn()
                end.record()
            torch.cuda.synchronize()
            times = [s.elapsed_time(e) * 1e3 for s, e in events]
        else:
            for _ in range(reps):
                if flush:
                    self.flush_l2()
                t = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t) * 1e6)
        return {"time_us": statistics.median(times), "min_us": min(times), "reps": reps}

    def _time_once(self, fn: Callable[[], Any], flush: bool) -> float:
        if flush:
            self.flush_l2()
        if self.cuda:
            s, e = self.torch.cuda.Event(enable_timing=True), self.torch.cuda.Event(enable_timing=True)
            s.record()
            fn()
            e.record()
            e.synchronize()
            return s.elapsed_time(e) * 1e3
        t = time.perf_counter()
        fn()
        return (time.perf_counter() - t) * 1e6

    # -- profiler -----------------------------------------------------------------------------
    def kernels(self, fn: Callable[[], Any], calls: int = 3) -> list[dict[str, Any]]:
        """The GPU kernels (and memcpy/memset) that `calls` calls of `fn` launch, aggregated by
        name: [{kernel, calls (launches per call of fn), time_us (per call of fn)}], in order of
        first launch. On the CPU (harness tests) the top-level CPU ops stand in for kernels."""
        torch = self.torch
        fn()
        self.sync()
        acts = [torch.profiler.ProfilerActivity.CPU]
        if self.cuda:
            acts.append(torch.profiler.ProfilerActivity.CUDA)
        with torch.profiler.profile(activities=acts) as prof:
            for _ in range(calls):
                fn()
            self.sync()
        return aggregate(device_events(torch, prof, cpu_fallback=not self.cuda), calls)


def capture_graph(torch: Any, fn: Callable[[], Any]) -> Any:
    """A CUDA graph of one call of `fn`, warmed up on a side stream first (as capture requires)."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    return g


def device_events(torch: Any, prof: Any, cpu_fallback: bool = False) -> list[dict[str, Any]]:
    """Kernel, memcpy and memset events of a finished profile: [{kernel, start_us, dur_us}]."""
    from torch.autograd import DeviceType

    out = []
    for e in prof.events():
        if getattr(e, "is_user_annotation", False):
            continue
        dt = e.device_type
        if dt == DeviceType.CUDA or (cpu_fallback and dt == DeviceType.CPU and e.cpu_parent is None):
            tr = e.time_range
            out.append({"kernel": e.name, "start_us": float(tr.start), "dur_us": float(tr.end - tr.start)})
    out.sort(key=lambda r: r["start_us"])
    return out


def aggregate(events: Iterable[dict[str, Any]], calls: int) -> list[dict[str, Any]]:
    agg: dict[str, dict[str, Any]] = {}
    for ev in events:
        a = agg.setdefault(ev["kernel"], {"kernel": ev["kernel"], "calls": 0.0, "time_us": 0.0})
        a["calls"] += 1.0 / calls
        a["time_us"] += ev["dur_us"] / calls
    return list(agg.values())


def busy_union_us(events: Sequence[dict[str, Any]]) -> float:
    """Time covered by at least one event (overlapping kernels counted once)."""
    total, end = 0.0, -math.inf
    for ev in sorted(events, key=lambda r: r["start_us"]):
        s, e = ev["start_us"], ev["start_us"] + ev["dur_us"]
        if s >= end:
            total += e - s
            end = e
        elif e > end:
            total += e - end
            end = e
    return total


def short_kernel(name: str, limit: int = 160) -> str:
    """A kernel name without its template arguments' bulk, for the `kernels` summary column."""
    n = name.replace("void ", "")
    return n if len(n) <= limit else n[:limit] + "..."


def _fmt(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return ""
        return f"{v:.6g}" if abs(v) < 1e6 else f"{v:.1f}"
    if isinstance(v, (list, tuple)):
        return json.dumps(v)
    return v


def device_info(torch: Any, device: str) -> dict[str, Any]:
    import datetime
    import platform
    import subprocess

    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "torch": torch.__version__,
        "cuda_runtime": getattr(torch.version, "cuda", None),
        "python": sys.version.split()[0],
        "host": platform.node(),
    }
    if device.startswith("cuda"):
        p = torch.cuda.get_device_properties(0)
        info.update(
            device=p.name,
            sm_count=p.multi_processor_count,
            memory_gib=round(p.total_memory / 2**30, 1),
            l2_cache_mb=round(getattr(p, "L2_cache_size", 0) / 2**20, 1),
            compute_capability=f"{p.major}.{p.minor}",
            cudnn=torch.backends.cudnn.version(),
        )
        try:
            q = subprocess.run(
                [
                    "nvidia-smi",
                    "--query-gpu=driver_version,clocks.max.sm,clocks.max.mem,power.limit",
                    "--format=csv,noheader",
                ],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            ).stdout.strip()
            drv, sm, mem, pl = [s.strip() for s in q.split(",")][:4]
            info.update(driver=drv, max_sm_clock=sm, max_mem_clock=mem, power_limit=pl)
        except Exception as exc:  # nvidia-smi missing or odd output
            info["driver"] = f"unknown ({type(exc).__name__})"
    else:
        info.update(device=f"cpu ({platform.processor() or platform.machine()})", driver="n/a")
    return info

"""Progress bars for long commands: rate and ETA with tqdm, silent when not on a terminal.

    from sim.results.progress import progress_bar
    with progress_bar(total, "points") as bar:
        for item in work:
            ...
            bar.update(1)

The bar is drawn on stderr only when stderr is a terminal (so piped or captured output, CI logs
and tests stay clean) and tqdm is installed; otherwise `progress_bar` returns a bar that does
nothing. `bar_factory(...)` is the same as a one-argument callable (total -> bar), the form
`sim.experiment.sweep.run_sweep(bar=...)` takes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TextIO


class _Silent:
    """A progress bar that draws nothing."""

    def update(self, n: int = 1) -> None:
        pass

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def enabled(stream: TextIO | None = None) -> bool:
    """Whether a bar would be drawn: `stream` (default stderr) is a terminal and tqdm is importable."""
    stream = stream or sys.stderr
    try:
        if not stream.isatty():
            return False
    except (AttributeError, ValueError):
        return False
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


def progress_bar(total: int, unit: str = "it", desc: str = "", *, stream: TextIO | None = None) -> Any:
    """A context-managed bar with `update(n)`: tqdm (rate, ETA) on a terminal, else silent."""
    if not enabled(stream):
        return _Silent()
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=desc or None, file=stream or sys.stderr, dynamic_ncols=True, smoothing=0.1)


def bar_factory(unit: str = "it", desc: str = "", *, stream: TextIO | None = None) -> Callable[[int], Any] | None:
    """`total -> bar` when a bar would be drawn, else None (callers fall back to text lines)."""
    if not enabled(stream):
        return None
    return lambda total: progress_bar(total, unit, desc, stream=stream)


__all__ = ["bar_factory", "enabled", "progress_bar"]

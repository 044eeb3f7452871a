"""Numba's on-disk cache, keyed by the cost models' own source.

Numba invalidates a cached function when *its* file changes, not when a function it calls
from another file does: an edited `tiling.py` would leave a stale compiled `evaluate` behind.
So the cost models cache into a folder named by a digest of every source file of this
package; any edit starts a fresh cache. A user's NUMBA_CACHE_DIR is respected.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba


def configure() -> None:
    """Point Numba's cache at `<cache>/ttvsim/numba-<digest of sim/cost/*.py>`."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    numba.config.CACHE_DIR = str(base / "ttvsim" / f"numba-{digest.hexdigest()[:16]}")

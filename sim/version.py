"""The ttvsim version and a digest of the simulator's own code.

`version()` is the installed distribution's version (or the source tree's when not installed);
`code_digest()` is a sha256 over the sorted paths and contents of every `.py` file of the `sim`
and `workloads` packages as imported, so editing a cost model or a builder changes it. Both are
computed once per process.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import metadata
from pathlib import Path

__all__ = ["code_digest", "version"]

_PACKAGES = ("sim", "workloads")
_FALLBACK_VERSION = "0+unknown"


@functools.cache
def version() -> str:
    """The ttvsim version string, e.g. ``0.1.0``."""
    try:
        return metadata.version("ttvsim")
    except metadata.PackageNotFoundError:
        return _FALLBACK_VERSION


def _package_root(name: str) -> Path:
    module = __import__(name)
    return Path(module.__file__).resolve().parent


@functools.cache
def code_digest() -> str:
    """16 hex characters of sha256 over the sorted `.py` sources of `sim/` and `workloads/`."""
    digest = hashlib.sha256()
    for package in _PACKAGES:
        root = _package_root(package)
        for path in sorted(root.rglob("*.py")):
            relative = f"{package}/{path.relative_to(root).as_posix()}"
            digest.update(relative.encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]

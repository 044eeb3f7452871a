"""SCALE-Sim topology CSVs as an `OpGraph`: one conv2d / linear op per row, in a chain.

Formats (SCALE-Sim 3.0 `topology_utils.py`; the first row is a header and is skipped, blank
rows are skipped, rows end with a comma -- accepted here with or without it):

- conv: `Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels,
  Num Filter, Strides,` -- batch 1, no padding, square stride. The ofmap side is SCALE-Sim's
  `ceil((H - R + stride) / stride)`; when the stride does not divide H - R this is one more
  than PyTorch's unpadded size, so the op records the smallest symmetric `padding` that gives
  SCALE-Sim's size (0 otherwise) and the GEMM (M = Ho*Wo, K = R*S*C, N = filters) is exactly
  SCALE-Sim's. A layer whose name contains "DP" is depthwise as in SCALE-Sim (which splits it
  into C one-channel layers of `Num Filter` filters): a grouped conv with C groups.
- gemm: `Layer, M, N, K,` -- N BEFORE K: an M x K input times a K x N weight, i.e. a linear
  layer of K -> N features over M tokens.

An optional last column of N:M sparsity (SCALE-Sim 3.0's layer-wise sparsity, used when its
config sets `SparsitySupport = true`) annotates the op with `Sparsity(weights="N:M")` stored
as ELLPACK-block (SCALE-Sim's example `SparseRep`); "1:1" (N == M) is dense and leaves the op
unannotated. Ops have no bias (SCALE-Sim layers have none), so parameters are the
weights. Malformed rows raise `InputError` naming the file, line and column.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..annotations import SPARSITY, Sparsity
from ..builder import GraphBuilder, Tensor
from ..errors import InputError, short_repr
from ..inputs import read_text
from ..ir import DTYPE_BYTES, OpGraph

FORMATS = ("conv", "gemm")
CONV_COLUMNS = ("Layer name", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width", "Channels", "Num Filter", "Strides")
GEMM_COLUMNS = ("Layer", "M", "N", "K")
_SPARSITY = "N:M sparsity"
CELL_MAX = 1 << 24  # largest layer dimension accepted in a topology cell


def load_topology(path: str | Path, kind: str = "conv", *, stage: str = "model", dtype: str = "fp16") -> OpGraph:
    """Read the SCALE-Sim topology CSV at `path` (format `kind`: "conv" or "gemm").

    The graph is named after the file's stem, its ops after the layer names (duplicates get
    `_2`, `_3` suffixes, empty names `layer<line>`), each op depending on the previous one.
    """
    if kind not in FORMATS:
        raise InputError(f"unknown SCALE-Sim topology format {short_repr(kind)}; expected one of: {', '.join(FORMATS)}")
    if dtype not in DTYPE_BYTES:
        raise InputError(f"unknown dtype {short_repr(dtype)}; expected one of {', '.join(DTYPE_BYTES)}")
    file = Path(path).expanduser()
    lines = read_text(file, "SCALE-Sim topology file").splitlines()
    b = GraphBuilder(file.stem, stage, dtype)
    prev: tuple[str, ...] = ()
    seen: dict[str, int] = {}
    sparse: dict[str, Sparsity] = {}
    rows = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
    if not rows:
        raise InputError("empty SCALE-Sim topology (expected a header row, then one row per layer)", where=str(path))
    _check_header(rows[0][1], kind, f"{path}:{rows[0][0]}")
    for lineno, line in rows[1:]:
        where = f"{path}:{lineno}"
        cells, ratio = _cells(line, kind, where)
        name = _unique(cells[0] or f"layer{lineno}", seen)
        values = [_positive(cells[i], i, kind, where) for i in range(1, len(_columns(kind)))]
        out = _conv(b, name, values, prev, where) if kind == "conv" else _gemm(b, name, values, prev)
        prev = out.src
        if ratio is not None and not ratio.is_dense:
            sparse[prev[0]] = ratio
    if not prev:
        raise InputError("SCALE-Sim topology has a header but no layer rows", where=str(path))
    graph = b.build()
    return graph.with_ops({name: graph[name].annotate(**{SPARSITY: s}) for name, s in sparse.items()})


def _columns(kind: str) -> tuple[str, ...]:
    return CONV_COLUMNS if kind == "conv" else GEMM_COLUMNS


def _check_header(line: str, kind: str, where: str) -> None:
    """SCALE-Sim skips the first row unconditionally: make sure it is not a layer."""
    cells = [c.strip() for c in line.split(",")]
    numbers = [c for c in cells[1:4] if c]
    if numbers and all(c.isdigit() for c in numbers):
        raise InputError(
            f"the first row looks like a layer, but SCALE-Sim skips the first row as a header; "
            f"add a header ({', '.join(_columns(kind))},)",
            where=where,
        )


def _cells(line: str, kind: str, where: str) -> tuple[list[str], Sparsity | None]:
    """The row's cells without the trailing empty one, and the optional N:M sparsity cell parsed."""
    cells = [c.strip() for c in line.split(",")]
    if len(cells) > 1 and cells[-1] == "":
        cells.pop()
    columns = _columns(kind)
    ratio = None
    if len(cells) == len(columns) + 1 and ":" in cells[-1]:
        try:
            ratio = Sparsity(weights=cells[-1], format="ellpack_block")
        except ValueError as exc:
            raise InputError(f"column {len(cells)} ({_SPARSITY}): {exc}", where=where) from None
        cells.pop()
    if len(cells) != len(columns):
        other = "gemm" if kind == "conv" else "conv"
        hint = f" -- is this a {other} topology? (format: {other})" if len(cells) == len(_columns(other)) else ""
        raise InputError(
            f"expected {len(columns)} columns ({', '.join(columns)}), got {len(cells)}{hint}", where=where
        )
    return cells, ratio


def _positive(cell: str, index: int, kind: str, where: str) -> int:
    """A positive integer of at most `CELL_MAX` (a bigger layer dimension is a typo)."""
    column = f"column {index + 1} ({_columns(kind)[index]})"
    value = int(cell) if cell.isascii() and cell.isdigit() and len(cell) <= 30 else -1
    if value == -1 and cell.isascii() and cell.isdigit():
        value = CELL_MAX + 1  # too many digits to be a layer size
    if value <= 0:
        raise InputError(f"{column}: expected a positive integer, got {short_repr(cell)}", where=where)
    if value > CELL_MAX:
        raise InputError(f"{column}: must be at most {CELL_MAX}, got {short_repr(cell)}", where=where)
    return value


def _unique(name: str, seen: dict[str, int]) -> str:
    seen[name] = seen.get(name, 0) + 1
    return name if seen[name] == 1 else f"{name}_{seen[name]}"


def _conv(b: GraphBuilder, name: str, v: list[int], prev: tuple[str, ...], where: str) -> Tensor:
    h, w, r, s, c, filters, stride = v
    for side, kernel, what in ((h, r, "Filter Height > IFMAP Height"), (w, s, "Filter Width > IFMAP Width")):
        if kernel > side:
            raise InputError(f"{what} ({kernel} > {side}); SCALE-Sim rejects this layer", where=where)
    padding = (_padding(h, r, stride), _padding(w, s, stride))
    x = Tensor((1, c, h, w), prev)
    if "DP" in name:  # SCALE-Sim: C one-channel layers of `filters` filters each
        return b.conv(name, x, c * filters, (r, s), stride=stride, padding=padding, groups=c, bias=False)
    return b.conv(name, x, filters, (r, s), stride=stride, padding=padding, bias=False)


def _padding(side: int, kernel: int, stride: int) -> int:
    """Smallest symmetric padding p with floor((side + 2p - kernel)/stride) + 1 equal to
    SCALE-Sim's ceil((side - kernel + stride)/stride) (exists for every stride)."""
    travel = side - kernel
    target = math.ceil(travel / stride)
    return math.ceil((stride * target - travel) / 2)


def _gemm(b: GraphBuilder, name: str, v: list[int], prev: tuple[str, ...]) -> Tensor:
    m, n, k = v  # SCALE-Sim order: M, N, K
    return b.linear(name, Tensor((m, k), prev), n, bias=False)

"""Typed op annotations set by graph passes (`Op.annotations`); builders never set them.

`Sparsity` (key `"sparsity"`, set by the `sparsity` pass and the SCALE-Sim CSV frontend)
describes which operands of one op are sparse, how the sparse operand is stored and whether
the hardware skips or only gates the zeros. Field semantics, for the cost units that read it:

- `weights`: the weight operand (conv / linear ops). `None`: dense. A string "N:M" is
  structured sparsity: N nonzeros in every M consecutive weights along the reduction axis K
  (SCALE-Sim 3.0's layer-wise N:M: the reduction condenses to `condensed_k(K, N, M)` =
  ⌊K/M⌋·N + min(N, K mod M), i.e. K·N/M when M divides K). A float is an unstructured
  density: the expected fraction of nonzero weights, in (0, 1].
- `activations`: expected fraction of nonzero input activations (GEMM inputs; for attention,
  Q, K and V), in (0, 1].
- `scores`: attention ops only: fraction of the attention score matrix (Lq x Lk per head)
  kept; QKᵀ, softmax and PV work on the kept scores only. Predicting which to keep is the
  sparse-attention unit's cost, not the annotation's.
- `format`: how the sparse weights are stored (one of `FORMATS`); `activation_format`: how
  sparse activations are stored ("dense": zeros are stored and only skipped or gated in the
  datapath).
- `mode`: "skip" (zero work is not issued: fewer cycles, fewer MACs) or "gate" (zero work
  still occupies its cycles; only MAC and operand-read energy is saved) -- Sparseloop's
  distinction.

A fully dense annotation (every density 1.0, N:M with N == M) is never attached: the pass
leaves such ops untouched, so dense results are reproduced exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import short_repr

FORMATS = ("dense", "bitmask", "csr", "csc", "rle", "ellpack_block")
MODES = ("skip", "gate")
DEFAULT_STRUCTURED_FORMAT = "ellpack_block"  # SCALE-Sim 3.0's SparseRep for N:M
DEFAULT_UNSTRUCTURED_FORMAT = "bitmask"
MAX_BLOCK = 1 << 16  # largest M of an N:M ratio


def parse_nm(text: str) -> tuple[int, int]:
    """(N, M) of an "N:M" ratio with 1 <= N <= M (ValueError otherwise)."""
    parts = [p.strip() for p in str(text).split(":")]
    if len(parts) != 2 or not all(p.isdigit() and len(p) <= 6 for p in parts):
        raise ValueError(f"expected an N:M ratio of two positive integers (e.g. '2:4'), got {str(text)[:40]!r}")
    n, m = int(parts[0]), int(parts[1])
    if not 1 <= n <= m <= MAX_BLOCK:
        raise ValueError(f"N:M ratio {n}:{m} needs 1 <= N <= M <= {MAX_BLOCK}")
    return n, m


def _density(value: object, what: str) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 < float(value) <= 1.0
    if not ok:
        hint = ""
        if isinstance(value, int) and not isinstance(value, bool) and value > 1:
            hint = " (an unquoted N:M in YAML is read as a base-60 integer: write '2:4' in quotes)"
        raise ValueError(f"{what} must be a density in (0, 1], got {short_repr(value)}{hint}")
    return float(value)


def _choice(value: object, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise ValueError(f"unknown {what} {str(value)[:40]!r}; expected one of: {', '.join(choices)}")
    return str(value)


@dataclass(frozen=True)
class Sparsity:
    """Sparsity of one op's operands (see the module docstring for each field)."""

    weights: str | float | None = None
    activations: float = 1.0
    scores: float = 1.0
    format: str | None = None  # None: ellpack_block for N:M weights, bitmask for a density, dense otherwise
    activation_format: str = "dense"
    mode: str = "skip"

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", self._normal_weights(self.weights))
        for name in ("activations", "scores"):
            object.__setattr__(self, name, _density(getattr(self, name), name))
        fmt = self.format if self.format is not None else self._default_format()
        object.__setattr__(self, "format", _choice(fmt, FORMATS, "format"))
        _choice(self.activation_format, FORMATS, "activation_format")
        _choice(self.mode, MODES, "mode")

    @staticmethod
    def _normal_weights(weights: object) -> str | float | None:
        """"N:M" canonical (no spaces), a float density, or None when dense (N == M, 1.0)."""
        if weights is None:
            return None
        if isinstance(weights, str):
            n, m = parse_nm(weights)
            return None if n == m else f"{n}:{m}"
        density = _density(weights, "weights")
        return None if density == 1.0 else density

    def _default_format(self) -> str:
        if isinstance(self.weights, str):
            return DEFAULT_STRUCTURED_FORMAT
        return DEFAULT_UNSTRUCTURED_FORMAT if self.weights is not None else "dense"

    @property
    def nm(self) -> tuple[int, int] | None:
        """(N, M) of structured weight sparsity, None for dense or unstructured weights."""
        return parse_nm(self.weights) if isinstance(self.weights, str) else None

    @property
    def structured(self) -> bool:
        return isinstance(self.weights, str)

    @property
    def weight_density(self) -> float:
        """Fraction of nonzero weights: N/M for N:M, the density for unstructured, 1.0 dense."""
        nm = self.nm
        if nm is not None:
            return nm[0] / nm[1]
        return 1.0 if self.weights is None else float(self.weights)

    @property
    def work_density(self) -> float:
        """Expected fraction of the op's MACs with every operand nonzero (independent zeros):
        weight density x activation density x score density."""
        return self.weight_density * self.activations * self.scores

    @property
    def is_dense(self) -> bool:
        """No operand is sparse (the storage format and mode then do not matter)."""
        return self.weights is None and self.activations == 1.0 and self.scores == 1.0

    @property
    def metadata_bits_per_nonzero(self) -> int:
        """ELLPACK-block index bits per kept weight: ceil(log2 M) for N:M (SCALE-Sim 3.0)."""
        nm = self.nm
        return math.ceil(math.log2(nm[1])) if nm else 0

    def label(self) -> str:
        """A short description, e.g. 'w2:4/ellpack_block a0.5 s0.3 skip' ('dense' when dense)."""
        if self.is_dense:
            return "dense"
        parts = []
        if self.weights is not None:
            weights = f"{self.weights:g}" if isinstance(self.weights, float) else self.weights
            parts.append(f"w{weights}/{self.format}")
        if self.activations != 1.0:
            parts.append(f"a{self.activations:g}")
        if self.scores != 1.0:
            parts.append(f"s{self.scores:g}")
        return " ".join([*parts, self.mode])


SPARSITY = "sparsity"  # the Op.annotations key of a `Sparsity`


def sparsity_of(op: object) -> Sparsity | None:
    """The op's `Sparsity` annotation, or None (dense)."""
    annotations = getattr(op, "annotations", None) or {}
    return annotations.get(SPARSITY)


__all__ = [
    "DEFAULT_STRUCTURED_FORMAT", "DEFAULT_UNSTRUCTURED_FORMAT", "FORMATS", "MODES", "SPARSITY",
    "Sparsity", "parse_nm", "sparsity_of",
]  # fmt: skip

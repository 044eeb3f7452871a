"""Lowering of sparsity annotations (`workloads.annotations.Sparsity`) into kernel fields.

The kernel table stays arch-independent: it records what is sparse, and the array and vector
cost units decide what the hardware does with it (`arch.sparsity`).

- Conv/linear/matmul GEMMs: `nm_n`/`nm_m` (structured N:M weights), `w_density`/`a_density`
  (unstructured densities in parts per million; 0 = dense), `sparse_mode` SKIP or GATE (the
  annotation's wish), `w_format`/`a_format` (index in `workloads.annotations.FORMATS`).
- Attention with a fraction `scores` of its score matrix kept: a score-prediction GEMM
  (PREDICT: run only by an attention-score sparsity unit, at `sparsity.predict_bits`), QK^T
  (SCORE_QK: the kept fraction in `w_density`), softmax (SCORE_QK on the vector unit) and PV
  (SCORE_PV: P's density in `a_density`). Unfused, S and P travel as CSR, and a GPU-style
  sparse kernel gathers a V row per kept score; fused, only a sparsity unit can skip work.
"""

from __future__ import annotations

from workloads.annotations import FORMATS, Sparsity
from workloads.ir import Op, OpKind

DENSE, SKIP, GATE, PREDICT, SCORE_QK, SCORE_PV = 0, 1, 2, 3, 4, 5
PPM = 1_000_000


def _ppm(density: float) -> int:
    return 0 if density >= 1.0 else max(1, round(density * PPM))


def sparse_kernels(op: Op, kernels: list[dict]) -> list[dict]:
    """`kernels` of `op` with its sparsity annotation lowered (unchanged when dense)."""
    sp: Sparsity | None = op.annotations.get("sparsity")
    if sp is None:
        return kernels
    if op.kind is OpKind.ATTENTION:
        return _attention(kernels, sp) if sp.scores < 1.0 else kernels
    fields = {
        "w_density": 0 if sp.structured else _ppm(sp.weight_density),
        "a_density": _ppm(sp.activations),
        "sparse_mode": SKIP if sp.mode == "skip" else GATE,
        "w_format": FORMATS.index(sp.format),
        "a_format": FORMATS.index(sp.activation_format),
    }
    if sp.nm is not None:
        fields["nm_n"], fields["nm_m"] = sp.nm
    return [{**k, **fields} if k["unit"] == 0 else k for k in kernels]


def _attention(kernels: list[dict], sp: Sparsity) -> list[dict]:
    """Attention kernels (QK^T, softmax, PV) with a fraction `sp.scores` of the scores kept."""
    qk, softmax, pv = kernels
    keep = _ppm(sp.scores)
    predict = {**qk, "c_dram": 0, "launches": 0, "sparse_mode": PREDICT}
    return [
        predict,
        {**qk, "w_density": keep, "sparse_mode": SCORE_QK},
        {**softmax, "w_density": keep, "sparse_mode": SCORE_QK},
        {**pv, "a_density": keep, "sparse_mode": SCORE_PV},
    ]

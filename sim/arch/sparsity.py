"""The sparsity support of an accelerator: which sparse work its arrays can skip or gate.

What an op's operands look like is the `sparsity` pass's annotation (`workloads.annotations`);
what the hardware can do with it is this section. Without support, sparse work runs dense
(compressed storage still saves DRAM bytes; the DMA decompresses).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .schema import doc

UNSTRUCTURED = ("none", "skip", "gate")


@dataclass(frozen=True)
class SparsityConfig:
    structured: bool = field(
        default=False,
        metadata=doc("layer-wise N:M weights skipped as in SCALE-Sim 3.0: the reduction K condenses to K*N/M"),
    )
    tensor_core_2to4: bool = field(
        default=False,
        metadata=doc("2:4 weights run at twice the math throughput (NVIDIA sparse tensor cores, Ampere and later)"),
    )
    unstructured: str = field(
        default="none",
        metadata=doc("unstructured zeros: skipped (fewer cycles), gated (energy only) or not exploited",
                     choices=UNSTRUCTURED),
    )
    scan_bits_per_cycle: int = field(
        default=64,
        metadata=doc("nonzero finding: bitmask bits a PE scans per cycle (a skipping fold takes at least "
                     "streamed length / this)", "bits", max=4096),
    )
    decode_elements_per_cycle: float = field(
        default=0.0,
        metadata=doc("per-core decompression rate of compressed operands on the DMA side (0: free)",
                     "elements/cycle", positive=False, max=1e6),
    )
    attention_unit: bool = field(
        default=False,
        metadata=doc("attention-score sparsity unit: a low-precision prediction pass picks the scores kept; "
                     "QK^T, softmax and PV run on the kept scores only (EXION, SpAtten)"),
    )
    predict_bits: int = field(
        default=4, metadata=doc("operand bits of the score-prediction pass", "bits", min=1, max=16)
    )

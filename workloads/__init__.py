"""Workloads: operator IR and the model zoo of text-to-image / text-to-video models.

    >>> import workloads
    >>> g = workloads.build("sd15_unet", resolution=512, batch=1)
    >>> g.total_params()
    859520964
"""

from .builder import GraphBuilder, Tensor
from .errors import InputError
from .ir import GEMM_KINDS, OP_CLASSES, Op, OpGraph, OpKind, PlanStep, Precision, op_class
from .passes import apply_passes
from .registry import ModelSpec, build, registry

__all__ = [
    "GEMM_KINDS",
    "OP_CLASSES",
    "GraphBuilder",
    "InputError",
    "ModelSpec",
    "Op",
    "OpGraph",
    "OpKind",
    "PlanStep",
    "Precision",
    "Tensor",
    "apply_passes",
    "build",
    "op_class",
    "registry",
]

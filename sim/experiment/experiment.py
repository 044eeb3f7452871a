"""Experiments: a YAML file naming a workload, an arch and simulation options.

    name: sd15_quickstart
    workload: {model: sd15, options: {resolution: 512, steps: 50, cfg: true}}
    arch: os128                 # preset name, a YAML path (relative to this file), or a mapping
    arch_overrides: {dram: {bandwidth_gbs: 512}}
    simulation: {attention: fused}
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import workloads
from workloads.errors import InputError, short_repr
from workloads.inputs import check_path_text
from workloads.passes import parse as parse_passes
from workloads.registry import check_text

from ..arch import Arch, load_arch
from ..arch.schema import doc, from_mapping, read_yaml
from ..engine import simulate
from ..lower import ATTENTION_MODES
from ..results import Result
from ..runtime import RuntimeConfig
from .search import SearchSpec, parse_expression, parse_objectives

FILE_OPTIONS = ("path", "config")  # model options naming files


@dataclass(frozen=True)
class WorkloadSpec:
    model: str = field(metadata=doc("model name (see `ttvsim models`)"))
    options: dict[str, Any] = field(default_factory=dict, metadata=doc("model options, e.g. resolution, steps"))


@dataclass(frozen=True)
class SimulationSpec:
    attention: str = field(default="fused", metadata=doc("attention lowering", choices=ATTENTION_MODES))
    fuse_elementwise: bool = field(
        default=False, metadata=doc("fold activations/elementwise ops into the producing GEMM")
    )


@dataclass(frozen=True)
class Experiment:
    name: str = field(metadata=doc("experiment name (also the default output folder)"))
    workload: WorkloadSpec = field(metadata=doc("what to simulate"))
    arch: Any = field(metadata=doc("preset name, YAML path relative to the experiment, or mapping"))
    arch_overrides: dict[str, Any] = field(default_factory=dict, metadata=doc("nested keys merged over the arch"))
    simulation: SimulationSpec = field(default_factory=SimulationSpec, metadata=doc("simulation options"))
    passes: Any = field(
        default_factory=list, metadata=doc("graph passes applied in order: a list of {name: ..., options} (see README)")
    )
    runtime: Any = field(
        default=None,
        metadata=doc("GPU software-stack model (sim.runtime): a mode name or {mode, conv_layout, attention_kernel}"),
    )
    description: str = field(default="", metadata=doc("free text"))
    sweep: dict[str, Any] = field(
        default_factory=dict, metadata=doc("dotted key -> list of values (arch.*, workload.options.*, simulation.*)")
    )
    sweep_mode: str = field(default="grid", metadata=doc("combine sweep axes", choices=("grid", "zip")))
    sweep_limit: int = field(
        default=1_000_000, metadata=doc("most points a sweep may have; larger ones are refused before expansion", max=1e9)
    )
    search: SearchSpec = field(
        default_factory=SearchSpec, metadata=doc("how sweep points are chosen, constrained and ranked (see sim.experiment.search)")
    )
    base_dir: Path = field(default=Path("."), init=False, compare=False)

    def load_arch(self, source: str = "") -> Arch:
        """The arch, with `arch_overrides` merged; errors name the experiment file."""
        where = f"{source}: arch" if source else "arch"
        over = f"{source}: arch_overrides" if source else "arch_overrides"
        return load_arch(self.arch, self.arch_overrides or None, base_dir=self.base_dir, where=where, overrides_where=over)

    def build(self, source: str = "") -> workloads.OpGraph:
        """The workload graph; file options (`path`, `config`) resolve against the experiment's folder."""
        options = {k: self._resolve(v) if k in FILE_OPTIONS else v for k, v in self.workload.options.items()}
        return workloads.build(self.workload.model, where=f"{source}: workload" if source else None, **options)

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, str) and value and not Path(value).is_absolute() and _exists(self.base_dir / value):
            return str(self.base_dir / value)
        return value

    def run_info(self, source: str = "") -> dict[str, Any]:
        """What a run of this experiment was: for summary.json, so a result says where it came from."""
        from ..version import code_digest, version

        return {
            "experiment": self.name, "file": source, "model": self.workload.model,
            "options": dict(self.workload.options), "arch": self.arch, "arch_overrides": self.arch_overrides,
            "simulation": dataclasses.asdict(self.simulation), "passes": self.passes,
            "ttvsim_version": version(), "code_digest": code_digest(),
        }  # fmt: skip

    def run(self, source: str = "", attention: str | None = None) -> Result:
        """Build the workload, load the arch and simulate."""
        arch = self.load_arch(source)
        graph = self.build(source)
        return simulate(
            graph, arch, attention=attention or self.simulation.attention,
            fuse_elementwise=self.simulation.fuse_elementwise, passes=self.passes, runtime=self.runtime,
        )  # fmt: skip


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment YAML file."""
    path = Path(path)
    data = read_yaml(path)
    exp = from_mapping(Experiment, data, f"{path}:")
    if not isinstance(exp.arch, (str, dict)):
        raise InputError(f"expected a preset name, a path or a mapping, got {short_repr(exp.arch)}", where=f"{path}: arch")
    check_name(exp.name, f"{path}: name")
    _check_file_options(exp.workload.options, f"{path}: workload.options")
    parse_passes(exp.passes, where=f"{path}: passes")
    RuntimeConfig.parse(exp.runtime, where=f"{path}: runtime")
    _check_search(exp, f"{path}: search")
    object.__setattr__(exp, "base_dir", path.resolve().parent)
    return exp


def _check_search(exp: Experiment, where: str) -> None:
    """The search section's expressions and objectives parse (names are checked when it runs)."""
    if not isinstance(exp.search.constraints, list):
        raise InputError(f"expected a list of expressions, got {short_repr(exp.search.constraints)}", where=f"{where}.constraints")
    for i, text in enumerate(exp.search.constraints):
        parse_expression(text, f"{where}.constraints[{i}]")
    parse_objectives(exp.search.objectives, f"{where}.objectives")
    if exp.search.mode != "grid" and not exp.sweep:
        raise InputError(f"search mode '{exp.search.mode}' needs a `sweep` section to draw points from", where=f"{where}.mode")
    if exp.search.mode == "optuna" and not exp.search.objectives:
        raise InputError("search mode 'optuna' needs objectives (e.g. [latency_s, area_mm2])", where=f"{where}.objectives")


def _exists(path: Path) -> bool:
    """Whether `path` exists; a name too long or otherwise unusable does not (its loader says why)."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


NAME_MAX = 100  # characters of an experiment name


def check_name(name: str, where: str) -> str:
    """`name` if it is a safe single path component: it names the default output folder."""
    if not name or len(name) > NAME_MAX:
        raise InputError(f"must be 1 to {NAME_MAX} characters, got {short_repr(name)}", where=where)
    if name in (".", "..") or any(c in name for c in "/\\") or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InputError(
            f"must be a plain folder name (no '/', '\\', '..' or control characters), got {short_repr(name)}",
            where=where,
        )
    return name


def _check_file_options(options: dict[str, Any], where: str) -> None:
    """File options (`path`, `config`) are resolved against the experiment folder: check them first."""
    for key in FILE_OPTIONS:
        if key in options:
            check_path_text(check_text(options[key], f"option '{key}'", where), f"option '{key}'", where)

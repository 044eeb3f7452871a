"""Experiments: YAML experiments, sweeps and the command line."""

from .experiment import Experiment, SimulationSpec, WorkloadSpec, load_experiment

__all__ = ["Experiment", "SimulationSpec", "WorkloadSpec", "load_experiment"]

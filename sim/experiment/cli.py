"""The `ttvsim` command line: run experiments, describe models, list models and presets.

User errors (bad YAML, unknown keys or names, bad values) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from workloads.errors import InputError

from ..results import report
from ..results.trace import write_trace


def _parse_options(extra: Sequence[str]) -> dict[str, Any]:
    """`--resolution 256 --cfg=false` -> {"resolution": 256, "cfg": False} (YAML scalars)."""
    options: dict[str, Any] = {}
    items = list(extra)
    while items:
        token = items.pop(0)
        if not token.startswith("--") or token == "--":
            raise InputError(f"unexpected argument '{token}'; model options look like --resolution 512")
        key, sep, value = token[2:].partition("=")
        if not sep:
            if not items or items[0].startswith("--"):
                raise InputError(f"option --{key} needs a value")
            value = items.pop(0)
        options[key.replace("-", "_")] = yaml.safe_load(value)
    return options


def _cmd_run(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from .experiment import load_experiment

    if extra:
        raise InputError(f"unexpected arguments: {' '.join(extra)}")
    exp = load_experiment(args.experiment)
    out = Path(args.out) if args.out else Path("ttvsim-out") / exp.name
    if exp.sweep:
        return _sweep(exp, str(args.experiment), out, args)
    if args.dask:
        raise InputError("--dask distributes sweeps; this experiment has no `sweep` section", where=str(args.experiment))
    result = exp.run(str(args.experiment), attention=args.attention)
    print(report.summary_text(result, exp.name))
    try:
        paths = result.write(out)
        paths.append(write_trace(result, out / "trace.json"))
    except OSError as exc:
        raise InputError(f"cannot write results ({exc.strerror}); the summary above is complete", where=str(out)) from None
    print(f"\nwrote {', '.join(str(p) for p in paths)}")
    return 0


def _sweep(exp, source: str, out: Path, args: argparse.Namespace) -> int:
    from .sweep import dask_client, run_sweep

    if args.attention:
        raise InputError("--attention applies to single runs; sweep `simulation.attention` instead")
    client = dask_client(args.dask, args.workers) if args.dask else None
    try:
        frame = run_sweep(exp, source, out / "sweep.sqlite", client=client, progress=print, fresh=args.fresh)
    finally:
        if client is not None:
            client.close()
    print(report.sweep_text(frame, list(exp.sweep)))
    frame.to_csv(out / "sweep.csv", index=False)
    print(f"\nwrote {out / 'sweep.sqlite'}, {out / 'sweep.csv'}")
    return 0


def _cmd_describe(args: argparse.Namespace, extra: Sequence[str]) -> int:
    import workloads

    graph = workloads.build(args.model, **_parse_options(extra))
    print(report.describe_text(graph))
    return 0


def _cmd_models(args: argparse.Namespace, extra: Sequence[str]) -> int:
    print(report.models_text())
    return 0


def _cmd_archs(args: argparse.Namespace, extra: Sequence[str]) -> int:
    print(report.archs_text())
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ttvsim", description="Cycle-approximate accelerator simulator for text-to-image/video models."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="simulate an experiment YAML and write its tables")
    run.add_argument("experiment", help="experiment YAML (e.g. experiments/sd15_quickstart.yaml)")
    run.add_argument("--out", help="output folder (default: ttvsim-out/<experiment name>)")
    run.add_argument("--attention", choices=("fused", "unfused"), help="override the attention lowering")
    run.add_argument("--dask", metavar="ADDRESS", help="run a sweep on a Dask scheduler ('local': a local cluster)")
    run.add_argument("--workers", type=int, default=2, help="workers of a local Dask cluster (default 2)")
    run.add_argument("--fresh", action="store_true", help="discard the sweep store (DIR/sweep.sqlite) and start anew")
    run.set_defaults(fn=_cmd_run)
    describe = sub.add_parser(
        "describe", help="params, FLOPs, op counts and attention profile of a model", epilog="model options: --KEY VALUE"
    )
    describe.add_argument("model", help="model name (see `ttvsim models`)")
    describe.set_defaults(fn=_cmd_describe)
    sub.add_parser("models", help="list models with their options").set_defaults(fn=_cmd_models)
    sub.add_parser("archs", help="list hardware presets").set_defaults(fn=_cmd_archs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args, extra = parser.parse_known_args(argv)
    try:
        return args.fn(args, extra)
    except InputError as exc:
        print(f"ttvsim: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())

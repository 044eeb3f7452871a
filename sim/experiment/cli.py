"""The `ttvsim` command line: run experiments, describe models, list models and presets.

One error path. Every failure a user can cause (bad YAML, an unknown key or name, a bad value,
an unknown argument, an unusable `--out`) prints one line `ttvsim: error: ...` on stderr and
exits 2. Anything else that escapes is a bug: one line `ttvsim: internal error (Type: message),
please report` and exit 1 (the traceback too with `TTVSIM_DEBUG=1`). Ctrl-C exits 130.

Output. `run` checks (creates) the output folder before simulating, writes every file, then
prints. When stdout is a closed pipe (`ttvsim run X | head -1`) printing stops quietly, the
work and its files still complete, and the exit code is 141 (128 + SIGPIPE, what a shell
reports for a process killed by SIGPIPE).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import math
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from workloads.errors import InputError, one_line, short_str

from ..arch.schema import parse_yaml
from ..results import report
from ..results.trace import write_trace

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_SIGPIPE = 0, 1, 2, 130, 141
DEBUG_ENV = "TTVSIM_DEBUG"  # set to 1 for the traceback of an internal error
WORKERS_MAX = 1024


class Output:
    """stdout that survives a closed pipe: after the first BrokenPipeError it stays silent."""

    def __init__(self) -> None:
        self.broken = False

    def say(self, text: str) -> None:
        """Print `text` (and flush, so a closed pipe shows up here, not at exit)."""
        if self.broken:
            return
        if sys.stdout is None:
            raise InputError("standard output is closed")
        try:
            print(text)
            sys.stdout.flush()
        except BrokenPipeError:
            self.close_pipe()
        except OSError as exc:  # a full disk, /dev/full
            self.close_pipe()
            raise InputError(f"cannot write to standard output ({_reason(exc)})") from None

    def close_pipe(self) -> None:
        """Remember the broken pipe and point stdout at /dev/null, so the exit flush is quiet."""
        self.broken = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (tests)
            pass


def _stderr(line: str) -> None:
    try:
        print(line, file=sys.stderr)
    except (OSError, ValueError):  # stderr closed too: nothing left to tell
        pass


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are `InputError`s (one line, exit 2) instead of usage + exit."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("ttvsim").strip()
        raise InputError(f"{command + ': ' if command else ''}{message} (see '{self.prog} --help')")


class _VersionAction(argparse.Action):
    """`--version`: the version and the code digest, computed only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> NoReturn:
        Output().say(version_text())
        parser.exit()


def version_text() -> str:
    """'ttvsim 0.1.0 (code 0123456789abcdef)'."""
    from ..version import code_digest, version

    return f"ttvsim {version()} (code {code_digest()})"


def _workers(text: str) -> int:
    value = int(text) if text.isascii() and text.isdigit() and len(text) <= 6 else 0
    if not 1 <= value <= WORKERS_MAX:
        raise argparse.ArgumentTypeError(f"expected an integer from 1 to {WORKERS_MAX}, got {short_str(text)}")
    return value


def _parse_options(extra: Sequence[str]) -> dict[str, Any]:
    """`--resolution 256 --cfg=false` -> {"resolution": 256, "cfg": False} (YAML scalars)."""
    options: dict[str, Any] = {}
    items = list(extra)
    while items:
        token = items.pop(0)
        if not token.startswith("--") or token == "--":
            raise InputError(f"unexpected argument '{short_str(token)}'; model options look like --resolution 512")
        name, sep, value = token[2:].partition("=")
        key = name.replace("-", "_")
        if not key.isidentifier() or not key.isascii():
            raise InputError(f"bad option name '--{short_str(name)}'; model options look like --resolution 512")
        if not sep:
            if not items or items[0].startswith("--"):
                raise InputError(f"option --{name} needs a value")
            value = items.pop(0)
        if key in options:
            raise InputError(f"option --{name} given twice")
        options[key] = parse_yaml(value, f"option --{name}")
    return options


def _no_extra(extra: Sequence[str], command: str) -> None:
    if extra:
        raise InputError(f"{command}: unrecognized arguments: {short_str(' '.join(extra))} (see 'ttvsim {command} --help')")


def prepare_out(out: Path) -> Path:
    """Create the output folder and check that files can be written there, before any work."""
    where = str(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError("output path exists and is not a folder", where=where) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot create the output folder ({_reason(exc)})", where=where) from None
    if not out.is_dir():
        raise InputError("output path exists and is not a folder", where=where)
    try:
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise InputError(f"cannot write in the output folder ({_reason(exc)})", where=where) from None
    return out


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or short_str(str(exc))


def _check_finite(summary: Mapping[str, Any], where: str = "summary") -> None:
    """A non-finite number after validation is a bug, never a result."""
    for key, value in summary.items():
        if isinstance(value, Mapping):
            _check_finite(value, f"{where}.{key}")
        elif isinstance(value, float) and not math.isfinite(value):
            raise ArithmeticError(f"non-finite {where}.{key} = {value}")


def _cmd_run(args: argparse.Namespace, extra: Sequence[str], out: Output) -> int:
    from .experiment import load_experiment

    _no_extra(extra, "run")
    exp = load_experiment(args.experiment)
    folder = prepare_out(Path(args.out) if args.out else Path("ttvsim-out") / exp.name)
    if exp.sweep:
        return _sweep(exp, str(args.experiment), folder, args, out)
    if args.dask:
        raise InputError("--dask distributes sweeps; this experiment has no `sweep` section", where=str(args.experiment))
    result = exp.run(str(args.experiment), attention=args.attention)
    _check_finite(result.summary())
    try:
        paths = result.write(folder, meta=exp.run_info(str(args.experiment)))
        paths.append(write_trace(result, folder / "trace.json"))
    except OSError as exc:
        raise InputError(f"cannot write results ({_reason(exc)})", where=str(folder)) from None
    out.say(report.summary_text(result, exp.name))
    out.say(f"\nwrote {', '.join(str(p) for p in paths)}")
    return EXIT_OK


def _sweep(exp: Any, source: str, folder: Path, args: argparse.Namespace, out: Output) -> int:
    from .sweep import dask_client, process_pool, run_sweep

    if args.attention:
        raise InputError("--attention applies to single runs; sweep `simulation.attention` instead")
    from ..results.progress import bar_factory

    if args.dask and exp.search.mode == "optuna":
        raise InputError("--dask does not apply to search mode 'optuna' (trials run one after another)", where=source)
    if args.dask and args.jobs > 1:
        raise InputError("--jobs runs a local process pool; with --dask, size the cluster with --workers")
    client = dask_client(args.dask, args.workers) if args.dask else process_pool(args.jobs) if args.jobs > 1 else None
    bar = bar_factory("points", "sweep")
    try:
        frame = run_sweep(
            exp, source, folder / "sweep.sqlite", client=client, progress=out.say, fresh=args.fresh, bar=bar
        )
    finally:
        if isinstance(client, concurrent.futures.Executor):
            client.shutdown(wait=True, cancel_futures=True)
        elif client is not None:
            client.close()
    try:
        frame.to_csv(folder / "sweep.csv", index=False)
    except OSError as exc:
        raise InputError(f"cannot write sweep.csv ({_reason(exc)})", where=str(folder)) from None
    out.say(report.sweep_text(frame, list(exp.sweep)))
    out.say(f"\nwrote {folder / 'sweep.sqlite'}, {folder / 'sweep.csv'}")
    return EXIT_OK


def _cmd_describe(args: argparse.Namespace, extra: Sequence[str], out: Output) -> int:
    import workloads

    graph = workloads.build(args.model, **_parse_options(extra))
    out.say(report.describe_text(graph))
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace, extra: Sequence[str], out: Output) -> int:
    from ..serving.output import run_cli

    _no_extra(extra, "serve")
    return run_cli(args, out.say)


def _cmd_models(args: argparse.Namespace, extra: Sequence[str], out: Output) -> int:
    _no_extra(extra, "models")
    out.say(report.models_text())
    return EXIT_OK


def _cmd_archs(args: argparse.Namespace, extra: Sequence[str], out: Output) -> int:
    _no_extra(extra, "archs")
    out.say(report.archs_text())
    return EXIT_OK


def _cmd_results(args: argparse.Namespace, extra: Sequence[str], out: Output) -> int:
    import numpy as np

    from ..results.export import load, write
    from .search import parse_expression

    _no_extra(extra, "results")
    frame = load(args.dir, expand=args.expand)
    for i, text in enumerate(args.where or []):
        expression = parse_expression(text, f"--where {i + 1}")
        missing = sorted(expression.names - set(frame.columns))
        if missing:
            raise InputError(f"--where: no column '{missing[0]}' (see the columns with --columns list)")
        frame = frame[np.broadcast_to(np.asarray(expression.evaluate(frame), dtype=bool), (len(frame),))]
    if args.sort:
        _need_columns(frame, [args.sort], "--sort")
        frame = frame.sort_values(args.sort, ascending=not args.desc)
    if args.columns == "list":
        out.say("\n".join(str(c) for c in frame.columns))
        return EXIT_OK
    if args.columns:
        wanted = [c.strip() for c in args.columns.split(",") if c.strip()]
        _need_columns(frame, wanted, "--columns")
        frame = frame[wanted]
    for path in (args.csv, args.parquet):
        if path:
            out.say(f"wrote {write(frame, path)} ({len(frame)} rows)")
    if not (args.csv or args.parquet):
        shown = frame.head(args.top) if args.top else frame
        cols = [c for c in shown.columns if c not in ("point", "by_class", "by_stage", "by_step", "energy_by_component")]
        out.say(shown[cols].to_string(index=False) if len(shown) else "no points")
        out.say(f"\n{len(frame)} points" + (f" (first {len(shown)} shown)" if len(shown) < len(frame) else ""))
    return EXIT_OK


def _need_columns(frame: Any, columns: Sequence[str], option: str) -> None:
    from workloads.errors import suggest

    for c in columns:
        if c not in frame.columns:
            raise InputError(f"{option}: no column '{short_str(c)}'{suggest(c, [str(x) for x in frame.columns])}")


def _cmd_plot(args: argparse.Namespace, extra: Sequence[str], out: Output) -> int:
    from ..results import plots

    _no_extra(extra, "plot")
    target = Path(args.out or f"{args.kind}.png")
    if args.kind in ("pareto", "breakdown"):
        from ..results.export import load

        frame = load(args.source)
        if args.kind == "pareto":
            path = plots.pareto_plot(frame, args.x, args.y, target, color=args.color, title=args.title or "")
        else:
            path = plots.breakdown_plot(frame, target, top=args.top or 12, share=args.share, title=args.title or "")
    else:
        from .experiment import load_experiment

        exp = load_experiment(args.source)
        if exp.sweep:
            raise InputError(f"plot {args.kind} draws one run; this experiment has a sweep", where=args.source)
        result = exp.run(args.source)
        draw = plots.roofline_plot if args.kind == "roofline" else plots.timeline_plot
        path = draw(result, target, title=args.title or "")
    out.say(f"wrote {path}")
    return EXIT_OK


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ttvsim", description="Cycle-approximate accelerator simulator for text-to-image/video models.")
    parser.add_argument("--version", action=_VersionAction, help="print the version and code digest, then exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{run,describe,serve,models,archs,results,plot,calibrate}")
    run = sub.add_parser("run", help="simulate an experiment YAML and write its tables")
    run.add_argument("experiment", help="experiment YAML (e.g. experiments/sd15_quickstart.yaml)")
    run.add_argument("--out", help="output folder (default: ttvsim-out/<experiment name>)")
    run.add_argument("--attention", choices=("fused", "unfused"), help="override the attention lowering")
    run.add_argument("--dask", metavar="ADDRESS", help="run a sweep on a Dask scheduler ('local': a local cluster)")
    run.add_argument("--workers", type=_workers, default=2, help="workers of a local Dask cluster (default 2)")
    run.add_argument("--fresh", action="store_true", help="discard the sweep store (DIR/sweep.sqlite) and start anew")
    run.add_argument(
        "--jobs", type=_workers, default=1,
        help="worker processes of a local sweep (default 1; e.g. --jobs 2 on two cores)",
    )  # fmt: skip
    run.set_defaults(fn=_cmd_run)
    describe = sub.add_parser(
        "describe", help="params, FLOPs, op counts and attention profile of a model", epilog="model options: --KEY VALUE"
    )
    describe.add_argument("model", help="model name (see `ttvsim models`)")
    describe.set_defaults(fn=_cmd_describe)
    serve = sub.add_parser("serve", help="simulate serving (request stream, latent cache, fleet) and write metrics")
    from ..serving.output import add_arguments

    add_arguments(serve)
    serve.set_defaults(fn=_cmd_serve)
    sub.add_parser("models", help="list models with their options").set_defaults(fn=_cmd_models)
    sub.add_parser("archs", help="list hardware presets with their modelled area").set_defaults(fn=_cmd_archs)
    results = sub.add_parser("results", help="list, filter and export the points of a sweep store")
    results.add_argument("dir", help="a sweep's output folder (with sweep.sqlite) or the .sqlite file")
    results.add_argument("--where", action="append", metavar="EXPR", help="keep rows where EXPR holds, e.g. 'area_mm2 <= 400' (repeatable)")
    results.add_argument("--sort", metavar="COLUMN", help="sort by COLUMN (ascending; --desc: descending)")
    results.add_argument("--desc", action="store_true", help="sort descending")
    results.add_argument("--columns", metavar="A,B,...", help="columns to keep ('list': print the column names)")
    results.add_argument("--top", type=_workers, help="print only the first N rows")
    results.add_argument("--expand", action="store_true", help="spread by_class/by_stage/... JSON into numeric columns")
    results.add_argument("--csv", metavar="PATH", help="write the rows as CSV")
    results.add_argument("--parquet", metavar="PATH", help="write the rows as Parquet (needs pyarrow)")
    results.set_defaults(fn=_cmd_results)
    plot = sub.add_parser("plot", help="plot a sweep (pareto, breakdown) or one run (roofline, timeline)")
    plot.add_argument("kind", choices=("pareto", "breakdown", "roofline", "timeline"))
    plot.add_argument("source", help="sweep output folder (pareto, breakdown) or experiment YAML (roofline, timeline)")
    plot.add_argument("--x", default="latency_s", help="pareto: metric on x (default latency_s)")
    plot.add_argument("--y", default="area_mm2", help="pareto: metric on y (default area_mm2)")
    plot.add_argument("--color", metavar="COLUMN", help="pareto: color points by COLUMN (e.g. design.precision)")
    plot.add_argument("--top", type=_workers, help="breakdown: the N fastest points (default 12)")
    plot.add_argument("--share", action="store_true", help="breakdown: shares of time instead of seconds")
    plot.add_argument("--title", help="plot title")
    plot.add_argument("--out", help="PNG path (default KIND.png)")
    plot.set_defaults(fn=_cmd_plot)
    calibrate = sub.add_parser(
        "calibrate", add_help=False, help="measure a GPU with the microbenchmark suite (sim.calibrate; needs torch)"
    )
    calibrate.set_defaults(fn=_cmd_calibrate)
    return parser


def _cmd_calibrate(_args: argparse.Namespace, extra: Sequence[str], _out: Output) -> int:
    """`ttvsim calibrate ARGS` = `python -m sim.calibrate ARGS` (`--out DIR`, `--help`)."""
    from ..calibrate import main as calibrate

    return calibrate(list(extra))


def _internal_error(exc: BaseException) -> int:
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    if debug:
        _stderr("".join(traceback.format_exception(exc)).rstrip())
    detail = one_line(f"{type(exc).__name__}: {short_str(str(exc), 200)}", 300)
    hint = "" if debug else f"; {DEBUG_ENV}=1 shows the traceback"
    _stderr(f"ttvsim: internal error ({detail}), please report{hint}")
    return EXIT_INTERNAL


def _dispatch(argv: Sequence[str] | None, out: Output) -> int:
    args, extra = make_parser().parse_known_args(argv)
    command: Callable[[argparse.Namespace, Sequence[str], Output], int] = args.fn
    return command(args, extra, out)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default: sys.argv[1:]); return the exit code (see the module docstring)."""
    out = Output()
    try:
        code = _dispatch(argv, out)
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except InputError as exc:
        _stderr(f"ttvsim: error: {exc}")
        return EXIT_USAGE
    except BrokenPipeError:
        out.close_pipe()
        code = EXIT_OK
    except KeyboardInterrupt:
        _stderr("ttvsim: interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:  # anything else is a bug: say so in one line
        return _internal_error(exc)
    return EXIT_SIGPIPE if out.broken else code


if __name__ == "__main__":
    sys.exit(main())

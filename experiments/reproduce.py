"""Reproduce the published characterizations: `python experiments/reproduce.py [--small]`.

Writes one markdown report (claim | paper | ttvsim) with PNG plots per study into
`experiments/out/results/` (or --out). Only `--update-results` rewrites the committed
`experiments/results/`, and never together with --small (reduced sizes for CI: fewer steps,
frames and sizes; the claims are then about structure, not paper values).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import sim  # noqa: E402
from sim.results.progress import progress_bar  # noqa: E402
from workloads.errors import InputError  # noqa: E402

STUDIES = (
    "breakdown", "flash", "seqlen", "temporal", "image_size", "decode_idle", "cho_sd21", "sparsity", "approximation",
    "levers",
)


def run(names: list[str], arch_name: str, small: bool, out: Path) -> list[Path]:
    arch = sim.load_arch(arch_name)
    paths = []
    with progress_bar(len(names), "studies", "reproduce") as bar:  # drawn on a terminal only
        for name in names:
            module = importlib.import_module(f"experiments.characterize.{name}")
            study = module.run(arch, small=small)
            paths.append(study.write(out))
            for c in study.claims:
                verdict = {True: "agrees", False: "DISAGREES", None: "n/a"}[c.agrees]
                print(f"[{name}] {c.claim}: paper {c.paper} | ttvsim {c.ttvsim} | {verdict}")
            bar.update(1)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("studies", nargs="*", help=f"studies to run (default all): {', '.join(STUDIES)}")
    parser.add_argument("--arch", default="a100", help="hardware preset (default a100, as in the paper)")
    parser.add_argument("--small", action="store_true", help="reduced sizes for CI")
    parser.add_argument("--out", default=str(HERE / "out" / "results"), help="output folder (default experiments/out/results)")
    parser.add_argument("--update-results", action="store_true", help="write into the committed experiments/results/")
    args = parser.parse_args(argv)
    if args.update_results and args.small:
        parser.exit(2, "reproduce.py: error: --update-results writes the committed results: run it without --small\n")
    if args.update_results:
        args.out = str(HERE / "results")
    unknown = [s for s in args.studies if s not in STUDIES]
    if unknown:
        parser.exit(2, f"reproduce.py: error: unknown study {unknown[0]!r}; expected one of {', '.join(STUDIES)}\n")
    try:
        for path in run(args.studies or list(STUDIES), args.arch, args.small, Path(args.out)):
            print(f"wrote {path}")
    except InputError as exc:
        print(f"reproduce.py: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

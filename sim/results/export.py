"""Read a sweep store back as a DataFrame, filter it, export it to CSV or Parquet.

    import sim.results
    df = sim.results.load("ttvsim-out/dse_sd15")        # a folder with sweep.sqlite, or the file
    df[df.pareto] if "pareto" in df else df

`load` opens the store read-only (no lock, so it works while a sweep is writing) and returns one
row per stored point: the point's settings as columns (dotted keys, e.g. `arch.array.rows`),
then every summary column; JSON columns (`by_class`, `by_stage`, `by_step`,
`energy_by_component`) stay JSON text unless `expand=True`, which adds one numeric column per
entry (`by_class.conv`, ...). A store holds the points of every experiment run into it, keyed
by content; `experiment_frame` is the current experiment's rows, as `ttvsim run` returns them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from workloads.errors import InputError

JSON_COLUMNS = ("by_class", "by_stage", "by_step", "energy_by_component")


def store_path(path: str | Path) -> Path:
    """`path` itself if it is a file, else `path/sweep.sqlite`; `InputError` when there is none."""
    path = Path(path)
    target = path / "sweep.sqlite" if path.is_dir() else path
    if not target.is_file():
        raise InputError("no sweep store here (expected a folder with sweep.sqlite from `ttvsim run`)", where=str(path))
    return target


def load(path: str | Path, *, expand: bool = False) -> pd.DataFrame:
    """Every stored point of the sweep store at `path` (see the module docstring)."""
    target = store_path(path)
    try:
        with sqlite3.connect(f"file:{target}?mode=ro", uri=True) as db:
            raw = pd.read_sql_query("SELECT * FROM points ORDER BY rowid", db)
    except (sqlite3.Error, pd.errors.DatabaseError) as exc:
        raise InputError(f"cannot read the sweep store ({exc})", where=str(target)) from None
    settings = pd.DataFrame([json.loads(s) for s in raw["settings"]], index=raw.index)
    frame = pd.concat([settings, raw.drop(columns=["settings"])], axis=1)
    return expand_json(frame) if expand else frame


def expand_json(frame: pd.DataFrame, columns: Sequence[str] = JSON_COLUMNS) -> pd.DataFrame:
    """`frame` with each JSON mapping column spread into numeric `column.key` columns."""
    parts = [frame]
    for column in columns:
        if column in frame:
            spread = pd.DataFrame(
                [json.loads(v) if isinstance(v, str) else {} for v in frame[column]], index=frame.index
            )
            parts.append(spread.add_prefix(f"{column}."))
    return pd.concat(parts, axis=1)


def write(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write `frame` as CSV or Parquet (by the suffix: .csv, .parquet); Parquet needs pyarrow."""
    path = Path(path)
    try:
        if path.suffix == ".parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise InputError("Parquet export needs pyarrow: pip install 'ttvsim[dse]'") from None
            safe = frame.copy()
            for column in safe.columns[[dtype.kind == "O" for dtype in safe.dtypes]]:
                safe[column] = safe[column].map(
                    lambda v: v if v is None or isinstance(v, str) else json.dumps(v, default=str)
                )
            safe.to_parquet(path, index=False)
        elif path.suffix == ".csv":
            frame.to_csv(path, index=False)
        else:
            raise InputError(f"unknown export format '{path.suffix}'; use .csv or .parquet", where=str(path))
    except OSError as exc:
        raise InputError(f"cannot write ({exc.strerror or exc})", where=str(path)) from None
    return path


__all__ = ["expand_json", "load", "store_path", "write"]

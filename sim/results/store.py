"""Sweep results in an embedded SQLite database: one row per design point, written as it finishes.

Rows are keyed by (experiment, point) so an interrupted sweep resumes where it stopped and
nothing already computed is lost. Numbers are columns; per-class and per-stage seconds and the
point's settings are JSON, so one table serves every model.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

NUMBERS = (
    "latency_s", "cycles", "compute_cycles", "stall_cycles", "launch_cycles", "macs",
    "utilization", "core_occupancy", "dram_bytes", "energy_j",
)  # fmt: skip
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS points (
    experiment TEXT NOT NULL,
    point TEXT NOT NULL,
    settings TEXT NOT NULL,
    workload TEXT, arch TEXT, attention TEXT,
    {", ".join(f"{n} REAL" for n in NUMBERS)},
    by_class TEXT, by_stage TEXT,
    PRIMARY KEY (experiment, point)
)"""


def point_key(settings: Mapping[str, Any]) -> str:
    """A stable text key for a point's settings."""
    return json.dumps(dict(sorted(settings.items())), sort_keys=True, default=str)


class SweepStore:
    """The `points` table of a SQLite file (created on first use)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path)

    def done(self, experiment: str) -> set[str]:
        """Keys of the points of `experiment` already stored."""
        with self._connect() as db:
            return {row[0] for row in db.execute("SELECT point FROM points WHERE experiment = ?", (experiment,))}

    def add(self, experiment: str, settings: Mapping[str, Any], summary: Mapping[str, Any]) -> None:
        """Store one finished point (committed immediately)."""
        values = {
            "experiment": experiment,
            "point": point_key(settings),
            "settings": json.dumps(dict(settings), default=str),
            "workload": summary["workload"],
            "arch": summary["arch"],
            "attention": summary["attention"],
            **{n: float(summary[n]) for n in NUMBERS},
            "by_class": json.dumps(summary["by_class"]),
            "by_stage": json.dumps(summary["by_stage"]),
        }
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with self._connect() as db:
            db.execute(f"INSERT OR REPLACE INTO points ({cols}) VALUES ({marks})", tuple(values.values()))

    def frame(self, experiment: str, keys: Iterable[str] = ()) -> pd.DataFrame:
        """All stored points of `experiment`: swept settings as columns, then the numbers."""
        with self._connect() as db:
            df = pd.read_sql_query("SELECT * FROM points WHERE experiment = ?", db, params=(experiment,))
        settings = pd.DataFrame([json.loads(s) for s in df["settings"]], index=df.index)
        columns = [k for k in keys if k in settings] or list(settings.columns)
        return pd.concat([settings[columns], df.drop(columns=["settings", "point"])], axis=1)

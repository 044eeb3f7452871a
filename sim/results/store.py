"""Sweep results in an embedded SQLite database (`DIR/sweep.sqlite`, table `points`).

What the store guarantees:

- **Keys are content digests.** A row's `point` is a digest of everything that determines its
  numbers (the sweep computes it: resolved arch, workload and resolved options, simulation options
  and `sim.version.code_digest()`), so a row is reused only by a point that would compute the same
  numbers; editing the simulator's code, the base arch or an option makes old rows unreachable.
  Rows are shared by every experiment whose points have the same digest.
- **A sweep sees exactly its own points.** `register()` records the current grid's keys (in a
  temporary table, one per connection); `frame()` returns one row per registered point, in grid
  order, never a row of another experiment, grid or code version.
- **Checked before use.** Opening takes an exclusive lock file (`sweep.sqlite.lock`, released by
  the OS when the process dies), checks that the file is a ttvsim sweep store of this schema
  version (`meta` table), runs `PRAGMA quick_check` and a write; any failure (out folder not
  creatable, the path a folder, a corrupt, foreign, older, read-only or locked store) is a
  one-line `InputError` naming the file, raised before any point is computed. `fresh=True`
  deletes an existing store file first.
- **Durable in small batches.** One connection in WAL mode; rows are inserted per point and
  committed every `batch_points` points or as soon as a point arrives `batch_seconds` after the
  previous commit, and on `close()` (also after an error or Ctrl-C). A killed process loses only
  the points that finished since the last commit (at most about one second of work); a
  transaction is atomic and rows are unique by key, so a kill never corrupts or duplicates rows.
  (`synchronous=NORMAL`: a power loss may also drop the last commits, never corrupt the file.)
- **Generic columns.** Every numeric scalar of `Result.summary()` is a REAL column (`NUMBERS`
  always exist), strings are TEXT, and dict- or list-valued entries (`by_class`, `by_stage`,
  and any new ones) are JSON TEXT columns; a new summary key adds its column on first use.
"""

from __future__ import annotations

import hashlib
import numbers
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from workloads.errors import InputError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: SQLite's own locking only
    fcntl = None  # type: ignore[assignment]

SCHEMA_ID = "ttvsim-sweep-store"
SCHEMA_VERSION = "2"
NUMBERS = (
    "latency_s", "cycles", "compute_cycles", "stall_cycles", "launch_cycles", "macs",
    "utilization", "core_occupancy", "dram_bytes", "energy_j",
)  # fmt: skip
_BASE_COLUMNS = {
    "point": "TEXT PRIMARY KEY", "settings": "TEXT NOT NULL",
    "workload": "TEXT", "arch": "TEXT", "attention": "TEXT",
    **{n: "REAL" for n in NUMBERS}, "by_class": "TEXT", "by_stage": "TEXT",
}  # fmt: skip
_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    f"CREATE TABLE points ({', '.join(f'{n} {t}' for n, t in _BASE_COLUMNS.items())})",
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_INTERNAL = ("point", "settings", "ordinal")


def digest(payload: Any) -> str:
    """32 hex characters of sha256 over the canonical JSON of `payload`."""
    return hashlib.sha256(orjson.dumps(payload, option=_CANONICAL, default=str)).hexdigest()[:32]


def to_json(value: Any, sort: bool = True) -> str:
    """JSON text (keys sorted unless `sort` is False; what `str` gives for other objects).
    Summaries are finite (`sim.results.assembly` checks), so no NaN is written as null."""
    return orjson.dumps(value, option=_CANONICAL if sort else orjson.OPT_NON_STR_KEYS, default=str).decode()


_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


class SweepStore:
    """The `points` table of a SQLite file, opened, locked and checked by the constructor."""

    def __init__(
        self,
        path: str | Path,
        *,
        fresh: bool = False,
        batch_points: int = 256,
        batch_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.batch_points, self.batch_seconds, self._clock = batch_points, batch_seconds, clock
        self._lock_fd: int | None = None
        self._db: sqlite3.Connection | None = None
        self._pending = 0
        self._columns: set[str] = set()
        self._inserts: dict[tuple[str, ...], str] = {}  # INSERT statement per column list
        try:
            self._open(fresh)
        except BaseException:
            self.close()
            raise
        self._last_commit = clock()

    # -- opening and checking ---------------------------------------------------------------

    def _fail(self, problem: str, hint: str = "rerun with --fresh to start a new store") -> InputError:
        return InputError(f"{problem}; {hint}", where=f"sweep store {self.path}")

    def _open(self, fresh: bool) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._fail(f"cannot create the output folder ({exc.strerror})", "choose another --out") from None
        if self.path.is_dir():
            raise self._fail("is a folder, not a sweep store", "remove it or choose another --out")
        self._lock()
        if fresh:
            self._remove_files()
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
            self._check()
        except sqlite3.Error as exc:
            raise self._sqlite_error(exc) from None

    def _sqlite_error(self, exc: sqlite3.Error) -> InputError:
        text = str(exc) or type(exc).__name__
        if "locked" in text or "busy" in text:
            return self._fail("is locked by another program", "close it or choose another --out")
        if "readonly" in text or "read-only" in text or "unable to open" in text:
            return self._fail(f"cannot be written ({text})", "make it writable or choose another --out")
        if "not a database" in text or "malformed" in text:
            return self._fail("is not a SQLite database, or is corrupt")
        return self._fail(f"cannot be used ({text})")

    def _lock(self) -> None:
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            self._lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise self._fail(f"cannot create its lock file ({exc.strerror})", "choose a writable --out") from None
        if fcntl is None:
            return
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise self._fail("is in use by another ttvsim run", "wait for it or choose another --out") from None

    def _remove_files(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            target = self.path.with_name(self.path.name + suffix)
            try:
                target.unlink(missing_ok=True)
            except OSError as exc:
                raise self._fail(f"--fresh cannot remove {target.name} ({exc.strerror})", "remove it by hand") from None

    def _check(self) -> None:
        db = self._db
        assert db is not None
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables:
            self._check_schema(tables)
            problem = db.execute("PRAGMA quick_check").fetchone()[0]
            if problem != "ok":
                raise self._fail(f"is corrupt ({problem})")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("BEGIN IMMEDIATE")  # the write lock: fails at once if read-only or locked
        if not tables:
            for statement in _SCHEMA:
                db.execute(statement)
            db.execute("INSERT INTO meta VALUES ('schema', ?), ('version', ?)", (SCHEMA_ID, SCHEMA_VERSION))
        db.execute("INSERT OR REPLACE INTO meta VALUES ('opened', ?)", (time.strftime("%Y-%m-%dT%H:%M:%S"),))
        db.execute("COMMIT")
        db.execute("CREATE TEMP TABLE grid (ordinal INTEGER PRIMARY KEY, point TEXT NOT NULL)")
        db.execute("CREATE INDEX temp.grid_point ON grid (point)")
        self._columns = {row[1] for row in db.execute("PRAGMA main.table_info(points)")}

    def _check_schema(self, tables: set[str]) -> None:
        assert self._db is not None
        meta = dict(self._db.execute("SELECT key, value FROM meta")) if "meta" in tables else {}
        if meta.get("schema") != SCHEMA_ID:
            what = "an older ttvsim sweep store" if "points" in tables else "not a ttvsim sweep store"
            raise self._fail(f"is {what} (tables: {', '.join(sorted(tables))[:200]})")
        if meta.get("version") != SCHEMA_VERSION or "points" not in tables:
            raise self._fail(
                f"has store schema version {meta.get('version')!r:.20}, this ttvsim writes {SCHEMA_VERSION}"
            )

    # -- the current grid ---------------------------------------------------------------------

    def register(self, keys: Iterable[str]) -> None:
        """Record the current grid's point keys (the i-th key is point i); replaces any earlier grid."""
        db = self._connection()
        self.commit()
        db.execute("BEGIN")
        db.execute("DELETE FROM grid")
        db.executemany("INSERT INTO grid VALUES (?, ?)", enumerate(keys))
        db.execute("COMMIT")

    def stored(self) -> int:
        """How many registered points are already stored."""
        sql = "SELECT COUNT(*) FROM grid WHERE point IN (SELECT point FROM main.points)"
        return self._connection().execute(sql).fetchone()[0]

    def missing(self) -> Iterator[int]:
        """Ordinals to compute: the first registered point of each key not yet stored, in order
        (read lazily: consume them before adding points)."""
        sql = (
            "SELECT MIN(ordinal) AS o FROM grid WHERE point NOT IN (SELECT point FROM main.points) "
            "GROUP BY point ORDER BY o"
        )
        yield from (row[0] for row in self._connection().execute(sql))

    def frame(self, settings: Callable[[int], Mapping[str, Any]]) -> pd.DataFrame:
        """One row per registered point that is stored, in grid order: the point's settings
        (`settings(ordinal)`) as columns, then the stored numbers and JSON columns."""
        self.commit()
        sql = "SELECT g.ordinal, p.* FROM grid g JOIN main.points p ON p.point = g.point ORDER BY g.ordinal"
        df = pd.read_sql_query(sql, self._connection())
        swept = pd.DataFrame([dict(settings(o)) for o in df["ordinal"]], index=df.index)
        return pd.concat([swept, df.drop(columns=list(_INTERNAL))], axis=1)

    # -- writing -----------------------------------------------------------------------------

    def add(self, key: str, settings: Mapping[str, Any], summary: Mapping[str, Any]) -> None:
        """Store one finished point; committed with its batch (see the module docstring)."""
        self.add_row(key, settings, columns(summary))

    def add_row(self, key: str, settings: Mapping[str, Any], values: Mapping[str, Any]) -> None:
        """`add` of a summary already converted by `columns` (as sweep workers send them)."""
        self.add_rows([(key, settings, values)])

    def add_rows(self, rows: Iterable[tuple[str, Mapping[str, Any], Mapping[str, Any]]]) -> None:
        """Store finished points (key, settings, `columns` of the summary), one statement per
        set of columns; committed with their batch (see the module docstring)."""
        db = self._connection()
        by_names: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for key, settings, values in rows:
            row = {"point": key, "settings": to_json(dict(settings), sort=False), **values}
            names = tuple(row)
            if names not in self._inserts:
                if not db.in_transaction:
                    db.execute("BEGIN IMMEDIATE")
                self._add_columns(row)
                quoted = ", ".join(f'"{n}"' for n in names)
                self._inserts[names] = f"INSERT OR IGNORE INTO points ({quoted}) VALUES ({', '.join('?' * len(row))})"
            by_names.setdefault(names, []).append(tuple(row.values()))
        if not by_names:
            return
        if not db.in_transaction:
            db.execute("BEGIN IMMEDIATE")
        for names, values_list in by_names.items():
            db.executemany(self._inserts[names], values_list)
            self._pending += len(values_list)
        if self._pending >= self.batch_points or self._clock() - self._last_commit >= self.batch_seconds:
            self.commit()

    def _add_columns(self, row: Mapping[str, Any]) -> None:
        for name, value in row.items():
            if name not in self._columns:
                kind = "REAL" if isinstance(value, float) else "TEXT"
                self._connection().execute(f'ALTER TABLE points ADD COLUMN "{name}" {kind}')
                self._columns.add(name)

    def commit(self) -> None:
        """Commit the pending batch now."""
        if self._db is not None and self._db.in_transaction:
            self._db.execute("COMMIT")
        self._pending, self._last_commit = 0, self._clock()

    def close(self) -> None:
        """Commit what is pending, close the connection and release the lock."""
        if self._db is not None:
            try:
                self.commit()
            finally:
                self._db.close()
                self._db = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> SweepStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError(f"sweep store {self.path} is closed")
        return self._db


@lru_cache(maxsize=1024)
def _column_name(name: Any) -> bool:
    return isinstance(name, str) and bool(_IDENTIFIER.fullmatch(name)) and name not in _INTERNAL


def columns(summary: Mapping[str, Any]) -> dict[str, Any]:
    """A summary as column values: numbers REAL, strings TEXT, anything else JSON TEXT."""
    out: dict[str, Any] = {}
    for name, value in summary.items():
        if not _column_name(name):
            raise ValueError(f"summary key {name!r} cannot be a sweep store column")
        kind = type(value)
        if kind is float or kind is int or (isinstance(value, numbers.Real) and kind is not bool):
            out[name] = float(value)
        elif isinstance(value, str) or value is None:
            out[name] = value
        else:
            out[name] = to_json(value)
    return out


__all__ = ["NUMBERS", "SweepStore", "columns", "digest"]

"""
The run history: every finished run in one SQLite database, versioned and migrated.

A run is keyed by (run id, machine id), so results gathered from a fleet merge without
duplicates. Each cell of a run (model, task, metric) keeps the statistics over its repetitions
(n, mean, stddev, median, min, max), which is what the noise test needs. Every write is one
transaction: a failed import leaves the database as it was.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import sqlite3
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, TypeVar, cast

from ..core.runs.metric_trend import TrendPoint
from ..core.runs.run_comparison import (ALL_TASKS, CellStats, ModelSnapshot, RunSnapshot,
                                        metric_spec)
from .history_import_checks import ImportRefused, check_attached

SCHEMA_VERSION = 1
# PRAGMA application_id: tells this tool's database from any other SQLite file ("SHBH").
APPLICATION_ID = 0x53484248
HISTORY_DB_NAME = "history.sqlite3"
LOCK_TIMEOUT_S = 30.0  # another process writing the same database (the node and the CLI)

# Each entry brings the schema from version (index) to version (index + 1).
# No index on cells (model, metric): it halved the speed of imports and added 40 % to the
# size, while a trend scans 480,000 cells (1,000 runs of 20 models) in about 0.06 s.
_MIGRATIONS: Tuple[str, ...] = (
    """
    CREATE TABLE machines (
        machine_id TEXT PRIMARY KEY,
        hostname TEXT NOT NULL DEFAULT '',
        record_json TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL,
        machine_id TEXT NOT NULL REFERENCES machines(machine_id),
        started_at TEXT NOT NULL DEFAULT '',
        ended_at TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT '',
        ollama_version TEXT NOT NULL DEFAULT '',
        suite_name TEXT NOT NULL DEFAULT '',
        suite_version TEXT NOT NULL DEFAULT '',
        comparability_key TEXT NOT NULL,
        options_json TEXT NOT NULL DEFAULT '{}',
        source TEXT NOT NULL DEFAULT '',
        recorded_at TEXT NOT NULL,
        UNIQUE (run_id, machine_id)
    );
    CREATE INDEX runs_by_machine_time ON runs (machine_id, started_at);
    CREATE TABLE run_models (
        run_ref INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        model TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT '',
        digest TEXT NOT NULL DEFAULT '',
        quantization TEXT NOT NULL DEFAULT '',
        parameter_size TEXT NOT NULL DEFAULT '',
        size_bytes INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (run_ref, model)
    ) WITHOUT ROWID;
    CREATE TABLE cells (
        run_ref INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        model TEXT NOT NULL,
        task TEXT NOT NULL,
        metric TEXT NOT NULL,
        n INTEGER NOT NULL,
        mean REAL NOT NULL,
        stddev REAL NOT NULL,
        median REAL NOT NULL,
        min REAL NOT NULL,
        max REAL NOT NULL,
        PRIMARY KEY (run_ref, model, task, metric)
    ) WITHOUT ROWID;
    """,
)

_RUN_COLUMNS = ("run_id", "machine_id", "started_at", "ended_at", "status", "ollama_version",
                "suite_name", "suite_version", "comparability_key", "options_json", "source",
                "recorded_at")
_MODEL_COLUMNS = ("model", "status", "digest", "quantization", "parameter_size", "size_bytes")
_CELL_COLUMNS = ("model", "task", "metric", "n", "mean", "stddev", "median", "min", "max")


class HistoryError(RuntimeError):
    """A database that cannot be used (newer schema, not a history database, ...)."""


def default_history_db_path() -> Path:
    """Return the state folder's database, beside the footprint cache (XDG_CACHE_HOME kept)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "shadowhound_llm_bench" / HISTORY_DB_NAME


@dataclass(frozen=True)
class ImportCount:
    """How many runs an import added and how many the database held already."""

    added: int
    already_present: int


F = TypeVar("F", bound=Callable[..., Any])


def _sqlite_errors_as_history_errors(method: F) -> F:
    """Turn SQLite's own errors (locked, disk full, damaged) into one-line HistoryErrors."""
    @functools.wraps(method)
    def wrapper(self: "HistoryDb", *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: {exc}") from exc
    return cast(F, wrapper)


def _uri(path: Path, *, read_only: bool = False) -> str:
    """Return an SQLite URI for a path (quoted: '?' and '#' in a folder name stay literal)."""
    return f"file:{urllib.parse.quote(str(Path(path).absolute()))}" + (
        "?mode=ro" if read_only else "")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _check_identity(conn: sqlite3.Connection, path: Path) -> int:
    """Return the schema version of an opened database, refusing foreign or newer files."""
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise HistoryError(f"{path} is not a history database ({exc})") from exc
    if app_id != APPLICATION_ID and (tables or version):
        raise HistoryError(f"{path} is not a history database of shadowhound_llm_bench")
    if version > SCHEMA_VERSION:
        raise HistoryError(f"{path} has history schema {version}, newer than this version "
                           f"reads ({SCHEMA_VERSION}); update shadowhound_llm_bench")
    return version


class HistoryDb:
    """The history database at a path; created and migrated on open."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = Path(path).expanduser()
        if not create and not self.path.is_file():
            raise HistoryError(f"{self.path}: no such history database")
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(_uri(self.path), uri=True, timeout=LOCK_TIMEOUT_S,
                                         isolation_level=None)
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: cannot open: {exc}") from exc
        try:
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._migrate(_check_identity(self._conn, self.path))
            # The file may come from elsewhere (`history --db their.sqlite3`, a copied default
            # database): its values are checked as an import's are, before one row is used.
            check_attached(self._conn, schema="main")
        except ImportRefused as exc:
            self._conn.close()
            raise HistoryError(f"{self.path}: not used: {exc}") from None
        except sqlite3.Error as exc:
            self._conn.close()
            raise HistoryError(f"{self.path}: {exc}") from exc
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "HistoryDb":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self, version: int) -> None:
        for target in range(version + 1, SCHEMA_VERSION + 1):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                # Another process may have migrated while this one waited for the lock.
                if int(self._conn.execute("PRAGMA user_version").fetchone()[0]) >= target:
                    self._conn.execute("COMMIT")
                    continue
                for statement in _MIGRATIONS[target - 1].split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
                self._conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                self._conn.execute(f"PRAGMA user_version = {target}")
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    # ------------------------------------------------------------------------------ writing
    @_sqlite_errors_as_history_errors
    def record_runs(self, runs: Sequence[RunSnapshot], *, replace: bool = False) -> ImportCount:
        """
        Add runs not yet present (run id + machine id), all in one transaction.

        replace: a run already present is replaced (a resumed run recorded again from its
        folder); otherwise it is counted as already present and left as it is.
        """
        added = present = 0
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            for run in runs:
                replaced = replace and self._conn.execute(
                    "DELETE FROM runs WHERE run_id = ? AND machine_id = ?",
                    (run.run_id, run.machine_id)).rowcount > 0
                if self._insert_run(run) and not replaced:
                    added += 1
                else:
                    present += 1
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        return ImportCount(added=added, already_present=present)

    def _insert_run(self, run: RunSnapshot) -> bool:
        if not run.machine_id:
            raise HistoryError(f"run {run.run_id} has no machine id")
        conn = self._conn
        conn.execute(
            "INSERT INTO machines (machine_id, hostname, record_json) VALUES (?, ?, ?) "
            "ON CONFLICT (machine_id) DO UPDATE SET hostname = excluded.hostname, "
            "record_json = excluded.record_json WHERE excluded.record_json != '{}'",
            (run.machine_id, str(run.machine.get("hostname") or ""),
             json.dumps(run.machine, sort_keys=True, default=str)))
        values = (run.run_id, run.machine_id, run.started_at, run.ended_at, run.status,
                  run.ollama_version, run.suite_name, run.suite_version,
                  run.comparability_key(), json.dumps(run.options, sort_keys=True, default=str),
                  run.source, _now())
        cursor = conn.execute(
            f"INSERT OR IGNORE INTO runs ({', '.join(_RUN_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(_RUN_COLUMNS))})", values)
        if cursor.rowcount == 0:
            return False
        run_ref = cursor.lastrowid
        conn.executemany(
            f"INSERT INTO run_models (run_ref, {', '.join(_MODEL_COLUMNS)}) "
            f"VALUES (?, {', '.join('?' * len(_MODEL_COLUMNS))})",
            [(run_ref, m.model, m.status, m.digest, m.quantization, m.parameter_size,
              m.size_bytes) for m in run.models.values()])
        conn.executemany(
            f"INSERT INTO cells (run_ref, {', '.join(_CELL_COLUMNS)}) "
            f"VALUES (?, {', '.join('?' * len(_CELL_COLUMNS))})",
            [(run_ref, m.model, task, metric, c.n, c.mean, c.stddev, c.median, c.min, c.max)
             for m in run.models.values() for (task, metric), c in m.cells.items()])
        return True

    @_sqlite_errors_as_history_errors
    def import_database(self, other_path: Path) -> ImportCount:
        """Merge another history database into this one, skipping runs already present."""
        other_path = Path(other_path).expanduser()
        if other_path.resolve() == self.path.resolve():
            raise HistoryError(f"{other_path} is the database being imported into")
        try:
            if not other_path.is_file():
                raise HistoryError(f"{other_path}: no such database")
            probe = sqlite3.connect(_uri(other_path, read_only=True), uri=True)
        except sqlite3.Error as exc:
            raise HistoryError(f"{other_path}: cannot open: {exc}") from exc
        try:
            version = _check_identity(probe, other_path)
        finally:
            probe.close()
        if version != SCHEMA_VERSION:
            raise HistoryError(f"{other_path} has history schema {version}; open it once with "
                               "this version (e.g. `history --db` on it) to migrate it first")
        conn = self._conn
        try:
            conn.execute("ATTACH DATABASE ? AS other", (_uri(other_path, read_only=True),))
        except sqlite3.Error as exc:
            raise HistoryError(f"{other_path}: cannot open: {exc}") from exc
        try:
            # A database from elsewhere is untrusted: its values are checked before any merge.
            check_attached(conn)
            conn.execute("BEGIN IMMEDIATE")
            try:
                count = self._merge_attached()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except ImportRefused as exc:
            raise HistoryError(f"{other_path}: not imported: {exc}") from None
        except sqlite3.Error as exc:
            raise HistoryError(f"{other_path}: not imported: {exc}") from exc
        finally:
            conn.execute("DETACH DATABASE other")
        return count

    def _merge_attached(self) -> ImportCount:
        conn = self._conn
        total = conn.execute("SELECT count(*) FROM other.runs").fetchone()[0]
        first_new = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM main.runs").fetchone()[0]
        conn.execute(
            "INSERT INTO main.machines (machine_id, hostname, record_json) "
            "SELECT machine_id, hostname, record_json FROM other.machines WHERE true "
            "ON CONFLICT (machine_id) DO NOTHING")
        columns = ", ".join(_RUN_COLUMNS)
        conn.execute(
            f"INSERT INTO main.runs ({columns}) SELECT {columns} FROM other.runs o "
            "WHERE NOT EXISTS (SELECT 1 FROM main.runs r WHERE r.run_id = o.run_id "
            "AND r.machine_id = o.machine_id) ORDER BY o.id")
        added = conn.execute("SELECT count(*) FROM main.runs WHERE id >= ?",
                             (first_new,)).fetchone()[0]
        mapping = ("FROM main.runs r JOIN other.runs o ON r.run_id = o.run_id "
                   "AND r.machine_id = o.machine_id")
        conn.execute(
            f"INSERT INTO main.run_models (run_ref, {', '.join(_MODEL_COLUMNS)}) "
            f"SELECT r.id, {', '.join('m.' + c for c in _MODEL_COLUMNS)} {mapping} "
            "JOIN other.run_models m ON m.run_ref = o.id WHERE r.id >= ?", (first_new,))
        conn.execute(
            f"INSERT INTO main.cells (run_ref, {', '.join(_CELL_COLUMNS)}) "
            f"SELECT r.id, {', '.join('c.' + c for c in _CELL_COLUMNS)} {mapping} "
            "JOIN other.cells c ON c.run_ref = o.id WHERE r.id >= ?", (first_new,))
        return ImportCount(added=added, already_present=total - added)

    # ------------------------------------------------------------------------------ reading
    @_sqlite_errors_as_history_errors
    def run_count(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM runs").fetchone()[0])

    def _snapshot(self, run_ref: int, models: Optional[Iterable[str]] = None) -> RunSnapshot:
        row = self._conn.execute(
            f"SELECT {', '.join('r.' + c for c in _RUN_COLUMNS)}, m.record_json "
            "FROM runs r JOIN machines m ON m.machine_id = r.machine_id WHERE r.id = ?",
            (run_ref,)).fetchone()
        data = dict(zip(_RUN_COLUMNS + ("record_json",), row))
        options = json.loads(data["options_json"])
        snap = RunSnapshot(
            run_id=data["run_id"], machine_id=data["machine_id"],
            machine=json.loads(data["record_json"]), started_at=data["started_at"],
            ended_at=data["ended_at"], status=data["status"],
            ollama_version=data["ollama_version"], options=options,
            suite_name=data["suite_name"], suite_version=data["suite_version"],
            source=f"{self.path}#{data['run_id']}")
        wanted = None if models is None else set(models)
        for values in self._conn.execute(
                f"SELECT {', '.join(_MODEL_COLUMNS)} FROM run_models WHERE run_ref = ?",
                (run_ref,)):
            model = ModelSnapshot(**dict(zip(_MODEL_COLUMNS, values)))
            if wanted is None or model.model in wanted:
                snap.models[model.model] = model
        for values in self._conn.execute(
                f"SELECT {', '.join(_CELL_COLUMNS)} FROM cells WHERE run_ref = ?", (run_ref,)):
            cell = dict(zip(_CELL_COLUMNS, values))
            model = snap.models.get(cell.pop("model"))
            if model is not None:
                task, metric = cell.pop("task"), cell.pop("metric")
                model.cells[(task, metric)] = CellStats(**cell)
        return snap

    @_sqlite_errors_as_history_errors
    def previous_comparable(self, run: RunSnapshot) -> Dict[str, RunSnapshot]:
        """Return per model the latest earlier ok run of this machine with the same options."""
        out: Dict[str, RunSnapshot] = {}
        loaded: Dict[int, RunSnapshot] = {}
        for model in run.models:
            row = self._conn.execute(
                "SELECT r.id FROM runs r JOIN run_models m ON m.run_ref = r.id "
                "WHERE r.machine_id = ? AND r.comparability_key = ? AND m.model = ? "
                "AND m.status = 'ok' AND r.started_at < ? AND r.run_id != ? "
                "ORDER BY r.started_at DESC LIMIT 1",
                (run.machine_id, run.comparability_key(), model, run.started_at,
                 run.run_id)).fetchone()
            if row is None:
                continue
            if row[0] not in loaded:
                loaded[row[0]] = self._snapshot(row[0])
            out[model] = loaded[row[0]]
        return out

    @_sqlite_errors_as_history_errors
    def trend(self, model: str, metric: str, *, machine_id: str = "") -> List[TrendPoint]:
        """Return the model's runs in time order with the metric's model and task cells."""
        metric_spec(metric)
        where = "WHERE m.model = ?" + (" AND r.machine_id = ?" if machine_id else "")
        params: List[Any] = [model] + ([machine_id] if machine_id else [])
        points: Dict[int, TrendPoint] = {}
        for row in self._conn.execute(
                "SELECT r.id, r.run_id, r.machine_id, mc.hostname, r.started_at, "
                "r.ollama_version, m.digest, m.quantization, r.comparability_key "
                "FROM run_models m JOIN runs r ON r.id = m.run_ref "
                f"JOIN machines mc ON mc.machine_id = r.machine_id {where} "
                "ORDER BY r.started_at, r.id", params):
            points[row[0]] = TrendPoint(*row[1:], model_cell=None)
        for row in self._conn.execute(
                "SELECT c.run_ref, c.task, c.n, c.mean, c.stddev, c.median, c.min, c.max "
                "FROM cells c WHERE c.model = ? AND c.metric = ?", (model, metric)):
            point = points.get(row[0])
            if point is None:
                continue
            cell = CellStats(*row[2:])
            if row[1] == ALL_TASKS:
                point.model_cell = cell
            else:
                point.task_cells[row[1]] = cell
        return list(points.values())

    @_sqlite_errors_as_history_errors
    def overview(self) -> List[Tuple[str, str, int, str, str, str]]:
        """Return per machine: id, hostname, runs, first and last start, models (comma list)."""
        rows = self._conn.execute(
            "SELECT r.machine_id, m.hostname, count(*), min(r.started_at), max(r.started_at) "
            "FROM runs r JOIN machines m ON m.machine_id = r.machine_id "
            "GROUP BY r.machine_id ORDER BY r.machine_id").fetchall()
        out = []
        for machine_id, hostname, runs, first, last in rows:
            models = [row[0] for row in self._conn.execute(
                "SELECT DISTINCT rm.model FROM run_models rm JOIN runs r ON r.id = rm.run_ref "
                "WHERE r.machine_id = ? ORDER BY rm.model", (machine_id,))]
            out.append((machine_id, hostname, runs, first, last, ", ".join(models)))
        return out

    @_sqlite_errors_as_history_errors
    def machines(self) -> List[Tuple[str, str]]:
        return [tuple(r) for r in self._conn.execute(
            "SELECT machine_id, hostname FROM machines ORDER BY machine_id")]

"""
The values of a history database someone else made, checked before they are merged.

SQLite keeps whatever a column is given (a text in a REAL column, a blob, a 1 GB string), so an
imported database is read as untrusted: every column must have its type, every text its bound,
every number be finite, before one row is copied. The database's own tables must exist with
their columns (a crafted file may drop or rename them).
"""

from __future__ import annotations

import sqlite3
from typing import Dict, Tuple

# Texts a run carries: ids, versions, names (short) and JSON records (options, machine).
SHORT_TEXT_CHARS = 512
JSON_TEXT_CHARS = 64 * 1024
MAX_ROWS = 5_000_000
FINITE_LIMIT = 1e300

_TEXT, _INTEGER, _REAL = "text", "integer", "real"
# table -> column -> (type, longest text)
_COLUMNS: Dict[str, Dict[str, Tuple[str, int]]] = {
    "machines": {"machine_id": (_TEXT, SHORT_TEXT_CHARS), "hostname": (_TEXT, SHORT_TEXT_CHARS),
                 "record_json": (_TEXT, JSON_TEXT_CHARS)},
    "runs": {"id": (_INTEGER, 0), "run_id": (_TEXT, SHORT_TEXT_CHARS),
             "machine_id": (_TEXT, SHORT_TEXT_CHARS), "started_at": (_TEXT, SHORT_TEXT_CHARS),
             "ended_at": (_TEXT, SHORT_TEXT_CHARS), "status": (_TEXT, SHORT_TEXT_CHARS),
             "ollama_version": (_TEXT, SHORT_TEXT_CHARS),
             "suite_name": (_TEXT, SHORT_TEXT_CHARS), "suite_version": (_TEXT, SHORT_TEXT_CHARS),
             "comparability_key": (_TEXT, JSON_TEXT_CHARS),
             "options_json": (_TEXT, JSON_TEXT_CHARS), "source": (_TEXT, JSON_TEXT_CHARS),
             "recorded_at": (_TEXT, SHORT_TEXT_CHARS)},
    "run_models": {"run_ref": (_INTEGER, 0), "model": (_TEXT, SHORT_TEXT_CHARS),
                   "status": (_TEXT, SHORT_TEXT_CHARS), "digest": (_TEXT, SHORT_TEXT_CHARS),
                   "quantization": (_TEXT, SHORT_TEXT_CHARS),
                   "parameter_size": (_TEXT, SHORT_TEXT_CHARS), "size_bytes": (_INTEGER, 0)},
    "cells": {"run_ref": (_INTEGER, 0), "model": (_TEXT, SHORT_TEXT_CHARS),
              "task": (_TEXT, SHORT_TEXT_CHARS), "metric": (_TEXT, SHORT_TEXT_CHARS),
              "n": (_INTEGER, 0), "mean": (_REAL, 0), "stddev": (_REAL, 0),
              "median": (_REAL, 0), "min": (_REAL, 0), "max": (_REAL, 0)},
}


class ImportRefused(ValueError):
    """An imported database whose tables or values this tool does not accept."""


def _bad_value_condition(column: str, kind: str, limit: int) -> str:
    if kind == _TEXT:
        return f"typeof({column}) != 'text' OR length({column}) > {limit}"
    if kind == _INTEGER:
        return f"typeof({column}) != 'integer'"
    return (f"typeof({column}) NOT IN ('real', 'integer') OR {column} > {FINITE_LIMIT} "
            f"OR {column} < -{FINITE_LIMIT}")


def check_attached(conn: sqlite3.Connection, schema: str = "other") -> None:
    """Refuse (ImportRefused) the attached database unless every table and value is in shape."""
    for table, columns in _COLUMNS.items():
        present = {row[1] for row in conn.execute(f"PRAGMA {schema}.table_info({table})")}
        missing = sorted(set(columns) - present)
        if not present:
            raise ImportRefused(f"it has no table {table}")
        if missing:
            raise ImportRefused(f"table {table} lacks the column(s) {', '.join(missing)}")
        rows = conn.execute(f"SELECT count(*) FROM {schema}.{table}").fetchone()[0]
        if rows > MAX_ROWS:
            raise ImportRefused(f"table {table} holds {rows} rows, more than {MAX_ROWS}")
        # One pass over the table counts the bad values of every column.
        sums = ", ".join(f"total({_bad_value_condition(column, kind, limit)})"
                         for column, (kind, limit) in columns.items())
        counts = conn.execute(f"SELECT {sums} FROM {schema}.{table}").fetchone()
        for (column, (kind, limit)), bad in zip(columns.items(), counts):
            bad = int(bad)
            if bad:
                what = f"a {kind} of at most {limit} characters" if kind == _TEXT else \
                    "a finite number" if kind == _REAL else "an integer"
                raise ImportRefused(f"{bad} row(s) of {table}.{column} are not {what}")

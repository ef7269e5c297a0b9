"""
Fuzz targets for files someone else made: history databases and run folders, then every output.

An example builds a crafted database (values of any type and size, tables or columns gone,
identity changed, the file cut) or crafted run folders (hostile names, versions and broken
records), imports it with `history import` and prints `history`, the trend and `compare` in
every format. Accepted or refused with one line are fine; a traceback is a crash, a control
byte or a live CSV formula in the output is unsafe, a call past HANG_S is a hang.
"""

import contextlib
import csv
import io
import json
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, List, Sequence

from hypothesis import strategies as st

from fuzz_targets import Outcome

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'history'))

from history_helpers import write_run  # noqa: E402

UNSAFE = re.compile('[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]')
FORMULA_STARTS = ('=', '+', '-', '@', '\t', '\r')
HANG_S = 30.0
HOSTILE_TEXTS = ('\x1b]0;title\x07', '\x1b[2J', '=1+1', '@SUM(1)', '+cmd', '-2+3', '\t=x',
                 '<script>', '|', '`', '\u202e', '\x9b31m', '$\\frac{1}{$', '\r\n', '\x00')
COLUMNS = {'machines': ('machine_id', 'hostname', 'record_json'),
           'runs': ('run_id', 'machine_id', 'started_at', 'ollama_version', 'comparability_key',
                    'options_json'),
           'run_models': ('model', 'digest', 'quantization', 'size_bytes'),
           'cells': ('model', 'task', 'metric', 'n', 'mean', 'stddev', 'median', 'min', 'max')}


def hostile_text(max_size: int = 30):
    """Short text mixing terminal escapes, formula starts, Markdown and bidi controls."""
    return st.lists(st.one_of(st.sampled_from(HOSTILE_TEXTS), st.text(max_size=8)),
                    max_size=4).map(''.join).map(lambda s: s[:max_size])


def _sql_values():
    return st.one_of(hostile_text(), st.binary(max_size=20), st.integers(-2 ** 63, 2 ** 63 - 1),
                     st.floats(), st.none(), st.sampled_from(['r' * 70000, 'x' * 600]))


@st.composite
def crafted_databases(draw):
    """Edits to a valid history database: values, tables, columns, identity, bytes."""
    edits: List[tuple] = []
    for _ in range(draw(st.integers(0, 4))):
        table = draw(st.sampled_from(sorted(COLUMNS)))
        kind = draw(st.sampled_from(['value', 'value', 'value', 'drop', 'rename', 'id']))
        if kind == 'value':
            edits.append(('value', table, draw(st.sampled_from(COLUMNS[table])),
                          draw(_sql_values())))
        elif kind == 'id':
            edits.append(('id', draw(st.sampled_from(['user_version', 'application_id'])),
                          draw(st.integers(-5, 5)), None))
        else:
            edits.append((kind, table, draw(st.sampled_from(COLUMNS[table])), None))
    cut = draw(st.sampled_from([None, None, None, 100, 4096]))
    return edits, cut


@st.composite
def crafted_run_folders(draw):
    """Two run folders with hostile names and versions, their records maybe broken."""
    models = draw(st.lists(hostile_text(20).filter(bool), min_size=1, max_size=3, unique=True))
    version = draw(hostile_text())
    machine = {'machine_id': draw(hostile_text().filter(bool)), 'hostname': draw(hostile_text())}
    breakage = draw(st.sampled_from([None, None, 'cut', 'garbage line', 'wrong types']))
    return models, version, machine, breakage


def _base_database(folder: Path) -> Path:
    from shadowhound_llm_bench.reports.history_db import HistoryDb

    path = folder / 'theirs.sqlite3'
    with HistoryDb(path):
        pass
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO machines (machine_id, hostname) VALUES ('m', 'h')")
    for ref in (1, 2):
        conn.execute("INSERT INTO runs (id, run_id, machine_id, started_at, comparability_key, "
                     "recorded_at) VALUES (?, ?, 'm', ?, '{}', 'now')",
                     (ref, f'run{ref}', f'2026-11-0{ref}T00:00:00+00:00'))
        conn.execute("INSERT INTO run_models (run_ref, model) VALUES (?, 'x')", (ref,))
        conn.execute("INSERT INTO cells (run_ref, model, task, metric, n, mean, stddev, median, "
                     "min, max) VALUES (?, 'x', '*', 'decode_tps', 3, 10, 1, 10, 9, 11)", (ref,))
    conn.commit()
    conn.close()
    return path


def _apply(path: Path, edits: Sequence[tuple], cut: Any) -> None:
    conn = sqlite3.connect(path)
    for kind, a, b, value in edits:
        try:
            if kind == 'value':
                conn.execute(f'UPDATE {a} SET {b} = ?', (value,))
            elif kind == 'id':
                conn.execute(f'PRAGMA {a} = {int(b)}')
            elif kind == 'drop':
                conn.execute(f'DROP TABLE {a}')
            else:
                conn.execute(f'ALTER TABLE {a} RENAME COLUMN {b} TO renamed')
        except sqlite3.Error:
            pass  # an edit the earlier ones made impossible
    conn.commit()
    conn.close()
    if cut is not None:
        data = path.read_bytes()
        path.write_bytes(data[:cut])


def run_cli(argv: Sequence[Any]) -> tuple:
    """Run the CLI in this process; (status, stdout, stderr) or the exception it raised."""
    from shadowhound_llm_bench.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


def _judge(calls: Sequence[Sequence[Any]]) -> Outcome:
    started = time.monotonic()
    label = 'accepted'
    for argv in calls:
        try:
            status, out, err = run_cli(argv)
        except SystemExit as exc:  # argparse refusing an argument
            return Outcome('crash', f'SystemExit {exc.code} on {argv[:2]}')
        except Exception as exc:  # noqa: BLE001  (any exception here is the defect)
            return Outcome('crash', f'{type(exc).__name__}: {str(exc)[:200]} ({argv[:2]})')
        for text in (out, err):
            if UNSAFE.search(text):
                return Outcome('unsafe', repr(UNSAFE.findall(text)[:5]))
        if '--format' in argv and 'csv' in argv:
            for row in csv.reader(io.StringIO(out)):
                for cell in row:
                    if cell.startswith(FORMULA_STARTS) and not _number(cell):
                        return Outcome('unsafe', f'live formula {cell[:40]!r}')
        if status == 2:
            if len(err.strip().splitlines()) != 1:
                return Outcome('unsafe', f'refusal of {len(err.splitlines())} lines')
            label = 'refused'
            break
        if status != 0:
            return Outcome('crash', f'exit {status}: {err[:200]}')
    if time.monotonic() - started > HANG_S:
        return Outcome('hang', f'{time.monotonic() - started:.1f} s')
    return Outcome(label)


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_database(example) -> Outcome:
    """Import a crafted database, then print the overview and the trend in every format."""
    edits, cut = example
    folder = Path(tempfile.mkdtemp(prefix='shb-fuzz-db-'))
    try:
        theirs = _base_database(folder)
        _apply(theirs, edits, cut)
        mine = folder / 'mine.sqlite3'
        calls = [['history', 'import', theirs, '--db', mine], ['history', '--db', mine]]
        calls += [['history', '--db', mine, '--model', 'x', '--format', fmt, '--plot', '']
                  for fmt in ('markdown', 'csv', 'json')]
        return _judge(calls)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _break(log: Path, breakage: Any) -> None:
    text = log.read_text()
    if breakage == 'cut':
        log.write_text(text[:len(text) // 2])
    elif breakage == 'garbage line':
        log.write_text(text + '\x1b]0;x\x07{not json\n')
    elif breakage == 'wrong types':
        log.write_text(text.replace('"decode_tokens_per_s": ',
                                    '"decode_tokens_per_s": "fast", "x": ', 3))


def check_run_folders(example) -> Outcome:
    """Compare two crafted run folders in every format, draw the chart, import them."""
    models, version, machine, breakage = example
    folder = Path(tempfile.mkdtemp(prefix='shb-fuzz-runs-'))
    try:
        runs = []
        for day in (1, 2):
            run = write_run(folder / 'runs', f'run_2026110{day}_0100_{day}',
                            decode_tps={m: 10.0 * (i + 1) for i, m in enumerate(models)},
                            machine=machine, repetitions=2, tasks=('t',),
                            started=f'2026-11-0{day}T01:00:00+00:00', seed=day)
            log = run / 'tests.jsonl'
            log.write_text(log.read_text().replace('"0.12.6"', json.dumps(version)))
            runs.append(run)
        _break(runs[1] / 'tests.jsonl', breakage)
        calls = [['compare', *runs, '--format', fmt, '--plot', folder / 'c.png' if fmt == 'json'
                  else ''] for fmt in ('markdown', 'csv', 'json')]
        calls.append(['history', 'import', *runs, '--db', folder / 'h.sqlite3'])
        return _judge(calls)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

"""Crafted run folders and history databases: every output prints no control byte, no formula."""

import csv
import io
import json
import re
import sqlite3
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'history'))

from history_helpers import write_run  # noqa: E402
from shadowhound_llm_bench.cli import main  # noqa: E402
from shadowhound_llm_bench.reports.history_db import HistoryDb  # noqa: E402

# What a terminal acts on: C0 (but \n), DEL, C1, line/paragraph separators, bidi controls.
UNSAFE = re.compile('[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]')
FORMULA_STARTS = ('=', '+', '-', '@', '\t', '\r')
OSC_TITLE = '\x1b]0;owned\x07'
MODELS = {f'{OSC_TITLE}evil:1b': 40.0, '=1+1': 50.0, '@SUM(1)<b>|x': 60.0,
          '\u202eevil\u202c$\\frac{1}{$': 70.0}
MACHINE = {'machine_id': '\x1b[2Jm-1', 'hostname': '=HYPERLINK("http://x")\x1b[31m'}
VERSION = '\x1b[31m+0.12.6\r\x9b1m'


@pytest.fixture(scope='module')
def crafted(tmp_path_factory):
    """Two finished run folders whose every text is hostile, and a database made from them."""
    root = tmp_path_factory.mktemp('crafted')
    folders = []
    for day, run_id in ((1, 'run_20261101_0100_a'), (2, 'run_20261102_0100_b')):
        folder = write_run(root / 'runs', run_id, decode_tps=MODELS, machine=MACHINE,
                           started=f'2026-11-0{day}T01:00:00+00:00', seed=day)
        log = folder / 'tests.jsonl'
        log.write_text(log.read_text().replace('"0.12.6"', json.dumps(VERSION))
                       .replace('"Q4_K_M"', json.dumps('-Q4\x1b[0m\u2066')))
        folders.append(folder)
    db = root / 'theirs.sqlite3'
    assert main(['history', 'import', *map(str, folders), '--db', str(db)]) == 0
    return root, folders, db


def _run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert status == 0, err
    for text in (out, err):
        assert not UNSAFE.search(text), UNSAFE.findall(text)
    return out


def _no_live_formula(text):
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            if cell.startswith(FORMULA_STARTS):
                float(cell)  # only a number (a negative change) may start with '-'


def test_history_import_of_a_crafted_database_then_history_prints_nothing_live(
        crafted, capsys, tmp_path):
    _, _, theirs = crafted
    mine = tmp_path / 'mine.sqlite3'
    assert 'imported 2 run(s)' in _run(capsys, 'history', 'import', theirs, '--db', mine)
    overview = _run(capsys, 'history', '--db', mine)
    assert 'HYPERLINK' in overview and '<b>' not in overview and '&lt;b&gt;' in overview
    model = next(iter(MODELS))
    for fmt in ('markdown', 'csv', 'json'):
        plot = tmp_path / 'trend.png' if fmt == 'markdown' else ''
        out = _run(capsys, 'history', '--db', mine, '--model', model, '--format', fmt,
                   '--plot', plot)
        if fmt == 'csv':
            _no_live_formula(out)
        if fmt == 'json':
            assert json.loads(out)['runs'][0]['ollama_version'] == VERSION  # data kept, escaped
        if fmt == 'markdown':
            # The OSC sequence goes whole, its payload (a window title) with it.
            assert 'evil:1b' in out and 'owned' not in out
    assert (tmp_path / 'trend.png').read_bytes()[:4] == b'\x89PNG'


@pytest.mark.parametrize('fmt', ['markdown', 'csv', 'json'])
def test_compare_of_crafted_run_folders_prints_nothing_live(crafted, capsys, tmp_path, fmt):
    _, folders, _ = crafted
    plot = tmp_path / 'c.png' if fmt == 'markdown' else ''
    out = _run(capsys, 'compare', *folders, '--format', fmt, '--plot', plot)
    if fmt == 'csv':
        _no_live_formula(out)
        assert any(cell == "'=1+1" for row in csv.reader(io.StringIO(out)) for cell in row)
    elif fmt == 'json':
        data = json.loads(out)
        assert {row['model'] for m in data['metrics'] for row in m['rows']} >= set(MODELS)
    else:
        assert '<b>' not in out and '@SUM(1)&lt;b&gt;\\|x' in out
        # The chart is drawn although a model name is broken mathtext ('$\frac{1}{$').
        assert (tmp_path / 'c.png').read_bytes()[:4] == b'\x89PNG'


def test_a_chart_written_to_a_file_holds_no_control_byte_either(crafted, capsys, tmp_path):
    _, folders, _ = crafted
    table = tmp_path / 'table.md'
    _run(capsys, 'compare', *folders, '--output', table, '--plot', '')
    assert not UNSAFE.search(table.read_text())


def _crafted_database(path, table, column, value):
    with HistoryDb(path):
        pass
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO machines (machine_id, hostname) VALUES ('m', 'h')")
    conn.execute("INSERT INTO runs (id, run_id, machine_id, comparability_key, recorded_at) "
                 "VALUES (1, 'r', 'm', '{}', 'now')")
    conn.execute("INSERT INTO run_models (run_ref, model) VALUES (1, 'x')")
    conn.execute("INSERT INTO cells (run_ref, model, task, metric, n, mean, stddev, median, "
                 "min, max) VALUES (1, 'x', '*', 'decode_tps', 1, 1, 0, 1, 1, 1)")
    if value is None and column is None:
        conn.execute(f'ALTER TABLE {table} RENAME TO gone')
    elif value is None:
        conn.execute(f'ALTER TABLE {table} RENAME COLUMN {column} TO other_name')
    else:
        conn.execute(f'UPDATE {table} SET {column} = ?', (value,))
    conn.commit()
    conn.close()


@pytest.mark.parametrize('table, column, value, fragment', [
    ('cells', 'mean', 'fast', 'cells.mean are not a finite number'),
    ('cells', 'mean', b'\x00\x01', 'cells.mean are not a finite number'),
    ('cells', 'stddev', 1e308 * 10, 'cells.stddev are not a finite number'),
    ('cells', 'n', 2.5, 'cells.n are not an integer'),
    ('runs', 'run_id', 'r' * 100000, 'runs.run_id are not a text of at most 512'),
    ('machines', 'hostname', b'\xff\x00', 'machines.hostname are not a text'),
    ('run_models', None, None, 'has no table run_models'),
    ('cells', 'model', None, 'cells lacks the column(s) model'),
])
def test_a_database_with_values_out_of_shape_is_refused_in_one_line_and_nothing_is_written(
        capsys, tmp_path, table, column, value, fragment):
    theirs, mine = tmp_path / 'theirs.sqlite3', tmp_path / 'mine.sqlite3'
    _crafted_database(theirs, table, column, value)
    with HistoryDb(mine):
        pass
    status = main(['history', 'import', str(theirs), '--db', str(mine)])
    _, err = capsys.readouterr()
    assert status == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    with HistoryDb(mine) as db:
        assert db.run_count() == 0


@pytest.mark.parametrize('table, column, value, fragment', [
    ('runs', 'ollama_version', 'v' * 100000, 'runs.ollama_version are not a text of at most 512'),
    ('cells', 'median', 'NaN-ish', 'cells.median are not a finite number'),
    ('machines', 'hostname', None, 'machines lacks the column(s) hostname'),
])
def test_a_crafted_database_read_in_place_is_refused_in_one_line(
        capsys, tmp_path, table, column, value, fragment):
    """`history --db their.sqlite3` checks the file's values as an import does."""
    theirs = tmp_path / 'theirs.sqlite3'
    _crafted_database(theirs, table, column, value)
    for argv in (['history', '--db', theirs], ['history', '--db', theirs, '--model', 'x']):
        status = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        assert status == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
        assert not out


def test_a_database_in_shape_is_read_in_place(capsys, tmp_path):
    theirs = tmp_path / 'theirs.sqlite3'
    _crafted_database(theirs, 'runs', 'status', 'ok')
    assert 'x' in _run(capsys, 'history', '--db', theirs)

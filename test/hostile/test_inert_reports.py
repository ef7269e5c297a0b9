"""Reports are inert: server or model text breaks no table, runs in no spreadsheet or TTY."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hostile_ollama import HostileServer, Reply
from shadowhound_llm_bench.core.runs.inert_text import csv_cell, markdown_cell, terminal_line

REPO = Path(__file__).resolve().parents[2]
FORMULA = "=HYPERLINK(\"http://evil\",\"x\")"
POISON = "| fake | row |\n# Injected heading\r\n<script>alert(1)</script>\x1b[2J\x1b]0;owned\x07"
MODEL = 'poison:1b'


def _json_reply(obj, status=200):
    data = json.dumps(obj).encode()
    return Reply(pieces=lambda: [data], status=status, content_length=len(data),
                 content_type='application/json')


class PoisonedOllama(HostileServer):
    """A well-formed Ollama whose every free text is an injection attempt."""

    def __init__(self):
        super().__init__(_json_reply({'error': 'not found'}, 404))
        details = {'quantization_level': FORMULA, 'parameter_size': '+1' + POISON,
                   'family': '@SUM(1+1)'}
        self.replies = {
            '/api/version': _json_reply({'version': '0.9\x1b[31m'}),
            '/api/tags': _json_reply({'models': [{'name': MODEL, 'model': MODEL, 'size': 1000,
                                                  'digest': '-' + 'd' * 63,
                                                  'details': details}]}),
            '/api/ps': _json_reply({'models': []}),
            '/api/show': _json_reply({'details': details, 'model_info': {}}),
        }

    def reply_for(self, method, path, body):
        if path == '/api/generate':
            request = json.loads(body or b'{}')
            if not request.get('prompt'):
                return _json_reply({'model': MODEL, 'done': True, 'done_reason': 'load'})
            line = json.dumps({'error': FORMULA + POISON}).encode() + b'\n'
            return Reply(pieces=lambda: [line])
        return super().reply_for(method, path, body)


@pytest.fixture
def suite_file(tmp_path):
    path = tmp_path / 'one.yaml'
    path.write_text('name: one\ntasks:\n  - id: t\n    kind: instruction\n    prompt: hi\n'
                    '    checks: [{type: word_count, max: 5, points: 1}]\n')
    return path


def test_a_poisoned_server_cannot_inject_into_summary_csv_or_terminal(tmp_path, suite_file):
    with PoisonedOllama() as server:
        proc = subprocess.run(
            [sys.executable, '-m', 'shadowhound_llm_bench.cli', 'run', '--host', server.url,
             '--models', MODEL, '--suite', str(suite_file), '--unguarded', '--repetitions', '1',
             '--no-warmup', '--results-dir', str(tmp_path / 'results'), '--request-timeout',
             '10'],
            cwd=REPO, capture_output=True, text=True, timeout=120)
    output = proc.stdout + proc.stderr
    assert 'Traceback' not in output, output
    assert 'poison:1b' in output and 'failed' in output
    for control in ('\x1b', '\x07', '\r'):  # no terminal command got through
        assert control not in output
    run_dir = next((tmp_path / 'results').iterdir())
    summary = (run_dir / 'summary.md').read_text()
    assert 'Injected heading' in summary
    assert '\n# Injected' not in summary and '<script>' not in summary
    assert '\x1b' not in summary and '\r' not in summary
    tables, current = [], []
    for line in summary.splitlines() + ['']:
        if line.startswith('|'):
            current.append(len(line.replace('\\|', '').split('|')))
        elif current:
            tables.append(current)
            current = []
    assert len(tables) >= 2  # results and per-task tables
    for widths in tables:  # every row keeps the header's column count: no '|' got in
        assert len(set(widths)) == 1, widths
    rows = list(csv.DictReader((run_dir / 'results.csv').open()))
    assert rows, 'one row per model'
    for row in rows:
        for column, value in row.items():
            assert not value.startswith(('=', '+', '-', '@', '\t', '\r')), (column, value)
    assert rows[0]['quantization'].startswith("'=HYPERLINK")
    assert rows[0]['parameter_size'].startswith("'+1")
    assert rows[0]['digest'].startswith("'-")


def test_markdown_cells_keep_one_line_and_their_columns():
    cell = markdown_cell(POISON)
    assert '\n' not in cell and '\r' not in cell and '\x1b' not in cell
    assert cell.count('|') == cell.count('\\|')
    assert '<' not in cell and '>' not in cell


@pytest.mark.parametrize('text', ['=1+1', '+1', '-1', '@A1', '\t=1', '\r=1', '\x1b=1'])
def test_csv_cells_never_start_a_formula(text):
    assert not csv_cell(text).startswith(('=', '+', '-', '@', '\t', '\r'))


def test_terminal_lines_carry_no_escape_or_control():
    line = terminal_line('ok\x1b[2K\rdone\x9b31m\x07 \u202eevil\ue145\u200b' + 'x' * 10000)
    assert line.startswith('ok done') and len(line) < 4100
    assert all(ch.isprintable() for ch in line)


class AnsweringPoisonedOllama(PoisonedOllama):
    """The same poisoned metadata, but every request answered well (so runs can be compared)."""

    def reply_for(self, method, path, body):
        if path == '/api/generate' and json.loads(body or b'{}').get('prompt'):
            final = {'model': MODEL, 'response': '', 'done': True, 'done_reason': 'stop',
                     'total_duration': 9_000_000, 'load_duration': 1_000_000,
                     'prompt_eval_count': 5, 'prompt_eval_duration': 1_000_000,
                     'eval_count': 2, 'eval_duration': 4_000_000}
            data = b''.join(json.dumps(obj).encode() + b'\n' for obj in (
                {'model': MODEL, 'response': 'one ', 'done': False},
                {'model': MODEL, 'response': 'two', 'done': False}, final))
            return Reply(pieces=lambda: [data])
        return super().reply_for(method, path, body)


def test_a_comparison_of_poisoned_runs_stays_inert(tmp_path):
    suite = tmp_path / 'pipes.yaml'
    suite.write_text('name: pipes\ntasks:\n  - id: "=a|b"\n    kind: instruction\n'
                     '    prompt: hi\n    checks: [{type: word_count, max: 5, points: 1}]\n')
    results = tmp_path / 'results'
    with AnsweringPoisonedOllama() as server:
        for _ in range(2):
            proc = subprocess.run(
                [sys.executable, '-m', 'shadowhound_llm_bench.cli', 'run', '--host', server.url,
                 '--models', MODEL, '--suite', str(suite), '--unguarded', '--repetitions', '2',
                 '--no-warmup', '--results-dir', str(results), '--quiet'],
                cwd=REPO, capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = sorted(str(p) for p in results.iterdir() if (p / 'tests.jsonl').is_file())
    assert len(runs) == 2
    outputs = {}
    for kind in ('markdown', 'csv'):
        proc = subprocess.run(
            [sys.executable, '-m', 'shadowhound_llm_bench.cli', 'compare', *runs, '--plot', '',
             '--format', kind], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        outputs[kind] = proc.stdout
    markdown = outputs['markdown']
    assert '\x1b' not in markdown and '=a\\|b' in markdown
    for line in markdown.splitlines():
        if line.startswith('| poison:1b'):
            assert len(line.replace('\\|', '').split('|')) == 2 + 2 + len(runs)
    tasks = {row['task'] for row in csv.DictReader(outputs['csv'].splitlines())}
    assert "'=a|b" in tasks and tasks <= {'', "'=a|b"}  # '' is the all-tasks row

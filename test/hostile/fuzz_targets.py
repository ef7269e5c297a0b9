"""
Property-based fuzz targets over every input the product takes from outside.

Each target runs one example and returns its Outcome: accepted, refused (the specific error the
contract names), or a defect: crash (any other exception), echo (a refused file's content in the
message), unsafe (a message too long or with control characters) or hang (past the deadline).
The CI tests (test_fuzz.py) run a fixed small budget; benchmarks/fuzz_long.py a long one.
"""

import copy
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional

import yaml
from hypothesis import strategies as st

from hostile_ollama import HostileServer, Reply

REPO = Path(__file__).resolve().parents[2]
SUITES = REPO / 'config' / 'suites'
SMALL_SCENARIO = REPO / 'config' / 'scenarios' / 'small.yaml'
# Planted in every fuzzed file: no error message may ever carry it.
MARKER = 'Zq7MARKERx'
MESSAGE_LIMIT_CHARS = 1200
CLIENT_DEADLINE_S = 1.5
HANG_SLACK_S = 5.0
DEFECTS = ('crash', 'echo', 'unsafe', 'hang', 'memory')


@dataclass
class Outcome:
    """What one example did."""

    label: str  # accepted | refused | crash | echo | unsafe | hang | memory
    detail: str = ''

    @property
    def defect(self) -> bool:
        return self.label in DEFECTS


def _message_outcome(exc: BaseException, *, file_text: Optional[str] = None,
                     path: Optional[str] = None) -> Outcome:
    message = str(exc)
    if path:
        message = message.replace(path, '<file>')
    if file_text is not None and MARKER in message:
        return Outcome('echo', message[:300])
    if len(message) > MESSAGE_LIMIT_CHARS or not all(ch.isprintable() for ch in message):
        return Outcome('unsafe', repr(message[:300]))
    return Outcome('refused', message[:200])


def _crash(exc: BaseException) -> Outcome:
    return Outcome('crash', f'{type(exc).__name__}: {str(exc)[:300]}')


# ---------------------------------------------------------------- values
def marked_text(max_size: int = 40):
    """Text that sometimes carries the marker, control characters and escape sequences."""
    return st.one_of(
        st.text(max_size=max_size),
        st.builds(lambda a, b: a + MARKER + b, st.text(max_size=8), st.text(max_size=8)),
        st.sampled_from(['\x1b[2J', '|', '\n# h', '=1+1', '../../etc/passwd', '', ' ', '*a',
                         '&a', '!!python/object', '%', '\t', '\u202e', 'x' * 300]),
    )


def yaml_values():
    """Values YAML can hold: scalars and nested lists and mappings of them."""
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70),
                        st.floats(allow_nan=True, allow_infinity=True), marked_text())
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(marked_text(12), inner, max_size=4)), max_leaves=12)


def _paths(data: Any, prefix=()) -> List[tuple]:
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, prefix + (key,))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _paths(value, prefix + (index,))
    return found


@st.composite
def mutated(draw, base: Any):
    """Draw the base document with one to three places replaced, removed or given a new key."""
    data = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        places = _paths(data)
        place = draw(st.sampled_from(places))
        value = draw(yaml_values())
        if not place:
            data = value
            continue
        parent = data
        for step in place[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(['replace', 'remove', 'add']))
        if action == 'remove' and isinstance(parent, (dict, list)):
            del parent[place[-1]]
        elif action == 'add' and isinstance(parent, dict):
            parent[draw(marked_text(12))] = value
        else:
            parent[place[-1]] = value
    return data


def suite_document() -> dict:
    from shadowhound_llm_bench.core.runs.suite import load_suite

    data = load_suite('robot_mission').to_dict()
    data.pop('source', None)
    return data


def scenario_document() -> dict:
    return yaml.safe_load(SMALL_SCENARIO.read_text())


# ---------------------------------------------------------------- goals
def goal_requests():
    from shadowhound_llm_bench.core.settings.goal_validation import GoalRequest

    int32 = st.integers(-2 ** 31, 2 ** 31 - 1)
    return st.builds(
        GoalRequest,
        models=st.lists(st.one_of(marked_text(), st.sampled_from(
            ['qwen2.5:0.5b', 'phi4:14b', 'a/b/c/d:e', 'x' * 201])), max_size=70),
        suite=st.one_of(marked_text(), st.sampled_from(
            ['robot_mission', '/etc/shadow', '/etc/passwd.yaml', '../config/suites/x.yaml',
             str(SUITES / 'robot_mission.yaml'), '~/.ssh/id_rsa.yaml', 'a' * 5000])),
        repetitions=int32, preset=marked_text(), dry_run=st.booleans(), order=marked_text(),
        num_ctx=int32, num_predict=int32,
        temperature=st.floats(allow_nan=True, allow_infinity=True, width=32), seed=int32,
        keep_alive=marked_text(), no_pull=st.booleans(), run_name=marked_text(),
        resume_run_id=marked_text())


def check_goal(request) -> Outcome:
    from shadowhound_llm_bench.core.settings.goal_validation import GoalRejected, resolve_goal
    from shadowhound_llm_bench.core.settings.node_settings import NodeSettings

    try:
        resolve_goal(request, NodeSettings(), suite_dirs=[SUITES])
    except GoalRejected as exc:
        return _message_outcome(exc)
    except Exception as exc:  # anything else is a defect
        return _crash(exc)
    return Outcome('accepted')


# ---------------------------------------------------------------- suites
def check_suite_data(data: Any) -> Outcome:
    from shadowhound_llm_bench.core.runs.suite import SuiteError, parse_suite

    try:
        parse_suite(data, source='fuzzed.yaml')
    except SuiteError as exc:
        return _message_outcome(exc, file_text='')
    except Exception as exc:
        return _crash(exc)
    return Outcome('accepted')


def suite_file_texts():
    """Whole files: mutated suites as YAML, and raw text with the marker inside."""
    dumped = mutated(suite_document()).map(
        lambda d: yaml.safe_dump(d, allow_unicode=True, default_flow_style=False))
    raw = st.builds(lambda a, b: a + MARKER + b, st.text(max_size=200), st.text(max_size=200))
    lines = st.lists(st.sampled_from([f'root:{MARKER}:1:0', f'{MARKER}: [', f'- {MARKER}',
                                      f'"{MARKER}', f'*{MARKER}', f'&{MARKER} x', f'\t{MARKER}',
                                      'name: x', 'tasks:', '  - id: t', '%YAML 9.9',
                                      f'!!binary {MARKER}', f'? {MARKER}']),
                     min_size=1, max_size=8).map('\n'.join)
    return st.one_of(dumped, raw, lines)


def check_suite_file(text: str) -> Outcome:
    from shadowhound_llm_bench.core.runs.suite import SuiteError, load_suite

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / 'fuzzed.yaml'
        path.write_text(text, encoding='utf-8', errors='surrogatepass')
        try:
            load_suite(str(path))
        except SuiteError as exc:
            return _message_outcome(exc, file_text=text, path=str(path))
        except Exception as exc:
            return _crash(exc)
    return Outcome('accepted')


# ---------------------------------------------------------------- scenarios
def check_scenario(data: Any) -> Outcome:
    from shadowhound_llm_bench.sim.scenario import ScenarioError, scenario_from_dict

    try:
        scenario_from_dict(data or {}, name='fuzzed')
    except ScenarioError as exc:
        return Outcome('refused', str(exc)[:200])
    except Exception as exc:
        return _crash(exc)
    return Outcome('accepted')


# ---------------------------------------------------------------- parameters
@st.composite
def parameter_changes(draw):
    from shadowhound_llm_bench.core.settings.node_settings import PARAMETER_SPECS

    names = [spec.name for spec in PARAMETER_SPECS] + ['no.such', MARKER]
    values = st.one_of(st.booleans(), st.integers(-2 ** 63, 2 ** 63 - 1),
                       st.floats(allow_nan=True, allow_infinity=True), marked_text(),
                       st.lists(marked_text(), max_size=4))
    return draw(st.dictionaries(st.sampled_from(names), values, max_size=4))


def check_parameters(changes: dict) -> Outcome:
    from shadowhound_llm_bench.core.settings.node_settings import NodeSettings, NodeSettingsError

    try:
        NodeSettings(values=changes)
    except NodeSettingsError as exc:
        return Outcome('refused', str(exc)[:200])
    except Exception as exc:
        return _crash(exc)
    return Outcome('accepted')


def check_params_file(text: str) -> Outcome:
    from shadowhound_llm_bench.core.settings.ros_args import params_file_error

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / 'params.yaml'
        path.write_text(text, encoding='utf-8', errors='surrogatepass')
        try:
            error = params_file_error(str(path))
        except Exception as exc:
            return _crash(exc)
    if not error:
        return Outcome('accepted')
    # A params file is named by the operator's own command line; only its YAML syntax errors
    # must not quote it (keys of a well-formed file are named to help the operator).
    if 'not valid YAML' in error and MARKER in error:
        return Outcome('echo', error[:300])
    return Outcome('refused', error[:200])


# ---------------------------------------------------------------- Ollama replies
FINAL_FIELDS = ('total_duration', 'load_duration', 'prompt_eval_count', 'prompt_eval_duration',
                'eval_count', 'eval_duration', 'done_reason', 'done', 'response', 'message',
                'error', 'thinking', 'context', 'models', 'version', 'size', 'name',
                'details', 'model_info', 'general.architecture', 'llama.block_count',
                'llama.attention.head_count', 'llama.embedding_length', 'parameter_size')
ENDPOINTS = ('generate', 'chat', 'tags', 'ps', 'show', 'version', 'load', 'pull')


def _json_values():
    numbers = st.one_of(st.integers(-2 ** 80, 2 ** 80),
                        st.floats(allow_nan=True, allow_infinity=True))
    scalars = st.one_of(st.none(), st.booleans(), numbers, marked_text(60))
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(FINAL_FIELDS), inner, max_size=4)), max_leaves=10)


def _encode(obj: Any) -> bytes:
    return json.dumps(obj, allow_nan=True).encode() + b'\n'


@st.composite
def hostile_replies(draw):
    """One reply: status, body pieces (JSON lines, garbage, huge), declared length, drip."""
    lines = draw(st.lists(st.one_of(
        st.dictionaries(st.sampled_from(FINAL_FIELDS), _json_values(), max_size=6).map(_encode),
        st.binary(max_size=200),
        st.sampled_from([b'{"done": true, "eval_count": NaN}\n', b'[' * 3000 + b'\n',
                         b'{"response": "x", "done": false}\n' * 50,
                         b'{"done": true, "done_reason": "load"}\n', b'\n\n\n',
                         b'{"models": [{"name": "m", "size": 1e400}]}\n'])), max_size=6))
    body = b''.join(lines)
    cut = draw(st.integers(0, 4))
    pieces = [body[i::cut + 1] for i in range(cut + 1)] if cut and body else [body]
    status = draw(st.sampled_from([200, 200, 200, 400, 404, 500, 503]))
    length = draw(st.sampled_from(['chunked', 'exact', 'short', 'long', 'huge']))
    content_length = {'chunked': None, 'exact': len(body), 'short': max(0, len(body) - 3),
                      'long': len(body) + 100, 'huge': 6 * 1024 ** 3}[length]
    endless = draw(st.sampled_from([None, None, None, b'x' * 4096, b'{"response": "y"}\n']))
    drip = draw(st.sampled_from([0.0, 0.0, 0.0, 0.02]))
    if endless is not None:
        content_length = None

        def pieces_fn(first=pieces, more=endless):
            yield from first
            while True:
                yield more
    else:
        def pieces_fn(first=pieces):
            return list(first)
    reply = Reply(pieces=pieces_fn, status=status, content_length=content_length, delay_s=drip)
    return draw(st.sampled_from(ENDPOINTS)), reply


def _use_metadata(show: Any, tags: Any) -> None:
    """Feed a show reply (and a tags reply, when the server gives one) to the footprint code."""
    from shadowhound_llm_bench.adapters.ollama_client import OllamaError
    from shadowhound_llm_bench.core.memory.footprint import (
        FootprintPredictor, kv_cache_bytes, metadata_from_ollama)
    from shadowhound_llm_bench.core.ollama.model_metadata import metadata_from

    try:
        entries = tags()
    except OllamaError:
        entries = [{'name': 'm', 'size': 1000}]
    for entry in entries[:3] or [{'name': 'm', 'size': 1000}]:
        metadata_from('m', entry, show)
        metadata_from_ollama(entry, show)
        for version in ('0.12.6', '0.32.15', 'x'):  # each release's estimate from the tensors
            FootprintPredictor(num_ctx=4096).predict(
                'm', metadata=metadata_from_ollama(entry, show, version))
    kv_cache_bytes(show.get('model_info') or {}, 4096)


def check_client(base_url: str, endpoint: str) -> Outcome:
    from shadowhound_llm_bench.adapters.ollama_client import OllamaClient, OllamaError

    started = time.monotonic()
    try:
        with OllamaClient(base_url=base_url, request_timeout_s=CLIENT_DEADLINE_S) as client:
            call = {
                'generate': lambda: client.generate_stream('m', 'p', deadline_s=CLIENT_DEADLINE_S),
                'chat': lambda: client.chat_stream('m', [{'role': 'user', 'content': 'p'}],
                                                   deadline_s=CLIENT_DEADLINE_S),
                'tags': client.tags, 'ps': client.ps, 'version': client.version,
                'show': lambda: _use_metadata(client.show('m'), client.tags),
                'load': lambda: client.load('m', keep_alive=0, deadline_s=CLIENT_DEADLINE_S),
                'pull': lambda: client.pull('m', deadline_s=CLIENT_DEADLINE_S),
            }[endpoint]
            call()
    except OllamaError as exc:
        outcome = _message_outcome(exc)
    except Exception as exc:
        outcome = _crash(exc)
    else:
        outcome = Outcome('accepted')
    if time.monotonic() - started > CLIENT_DEADLINE_S + HANG_SLACK_S:
        return Outcome('hang', f'{endpoint}: {time.monotonic() - started:.1f} s')
    return outcome


class ClientTarget:
    """One hostile server for many examples: each example sets the reply it serves."""

    def __init__(self) -> None:
        self.server = HostileServer(Reply(pieces=lambda: [b'{}']))

    def __enter__(self) -> 'ClientTarget':
        self.server.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.server.__exit__(*exc)

    def check(self, example) -> Outcome:
        endpoint, reply = example
        self.server.default = reply
        return check_client(self.server.url, endpoint)

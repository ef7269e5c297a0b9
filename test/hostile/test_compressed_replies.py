"""Compressed replies: one gzip layer read in bounded steps, bombs and stacks refused early."""

import gzip
import json
import os
import time
import tracemalloc
import zlib

import pytest

from hostile_ollama import HostileServer, Reply, gzip_bomb, gzip_reply, line
from shadowhound_llm_bench.adapters.bounded_http import ReplyLimits
from shadowhound_llm_bench.adapters.ollama_client import (
    OllamaBadReply, OllamaClient, OllamaHTTPError, OllamaReplyTooLarge, OllamaTimeout)

MIB = 1024 * 1024
# Python memory allocated while a reply is read: a few inflate steps and the bounded body.
# The hostile replies below expand to 400+ MiB; read whole they would need all of it.
PEAK_BOUND_BYTES = 24 * MIB
PS_REPLY = {'models': [{'name': 'm:1b', 'model': 'm:1b', 'size': 1000, 'size_vram': 0}]}


def _client_call(reply, call, *, limits=ReplyLimits(), deadline_s=5.0):
    """Run call(client) against the reply; return (exception or result, peak bytes, seconds)."""
    with HostileServer(reply) as server, OllamaClient(
            base_url=server.url, request_timeout_s=deadline_s, limits=limits) as client:
        tracemalloc.start()
        started = time.monotonic()
        try:
            outcome = call(client)
        except Exception as exc:  # noqa: BLE001  (the test looks at which one)
            outcome = exc
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return outcome, peak, elapsed, server.last_headers


def _ps(client):
    return client.ps()


def _generate(client):
    return client.generate_stream('m', 'hi', deadline_s=5.0)


def test_the_client_asks_for_plain_bytes_and_reads_a_plain_reply():
    body = json.dumps(PS_REPLY).encode()
    reply = Reply(pieces=lambda: [body], content_length=len(body),
                  content_type='application/json')
    outcome, _, _, headers = _client_call(reply, _ps)
    assert [m['name'] for m in outcome] == ['m:1b']
    assert headers.get('Accept-Encoding') == 'identity'


@pytest.mark.parametrize('chunked', [False, True])
def test_one_gzip_layer_from_a_proxy_is_read(chunked):
    body = gzip.compress(json.dumps(PS_REPLY).encode())
    outcome, _, _, _ = _client_call(gzip_reply(body, chunked=chunked, piece_bytes=7), _ps)
    assert [m['name'] for m in outcome] == ['m:1b']


def test_a_gzip_stream_in_small_chunks_is_read_line_by_line():
    lines = b''.join(line({'response': t, 'done': False}) for t in 'abc')
    lines += line({'response': '', 'done': True, 'done_reason': 'stop', 'eval_count': 3})
    reply = gzip_reply(gzip.compress(lines), chunked=True, piece_bytes=5,
                       content_type='application/x-ndjson')
    outcome, _, _, _ = _client_call(reply, _generate)
    assert outcome.text == 'abc'


def test_a_stacked_gzip_reply_of_under_2_kb_is_refused_from_its_header():
    body = gzip_bomb(420 * MIB, layers=2)
    assert len(body) < 2048
    outcome, peak, elapsed, _ = _client_call(gzip_reply(body, encoding='gzip, gzip'), _ps)
    assert isinstance(outcome, OllamaBadReply), outcome
    assert 'stacked encodings' in str(outcome) and '\n' not in str(outcome)
    assert peak < PEAK_BOUND_BYTES


def test_a_400_kb_gzip_bomb_stops_at_the_decoded_bound_with_little_memory():
    body = gzip_bomb(420 * MIB)
    assert len(body) < 500 * 1024
    outcome, peak, _, _ = _client_call(gzip_reply(body, chunked=True), _ps)
    assert isinstance(outcome, OllamaReplyTooLarge), outcome
    assert 'once decoded' in str(outcome) or 'expands more than' in str(outcome)
    assert '\n' not in str(outcome) and peak < PEAK_BOUND_BYTES


def test_a_gzip_bomb_as_a_stream_stops_at_the_ratio_bound():
    outcome, peak, _, _ = _client_call(
        gzip_reply(gzip_bomb(420 * MIB), chunked=True, content_type='application/x-ndjson'),
        _generate)
    assert isinstance(outcome, OllamaReplyTooLarge), outcome
    assert peak < PEAK_BOUND_BYTES


def test_gzip_inside_one_gzip_member_is_only_bytes_and_stays_bounded():
    # The header says one layer; the inner layer is data, never inflated by the client.
    body = gzip_bomb(420 * MIB, layers=2)
    outcome, peak, _, _ = _client_call(gzip_reply(body), _ps)
    assert isinstance(outcome, (OllamaBadReply, OllamaReplyTooLarge)), outcome
    assert peak < PEAK_BOUND_BYTES


@pytest.mark.parametrize('encoding, fragment', [
    ('br', "encoded 'br', which Ollama never sends"),
    ('zstd', "encoded 'zstd'"),
    ('deflate', "encoded 'deflate'"),
    ('gzip, br', 'stacked encodings'),
    ('x-gzip, x-gzip', 'stacked encodings'),
    ('\x1b]0;pwned\x07', 'which Ollama never sends'),
])
def test_other_encodings_are_refused_in_one_inert_line(encoding, fragment):
    body = zlib.compress(json.dumps(PS_REPLY).encode())
    reply = gzip_reply(body, encoding=encoding.encode('latin-1').decode('latin-1'))
    outcome, _, _, _ = _client_call(reply, _ps)
    assert isinstance(outcome, OllamaBadReply), outcome
    message = str(outcome)
    assert fragment in message and '\x1b' not in message and '\x07' not in message
    assert '\n' not in message and len(message) < 300


@pytest.mark.parametrize('body, fragment', [
    (b'\x1f\x8b' + b'\x00' * 40, 'not valid gzip'),
    (gzip.compress(b'{"models": []}')[:-12], 'cut short'),
    (gzip.compress(b'{"models": []}') * 2, 'more than one gzip member'),
])
def test_corrupt_truncated_or_concatenated_gzip_is_a_bad_reply(body, fragment):
    outcome, _, _, _ = _client_call(gzip_reply(body), _ps)
    assert isinstance(outcome, OllamaBadReply) and fragment in str(outcome), outcome


def test_a_compressed_reply_dripping_slowly_ends_at_the_request_deadline():
    padded = dict(PS_REPLY, pad=os.urandom(20000).hex())  # ~20 KB that gzip cannot shrink
    body = gzip.compress(json.dumps(padded).encode())
    reply = gzip_reply(body, chunked=True, piece_bytes=1, delay_s=0.01)
    outcome, _, elapsed, _ = _client_call(reply, lambda client: client.ps(deadline_s=1.0))
    assert isinstance(outcome, OllamaTimeout), outcome
    assert 'deadline' in str(outcome) and elapsed < 11.0


def test_a_compressed_error_reply_gives_its_status_and_a_bounded_text():
    body = gzip.compress(line({'error': '\x1b[31mboom\x1b[0m ' + 'e' * 10 ** 7}))
    outcome, peak, _, _ = _client_call(gzip_reply(body, status=500), _ps)
    assert isinstance(outcome, OllamaHTTPError) and outcome.status == 500
    assert '\x1b' not in str(outcome) and len(str(outcome)) < 400
    assert peak < PEAK_BOUND_BYTES

"""The Ollama client against a hostile server on 127.0.0.1: every reply bounded, none a crash."""

import json
import time

import pytest

from hostile_ollama import (
    GIB, HostileServer, Reply, endless_bytes, endless_tokens, huge_stream, line)
from shadowhound_llm_bench.adapters.bounded_http import ReplyLimits
from shadowhound_llm_bench.adapters.ollama_client import (
    OllamaBadReply, OllamaClient, OllamaError, OllamaHTTPError, OllamaReplyTooLarge,
    OllamaTimeout)

DEADLINE_S = 1.0
# Generous: the machine is shared; what matters is that the call returns at all.
RETURN_WITHIN_S = DEADLINE_S + 10.0


def _stream(pieces, **kw):
    return Reply(pieces=lambda: pieces, **kw)


def _generate(server_reply, *, limits=ReplyLimits(), deadline_s=DEADLINE_S):
    with HostileServer(server_reply) as server:
        with OllamaClient(base_url=server.url, request_timeout_s=deadline_s,
                          limits=limits) as client:
            started = time.monotonic()
            with pytest.raises(OllamaError) as info:
                client.generate_stream('m', 'hi', deadline_s=deadline_s)
            elapsed = time.monotonic() - started
    assert elapsed < RETURN_WITHIN_S
    return info.value


def test_an_endless_stream_ends_at_the_deadline():
    error = _generate(Reply(pieces=endless_tokens))
    assert isinstance(error, OllamaTimeout)
    assert error.capture is not None and error.capture.text.startswith('x')


def test_a_multi_gigabyte_stream_stops_at_the_text_bound_then_the_stream_bound():
    error = _generate(Reply(pieces=lambda: huge_stream(5 * GIB)), deadline_s=30.0)
    assert isinstance(error, OllamaReplyTooLarge)
    assert 'answer longer than 2097152 characters' in str(error)
    wide = ReplyLimits(max_text_chars=10 ** 9, max_stream_bytes=8 * 1024 * 1024)
    error = _generate(Reply(pieces=lambda: huge_stream(5 * GIB)), limits=wide, deadline_s=30.0)
    assert isinstance(error, OllamaReplyTooLarge)
    assert 'stream longer than 8388608 bytes' in str(error)


def test_a_line_that_never_ends_is_cut_at_the_line_bound():
    error = _generate(Reply(pieces=endless_bytes), deadline_s=30.0)
    assert isinstance(error, OllamaReplyTooLarge)
    assert 'stream line longer than 4194304 bytes' in str(error)


def test_a_slow_drip_without_newline_ends_at_the_deadline():
    error = _generate(Reply(pieces=lambda: endless_bytes(b'{'), delay_s=0.05))
    assert isinstance(error, OllamaTimeout)


def test_a_multi_gigabyte_body_claimed_is_refused_before_it_is_read():
    reply = Reply(pieces=lambda: endless_bytes(), content_length=5 * GIB,
                  content_type='application/json')
    with HostileServer(reply) as server, OllamaClient(base_url=server.url) as client:
        with pytest.raises(OllamaReplyTooLarge, match='announces 5368709120 bytes'):
            client.tags()


def test_a_body_streamed_without_end_is_cut_at_the_body_bound():
    reply = Reply(pieces=endless_bytes, content_type='application/json')
    limits = ReplyLimits(max_body_bytes=2 * 1024 * 1024)
    with HostileServer(reply) as server, OllamaClient(base_url=server.url,
                                                      limits=limits) as client:
        with pytest.raises(OllamaReplyTooLarge, match='reply larger than 2097152 bytes'):
            client.ps()


def test_a_body_dripping_slowly_ends_at_the_request_deadline():
    reply = Reply(pieces=lambda: endless_bytes(b' '), delay_s=0.05,
                  content_type='application/json')
    with HostileServer(reply) as server, OllamaClient(base_url=server.url,
                                                      request_timeout_s=DEADLINE_S) as client:
        started = time.monotonic()
        # The bounded reader ("still arriving at its deadline") or the request's own deadline
        # watch ("no complete answer within its ... deadline"), whichever fires first.
        with pytest.raises(OllamaTimeout, match='deadline'):
            client.version()
        assert time.monotonic() - started < RETURN_WITHIN_S


@pytest.mark.parametrize('body, fragment', [
    (b'{"model": "m", "response": "x", "done": fals', 'not JSON'),
    (b'\x1b[2J\x1b]0;pwned\x07' + b'z' * 5000, 'not JSON'),
    (line({'response': 'x', 'done': True, 'eval_count': float('nan')}), 'NaN is not a JSON'),
    (b'{"response": "x", "done": true, "eval_duration": 1e999}\n', 'out of range'),
    (b'{"response": "x", "done": true, "eval_count": ' + b'9' * 5000 + b'}\n', 'not JSON'),
    (b'[' * 100000 + b']' * 100000 + b'\n', 'nested too deeply'),
])
def test_malformed_stream_lines_are_a_bad_reply_with_a_short_inert_message(body, fragment):
    error = _generate(_stream([body, b'\n']))
    assert isinstance(error, OllamaBadReply) and fragment in str(error)
    assert len(str(error)) < 400 and '\x1b' not in str(error) and '\x07' not in str(error)


@pytest.mark.parametrize('field, value', [
    ('eval_count', 10 ** 30), ('eval_count', -5), ('eval_count', 'many'), ('eval_count', True),
    ('eval_duration', -1), ('load_duration', 3.5), ('total_duration', 10 ** 40),
    ('prompt_eval_count', [1]), ('done_reason', 'x' * 1000),
])
def test_absurd_numbers_in_the_final_chunk_are_a_bad_reply_naming_the_field(field, value):
    final = {'response': 'ok', 'done': True, 'done_reason': 'stop', field: value}
    error = _generate(_stream([line(final)]))
    assert isinstance(error, OllamaBadReply) and field in str(error)


@pytest.mark.parametrize('size', [10000, 1000000])
def test_an_error_reply_is_bounded_and_inert(size):
    body = line({'error': '\x1b[31mboom\x1b[0m ' + 'e' * size})
    reply = Reply(pieces=lambda: [body], status=500, content_length=len(body),
                  content_type='application/json')
    with HostileServer(reply) as server, OllamaClient(base_url=server.url) as client:
        with pytest.raises(OllamaHTTPError) as info:
            client.version()
    message = str(info.value)
    assert message.startswith('HTTP 500: ') and '\x1b' not in message and len(message) < 400
    if size == 10000:  # whole JSON within the bound: Ollama's error text, cleaned
        assert message.startswith('HTTP 500: boom eee')


def test_an_error_line_inside_a_stream_is_bounded_and_inert():
    error = _generate(_stream([line({'error': '\r\x1b[2Kfake ok\n' * 10000})]))
    assert 'fake ok' in str(error) and '\x1b' not in str(error) and '\r' not in str(error)
    assert len(str(error)) < 500


@pytest.mark.parametrize('reply, fragment', [
    ({'models': [{'name': 'm', 'size': 10 ** 30}]}, 'size must be whole bytes'),
    ({'models': [{'name': 'm', 'size': -1}]}, 'size must be whole bytes'),
    ({'models': [{'size': 1}]}, 'has no usable name'),
    ({'models': 'all of them'}, "'models' must be a list"),
    ([1, 2], 'must be a JSON object'),
])
def test_model_lists_of_the_wrong_shape_are_a_bad_reply(reply, fragment):
    body = line(reply)
    server_reply = Reply(pieces=lambda: [body], content_length=len(body),
                         content_type='application/json')
    with HostileServer(server_reply) as server, OllamaClient(base_url=server.url) as client:
        with pytest.raises(OllamaBadReply, match=fragment):
            client.ps()


def test_a_chat_message_that_is_not_an_object_is_no_crash():
    final = line({'message': 'not an object', 'done': True, 'done_reason': 'stop'})
    with HostileServer(_stream([final])) as server, OllamaClient(base_url=server.url) as client:
        with pytest.raises(OllamaError, match='no text generated'):
            client.chat_stream('m', [{'role': 'user', 'content': 'hi'}], deadline_s=DEADLINE_S)


def test_an_error_body_dripping_slowly_ends_at_the_request_deadline():
    reply = Reply(pieces=lambda: endless_bytes(b'{"error": "y"}\n'), delay_s=0.02, status=500,
                  content_type='application/json')
    with HostileServer(reply) as server, OllamaClient(base_url=server.url,
                                                      request_timeout_s=DEADLINE_S) as client:
        started = time.monotonic()
        with pytest.raises(OllamaHTTPError, match='HTTP 500'):
            client.ps()
        assert time.monotonic() - started < RETURN_WITHIN_S
    error = _generate(reply)
    # The error reply, or the request's deadline when it fires first: never a hang.
    assert isinstance(error, (OllamaHTTPError, OllamaTimeout))


@pytest.mark.parametrize('reply, fragment', [
    ({'details': ['x'], 'model_info': {}}, "'details' must be a JSON object"),
    ({'model_info': 'all'}, "'model_info' must be a JSON object"),
    ({'model_info': {'general.architecture': 'llama', 'llama.block_count': 10 ** 400}},
     'beyond'),
    ({'model_info': {'general.architecture': 'llama', 'llama.block_count': [1, 'a']}},
     'mixes types'),
    ({'model_info': {'llama.block_count': {'nested': 1}}}, 'wrong type'),
])
def test_show_replies_that_would_break_the_footprint_estimate_are_a_bad_reply(reply, fragment):
    body = json.dumps(reply).encode()
    server_reply = Reply(pieces=lambda: [body], content_length=len(body),
                         content_type='application/json')
    with HostileServer(server_reply) as server, OllamaClient(base_url=server.url) as client:
        with pytest.raises(OllamaBadReply, match=fragment):
            client.show('m')

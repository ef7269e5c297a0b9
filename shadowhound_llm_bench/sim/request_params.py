"""Validation of generate/chat request bodies, with Ollama's status codes and error wording."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional

from .quantities import QuantityError, parse_go_duration


class BadRequest(ValueError):
    """A request Ollama would answer with HTTP 400."""

    status = 400


class NoModelNamed(BadRequest):
    """Generate or chat without a model: Ollama parses '' as a name and finds no such model."""

    status = 404


@dataclass(frozen=True)
class GenerationParams:
    """What a generate or chat request asks for."""

    model: str
    prompt: str
    stream: bool
    keep_alive_s: Optional[float]  # None = server default
    num_ctx: Optional[int]
    num_predict: Optional[int]  # None or negative = until done
    seed: int
    temperature: Optional[float]
    think: bool
    empty: bool  # no prompt / no messages: load or unload only


_GO_TYPES = {bool: 'bool', int: 'number', float: 'number', str: 'string', list: 'array',
             dict: 'object', type(None): 'null'}


def _type_error(value: Any, field: str, struct: str, go_type: str) -> BadRequest:
    return BadRequest(f'json: cannot unmarshal {_GO_TYPES.get(type(value), "value")} into Go '
                      f'struct field {struct}.{field} of type {go_type}')


def parse_keep_alive(value: Any) -> Optional[float]:
    """keep_alive as seconds: a number of seconds or a Go duration; negative means forever."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise BadRequest('json: cannot unmarshal bool into Go struct field .keep_alive of type '
                         'api.Duration')
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return parse_go_duration(value)
        except QuantityError as exc:
            raise BadRequest(str(exc)) from exc
    raise BadRequest(f'json: cannot unmarshal {_GO_TYPES.get(type(value), "value")} into Go '
                     'struct field .keep_alive of type api.Duration')


def _int_option(options: Mapping[str, Any], key: str) -> Optional[int]:
    value = options.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f'option "{key}" must be of type integer')
    return int(value)


def parse_generation(body: Mapping[str, Any], *, chat: bool) -> GenerationParams:
    """Return the validated parameters of POST /api/generate or /api/chat."""
    struct = 'ChatRequest' if chat else 'GenerateRequest'
    model = body.get('model', body.get('name'))
    if model is not None and not isinstance(model, str):
        raise _type_error(model, 'model', struct, 'string')
    if not model:
        # routes.go GenerateHandler / ChatHandler (v0.12.6, v0.32.15): 404, not 400.
        raise NoModelNamed("model '' not found")
    options = body.get('options') or {}
    if not isinstance(options, Mapping):
        raise _type_error(options, 'options', struct, 'map[string]interface {}')
    temperature = options.get('temperature')
    if temperature is not None and (isinstance(temperature, bool)
                                    or not isinstance(temperature, (int, float))):
        raise BadRequest('option "temperature" must be of type number')
    num_ctx = _int_option(options, 'num_ctx')
    if num_ctx is not None and num_ctx <= 0:
        num_ctx = None
    stream = body.get('stream', True)
    if not isinstance(stream, bool) and stream is not None:
        raise _type_error(stream, 'stream', struct, 'bool')
    think = body.get('think', False)
    if chat:
        messages = body.get('messages') or []
        if not isinstance(messages, list):
            raise _type_error(messages, 'messages', struct, '[]api.Message')
        texts: List[str] = []
        for message in messages:
            if not isinstance(message, dict):
                raise _type_error(message, 'messages', struct, 'api.Message')
            content = message.get('content', '')
            if not isinstance(content, str):
                raise _type_error(content, 'content', 'Message', 'string')
            texts.append(content)
        prompt = '\n'.join(texts)
        empty = not messages
    else:
        prompt = body.get('prompt', '')
        if prompt is None:
            prompt = ''
        if not isinstance(prompt, str):
            raise _type_error(prompt, 'prompt', struct, 'string')
        system = body.get('system') or ''
        empty = prompt == ''
        prompt = (str(system) + '\n' + prompt) if system and prompt else prompt
    return GenerationParams(
        model=model, prompt=prompt, stream=stream is not False,
        keep_alive_s=parse_keep_alive(body.get('keep_alive')), num_ctx=num_ctx,
        num_predict=_int_option(options, 'num_predict'),
        seed=_int_option(options, 'seed') or 0,
        temperature=float(temperature) if temperature is not None else None,
        think=bool(think) and think not in ('false', 'none'), empty=empty)


def model_field(body: Dict[str, Any]) -> str:
    """Return the model named by show/pull/delete bodies ("model", or the older "name")."""
    model = body.get('model', body.get('name'))
    if model is not None and not isinstance(model, str):
        raise BadRequest('json: cannot unmarshal number into Go struct field .model of type '
                         'string')
    if not model:
        raise BadRequest('model is required')
    return model


def not_an_object_error(body: Any) -> str:
    """Return Go's message for a JSON body that is not an object."""
    kind = {list: 'array', str: 'string', int: 'number', float: 'number', bool: 'bool'}.get(
        type(body), 'value')
    return 'json: cannot unmarshal ' + kind + ' into Go value of type api.Request'


def go_json_error(raw: bytes, exc: Exception) -> str:
    """Return a Go encoding/json style message for a body that is not JSON."""
    text = raw.decode('utf-8', 'replace').lstrip()
    if isinstance(exc, json.JSONDecodeError) and exc.pos >= len(raw.decode('utf-8', 'replace')):
        return 'unexpected EOF'
    first = text[:1]
    if first and first not in '{["-0123456789tfn':
        return f"invalid character '{first}' looking for beginning of value"
    return f'invalid character in JSON: {exc}'

"""The chunks and the final reply of a generate or chat request, in the shapes Ollama sends."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Sequence, Tuple

from . import api_shapes
from .catalog import ModelSpec


def stream_chunk(spec: ModelSpec, chat: bool, kind: str, piece: str) -> Dict[str, Any]:
    """Return one streamed chunk: a piece of the answer (kind content) or of the thinking."""
    chunk: Dict[str, Any] = {'model': spec.name, 'created_at': api_shapes.rfc3339()}
    if chat:
        message = {'role': 'assistant', 'content': piece if kind == 'content' else ''}
        if kind == 'thinking':
            message['thinking'] = piece
        chunk['message'] = message
    else:
        chunk['response'] = piece if kind == 'content' else ''
        if kind == 'thinking':
            chunk['thinking'] = piece
    chunk['done'] = False
    return chunk


def final_only(spec: ModelSpec, chat: bool, reason: str,
               timings: Mapping[str, int]) -> Dict[str, Any]:
    """Return the reply to a load or an unload: a final object with no text."""
    final: Dict[str, Any] = {'model': spec.name, 'created_at': api_shapes.rfc3339()}
    final.update({'message': {'role': 'assistant', 'content': ''}} if chat
                 else {'response': ''})
    final.update({'done': True, 'done_reason': reason}, **timings)
    return final


def final_reply(spec: ModelSpec, chat: bool, pieces: Sequence[Tuple[str, str]], *,
                stream: bool, done_reason: str, timings: Mapping[str, int]) -> Dict[str, Any]:
    """
    Return the last object of a generation: the whole text unless streamed, and the timings.

    An empty done_reason is the real server's silent end: no durations and `"done": false`.
    """
    final: Dict[str, Any] = {'model': spec.name, 'created_at': api_shapes.rfc3339()}
    if chat:
        message: Dict[str, Any] = {'role': 'assistant', 'content': ''}
        if not stream:
            message['content'] = ''.join(p for k, p in pieces if k == 'content')
            thinking = ''.join(p for k, p in pieces if k == 'thinking')
            if thinking:
                message['thinking'] = thinking
        final['message'] = message
    else:
        final['response'] = '' if stream else ''.join(p for k, p in pieces if k == 'content')
        thinking = ''.join(p for k, p in pieces if k == 'thinking')
        if thinking and not stream:
            final['thinking'] = thinking
    final.update({'done': True, 'done_reason': done_reason})
    final.update(timings)
    if not done_reason:
        final = {k: v for k, v in final.items() if k in ('model', 'created_at', 'response',
                                                         'message')} | {'done': False}
    return final

"""
Fuzz targets for encoded replies: gzip (valid, stacked, truncated, corrupt, bombs) and chunking.

Each example wraps a hostile reply of fuzz_targets in a Content-Encoding and a body encoding
drawn independently (a header may lie about its body); the client must refuse or read it within
its deadline and with little memory (Python allocations traced during the call).
"""

import gzip
import tracemalloc
import zlib

from hypothesis import strategies as st

from fuzz_targets import Outcome, check_client, hostile_replies
from hostile_ollama import Reply, gzip_bomb

MIB = 1024 * 1024
# Python memory the client may allocate for one reply: a few inflate steps and a 4 MiB body.
MEMORY_LIMIT_BYTES = 40 * MIB
# Decoded sizes of the bombs (each past the 4 MiB body bound; small to build in the suite).
BOMB_MIB = (8, 32)
HEADERS = ('gzip', 'x-gzip', 'GZIP', ' gzip ', 'gzip, gzip', 'gzip,identity', 'identity',
           'deflate', 'br', 'zstd', 'compress', 'gzip, br', '', 'g\x7fzip', 'gzip;q=1')
BODIES = ('plain', 'gzip', 'gzip twice', 'deflate', 'truncated gzip', 'corrupt gzip',
          'two members', 'bomb', 'stacked bomb')


def _encoded(body: bytes, how: str, bomb_mib: int) -> bytes:
    if how == 'gzip':
        return gzip.compress(body)
    if how == 'gzip twice':
        return gzip.compress(gzip.compress(body))
    if how == 'deflate':
        return zlib.compress(body)
    if how == 'truncated gzip':
        data = gzip.compress(body)
        return data[:max(1, len(data) // 2)]
    if how == 'corrupt gzip':
        data = bytearray(gzip.compress(body))
        data[len(data) // 2] ^= 0xFF
        return bytes(data)
    if how == 'two members':
        return gzip.compress(body) + gzip.compress(body)
    if how == 'bomb':
        return gzip_bomb(bomb_mib * MIB)
    if how == 'stacked bomb':
        return gzip_bomb(bomb_mib * MIB, layers=2)
    return body


@st.composite
def encoded_replies(draw):
    """One reply of fuzz_targets, its body encoded and its Content-Encoding chosen apart."""
    endpoint, reply = draw(hostile_replies())
    pieces = reply.pieces()
    if not isinstance(pieces, list):  # an endless body: keep its first pieces only
        pieces = [next(iter(pieces), b'')]
    how = draw(st.sampled_from(BODIES))
    body = _encoded(b''.join(pieces), how, draw(st.sampled_from(BOMB_MIB)))
    header = draw(st.sampled_from(HEADERS))
    size = draw(st.sampled_from([0, 1, 7, 1024, 65536]))
    chunks = [body[i:i + size] for i in range(0, len(body), size)] if size else [body]
    chunked = draw(st.booleans())
    headers = [('Content-Encoding', header)] if header else []
    return endpoint, Reply(pieces=lambda: chunks, status=reply.status, headers=headers,
                           content_length=None if chunked else len(body),
                           delay_s=draw(st.sampled_from([0.0, 0.0, 0.001])))


def check_encoded(server, example) -> Outcome:
    """Serve the example and call the client; memory over MEMORY_LIMIT_BYTES is a defect."""
    endpoint, reply = example
    server.default = reply
    tracemalloc.start()
    try:
        outcome = check_client(server.url, endpoint)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if not outcome.defect and peak > MEMORY_LIMIT_BYTES:
        return Outcome('memory', f'{endpoint}: {peak / MIB:.0f} MiB allocated')
    return outcome

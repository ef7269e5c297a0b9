"""Model blob files on disk, of each model's scaled size, for runners to read through the cache."""

from __future__ import annotations

import os
import re

from .catalog import ModelSpec


def blob_path(blobs_dir: str, spec: ModelSpec, size_bytes: int) -> str:
    """Return the blob file of a model at a size (the name carries both)."""
    safe = re.sub(r'[^A-Za-z0-9_.-]', '_', spec.name)
    return os.path.join(blobs_dir, f'{safe}-{size_bytes}.gguf')


def ensure_blob(blobs_dir: str, spec: ModelSpec, size_bytes: int) -> str:
    """Create the blob (allocated on disk, not cached) unless it exists; return its path."""
    path = blob_path(blobs_dir, spec, size_bytes)
    if os.path.exists(path) and os.path.getsize(path) == size_bytes:
        return path
    os.makedirs(blobs_dir, exist_ok=True)
    temporary = f'{path}.{os.getpid()}.tmp'
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        if size_bytes > 0:
            os.posix_fallocate(fd, 0, size_bytes)
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    return path

"""
The real Ollama server for tests and benchmarks: unpacked, started and given models here.

Nothing of the product imports this package. It finds the upstream releases (the archives in
`../shared/ollama` beside the repository, `SHB_OLLAMA_DIST`, or an `ollama` on PATH), unpacks
them once into a cache, starts a server as a local process or inside a Docker container with its
own state folder, and writes synthetic llama-architecture GGUF models of chosen shapes once
(F16, then quantized copies made by the server's own `ollama create --quantize`).
"""

from .dist import OllamaDist, available_dists, find_dist
from .models import ModelShape, STANDARD_SHAPES, ensure_models
from .server import RealOllama, start_container_server, start_local_server

__all__ = ['OllamaDist', 'available_dists', 'find_dist', 'ModelShape', 'STANDARD_SHAPES',
           'ensure_models', 'RealOllama', 'start_container_server', 'start_local_server']

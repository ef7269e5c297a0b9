"""Adapters to the outside world: Ollama over httpx, Docker over the docker SDK, processes."""

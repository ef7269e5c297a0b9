"""An Ollama-API simulator whose models really hold memory (local process or Docker container)."""

"""The benchmark run: the engine that drives Ollama under the memory guard."""

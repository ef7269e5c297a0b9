"""The real Ollama releases found for the real tier, and the one skip text when there is none."""

from shadowhound_llm_bench import real_ollama

try:
    REAL_OLLAMA_VERSIONS = [d.version for d in real_ollama.available_dists()]
except (OSError, RuntimeError):  # an archive that cannot be unpacked is a loud skip too
    REAL_OLLAMA_VERSIONS = []
NO_REAL_OLLAMA = ("no real Ollama: neither ../shared/ollama (or SHB_OLLAMA_DIST) nor an `ollama`"
                  " on PATH")

"""
What Ollama's replies say.

The shapes and sane ranges of its replies, a stream and how it ended, request metrics, what a
failed load's text means, a model's identity and GGUF layout, the size the server reports per
release, which processes are its runners, and which server a kept value was measured on.
"""

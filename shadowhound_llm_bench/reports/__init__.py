"""Report writers: the crash-proof JSONL log and the JSON, CSV, Markdown and PNG built from it."""

"""The `inspect` command line (also `llm-inspect` and `python -m inspector`): one module per command group."""

from inspector.cli.app import app, main

__all__ = ["app", "main"]

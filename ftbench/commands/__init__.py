"""Subcommands of the `ftbench` CLI, one module per area, each with `register(subparsers)`.

Handlers take `(args, ws)` and return an exit code. They import heavy libraries (torch, transformers)
inside the handler, never at module level, so `ftbench --version` and the TUI start fast.
"""

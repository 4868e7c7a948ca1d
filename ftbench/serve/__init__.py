"""`ftbench serve`: an OpenAI-compatible HTTP endpoint for a base model, its adapters and GGUF exports.

Like chat, this package may import core, catalog and chat, never tui. Only `connect` and `safety` are light;
the rest (Starlette, uvicorn, the engines) is imported inside the serve job or `--foreground` process.
"""

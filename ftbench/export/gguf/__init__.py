"""Our own HF -> GGUF converter (on the `gguf` package): per-architecture rules, tokenizer export, streaming writer."""

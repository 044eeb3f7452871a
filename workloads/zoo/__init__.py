"""Model builders. Each module exports `MODELS: tuple[ModelSpec, ...]`."""

"""Shared building blocks of the zoo's models (UNets, VAEs, text encoders, DiT blocks, ...):
not models themselves, so the registry does not look here."""

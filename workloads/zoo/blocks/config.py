"""Reading model configs (diffusers / transformers `config.json` dicts) strictly.

Builders take the reference library's own config keys. Keys that only matter numerically
(epsilons, dropout, `sample_size`, upcasting) are ignored; keys that change the network's
structure must hold a value the builder models, otherwise the user gets an `InputError`
instead of a silently different graph.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ...errors import InputError, short_repr, short_str
from ...inputs import read_text

CONFIG_INT_MAX = 1 << 24  # largest integer a structural config key may hold (layers, widths, vocab)
CONFIG_NUMBER_MAX = 1e9  # magnitude of a numeric config value (NaN and inf are refused)


def load_json_config(path: str) -> dict[str, Any]:
    """Load a JSON object from `path`; a missing file or bad JSON raises `InputError` naming it."""
    text = read_text(Path(path).expanduser(), "config file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"cannot read config as JSON: {short_str(str(exc), 200)}", where=str(path)) from None
    except (RecursionError, ValueError) as exc:  # nesting too deep, an integer of thousands of digits
        raise InputError(f"cannot read config as JSON: {type(exc).__name__}", where=str(path)) from None
    if not isinstance(data, dict):
        raise InputError(f"config must be a JSON object, got {type(data).__name__}", where=str(path))
    return data


def option_config(
    path: Any, published: Mapping[str, Any], *, what: str, file_what: str, file: str = "config.json"
) -> tuple[Mapping[str, Any], str]:
    """The config a model's `config` option selects, and the name its errors should use.

    "" (the option's default) selects the `published` config, named `what`; any other string
    is a JSON file loaded from `path`, named `file_what`. `file` says in the error for a
    non-string option what the path should point to (e.g. "unet config.json").
    """
    if not isinstance(path, str):
        raise InputError(f"option 'config' expects a path to a {file}, got {short_repr(path)}")
    if not path:
        return published, what
    return load_json_config(path), file_what


class ConfigReader:
    """Typed, checked access to one config dict, naming the model in every error."""

    def __init__(self, config: Mapping[str, Any], what: str) -> None:
        self.config = config
        self.what = what

    def get(self, key: str, default: Any) -> Any:
        """The value of `key`, or `default` when absent or null."""
        value = self.config.get(key, default)
        return default if value is None else value

    def positive(self, key: str, default: int | None = None) -> int:
        """A positive integer; absent or null gives `default` (an error when that is None)."""
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= CONFIG_INT_MAX:
            raise self.error(key, value, f"a positive integer of at most {CONFIG_INT_MAX}")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not abs(value) <= CONFIG_NUMBER_MAX:
            raise self.error(key, value, f"a finite number of magnitude at most {CONFIG_NUMBER_MAX:g}")
        return float(value)

    def names(self, key: str, default: Sequence[str]) -> tuple[str, ...]:
        """A list of strings (block type names)."""
        value = self.get(key, default)
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise self.error(key, value, "a list of names")
        return tuple(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, value, "true or false")
        return value

    def only(self, key: str, supported: Sequence[Any], default: Any = None) -> Any:
        """`key`'s value, which must be one of `supported` (the structures the builder models)."""
        value = self.config.get(key, default)
        if value not in supported:
            shown = ", ".join(repr(s) for s in supported)
            raise InputError(f"{self.what}: config '{key}' = {short_repr(value)} is not supported (supported: {shown})")
        return value

    def per_block(self, key: str, n: int, default: Any, kind: type = int) -> tuple[Any, ...]:
        """A per-block value: a scalar repeated `n` times, or a list of exactly `n` entries."""
        value = self.get(key, default)
        values = list(value) if isinstance(value, (list, tuple)) else [value] * n
        if len(values) != n:
            raise InputError(f"{self.what}: config '{key}' has {len(values)} entries, expected {n} (one per block)")
        for v in values:
            if not isinstance(v, kind) or (kind is not bool and isinstance(v, bool)):
                raise self.error(key, value, f"{kind.__name__} or a list of {kind.__name__}")
            if kind in (int, float) and not abs(v) <= CONFIG_INT_MAX:
                raise self.error(key, value, f"values of magnitude at most {CONFIG_INT_MAX}")
        return tuple(values)

    def error(self, key: str, value: Any, expected: str) -> InputError:
        return InputError(f"{self.what}: config '{key}' must be {expected}, got {short_repr(value)}")

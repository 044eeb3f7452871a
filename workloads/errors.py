"""User-facing input errors, shared by workloads and simulator.

Anything a user can get wrong (a YAML key, a model name, a size) raises `InputError`; the
CLI turns it into one line on stderr and exit code 2, never a traceback.

Messages quote user input only through `short_repr` (at most `QUOTE_LIMIT` characters, computed
without building the full repr of a huge or deeply nested value), and `InputError` itself keeps
every message on one line of at most `MESSAGE_LIMIT` characters, whatever its parts contain.
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable
from typing import Any

QUOTE_LIMIT = 80  # characters of a quoted user value
WHERE_LIMIT = 200  # characters of a location (file path and key)
MESSAGE_LIMIT = 2000  # characters of a whole message
_ELLIPSIS = "..."


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, marked with '...' when cut."""
    return text if len(text) <= limit else text[: max(limit - len(_ELLIPSIS), 0)] + _ELLIPSIS


def one_line(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """`text` with control characters escaped (no newline survives), truncated to `limit`."""
    text = truncate(text, 4 * limit)  # bound the escaping work
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        text = "".join(c if 32 <= ord(c) != 127 else repr(c)[1:-1] for c in text)
    return truncate(text, limit)


class _ShortRepr(reprlib.Repr):
    """reprlib with small limits; never formats more than a few dozen elements or digits."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxdict, self.maxlist, self.maxtuple = 3, 4, 6, 6
        self.maxset = self.maxfrozenset = self.maxdeque = self.maxarray = 6
        self.maxstring = self.maxother = QUOTE_LIMIT

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 128:  # str() of a huge int is slow, and refused past 4300 digits
            return f"<{'-' if x < 0 else ''}integer of about {int(x.bit_length() * 0.30103) + 1} digits>"
        return truncate(repr(x), QUOTE_LIMIT)

    def repr_str(self, x: str, level: int) -> str:
        return repr(x) if len(x) <= QUOTE_LIMIT else repr(x[:QUOTE_LIMIT]) + _ELLIPSIS

    def repr_instance(self, x: Any, level: int) -> str:
        try:
            return truncate(repr(x), self.maxother)
        except Exception:  # a user object whose repr fails must not hide the real error
            return f"<{type(x).__name__} object>"


_SHORT = _ShortRepr()


def short_repr(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """A repr of `value` of at most `limit` characters, on one line, cheap for any size."""
    return one_line(_SHORT.repr(value), limit)


def short_str(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """`value` as text (no quotes for a string) of at most `limit` characters, on one line."""
    return one_line(value if isinstance(value, str) else _SHORT.repr(value), limit)


class InputError(ValueError):
    """Bad user input: a file, a key, or a value that cannot be used as given."""

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.where = one_line(where, WHERE_LIMIT) if where else where
        sep = " " if self.where and self.where.endswith(":") else ": "  # 'file.yaml:' is a location already
        super().__init__(one_line(f"{self.where}{sep}{message}" if self.where else message))


def suggest(word: object, choices: Iterable[object]) -> str:
    """Return ' (did you mean X?)' for the closest choice, or '' when none is close."""
    text = str(word) if isinstance(word, str) else short_str(word)
    if len(text) > 4 * QUOTE_LIMIT:  # nothing that long is close to a name; spare difflib
        return ""
    match = difflib.get_close_matches(text, [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def unknown(what: str, word: object, choices: Iterable[object], *, where: str | None = None) -> InputError:
    """Build the error for an unknown name, listing the valid ones and the closest match."""
    choices = sorted(str(c) for c in choices)
    return InputError(
        f"unknown {what} '{short_str(word)}'{suggest(word, choices)}; expected one of: {', '.join(choices)}",
        where=where,
    )

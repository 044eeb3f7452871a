"""User-facing input errors, shared by workloads and simulator.

Anything a user can get wrong (a YAML key, a model name, a size) raises `InputError`; the
CLI turns it into one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class InputError(ValueError):
    """Bad user input: a file, a key, or a value that cannot be used as given."""

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


def suggest(word: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean X?)' for the closest choice, or '' when none is close."""
    match = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def unknown(what: str, word: str, choices: Iterable[str], *, where: str | None = None) -> InputError:
    """Build the error for an unknown name, listing the valid ones and the closest match."""
    choices = sorted(str(c) for c in choices)
    return InputError(
        f"unknown {what} '{word}'{suggest(word, choices)}; expected one of: {', '.join(choices)}",
        where=where,
    )

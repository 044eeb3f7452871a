"""Reading user files with bounds: at most `FILE_MAX_BYTES`, UTF-8 text, no NUL bytes.

Shared by the YAML loaders (`sim.arch.schema`), model config files and topology CSVs, so a
folder, `/dev/zero`, a binary or a UTF-16 file is one clear `InputError` naming the file.
"""

from __future__ import annotations

from pathlib import Path

from .errors import InputError

FILE_MAX_BYTES = 10 * 1024 * 1024  # a file larger than this is refused without reading it all
NAME_MAX = 255  # bytes of one path component on common file systems


def is_file(path: str | Path) -> bool:
    """`Path.is_file` that answers False, instead of raising, for a name too long or with a NUL."""
    try:
        return Path(path).is_file()
    except (OSError, ValueError):
        return False


def check_path_text(text: str, what: str, where: str | None = None) -> str:
    """`text` if no component of it is longer than `NAME_MAX` bytes (no such file can exist)."""
    if any(len(part.encode("utf-8", "surrogatepass")) > NAME_MAX for part in text.split("/")):
        raise InputError(f"{what}: a path component is longer than {NAME_MAX} bytes", where=where)
    return text


def read_text(path: str | Path, what: str = "file") -> str:
    """The UTF-8 text of `path` (at most `FILE_MAX_BYTES`); clear errors for anything else."""
    where = str(path)
    try:
        with open(path, "rb") as stream:
            data = stream.read(FILE_MAX_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"{what} not found", where=where) from None
    except IsADirectoryError:
        raise InputError(f"is a folder, expected a {what}", where=where) from None
    except OSError as exc:
        raise InputError(f"cannot read {what} ({exc.strerror or type(exc).__name__})", where=where) from None
    except ValueError as exc:  # a NUL byte in the path
        raise InputError(f"invalid path ({exc})", where=where) from None
    if len(data) > FILE_MAX_BYTES:
        raise InputError(f"{what} is larger than {FILE_MAX_BYTES // 2**20} MB", where=where)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{what} is UTF-16 text; save it as UTF-8", where=where)
    if b"\0" in data:
        raise InputError(f"{what} contains NUL bytes (binary, or UTF-16/32 text?); save it as UTF-8", where=where)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})", where=where) from None

"""The small TOML files users write (variants, prices): arrays of tables, checked strictly.

Every problem becomes the caller's own error type with a one-line message naming the file
and the entry, which the CLI prints as is.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any


def read_text(path: Path, what: str, error: type[ValueError]) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{what} file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read {what} file {path}: {exc}") from None


def tables(text: str, source: str, table: str, allowed: set[str],
           error: type[ValueError]) -> list[tuple[str, dict[str, Any]]]:
    """[(where, entry)] for each [[table]] in the text; anything else is an `error`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{source}: not valid TOML ({exc})") from None
    entries = data.get(table)
    if not isinstance(entries, list) or not entries:
        raise error(f"{source}: expected one or more [[{table}]] tables")
    out = []
    for i, e in enumerate(entries, start=1):
        where = f"{source}: {table} #{i}"
        if not isinstance(e, dict):
            raise error(f"{where}: not a table")
        unknown = set(e) - allowed
        if unknown:
            raise error(f"{where}: unknown keys {sorted(unknown)}")
        out.append((where, e))
    return out

"""The small TOML files users write (variants, prices): arrays of tables, checked strictly.

Every problem becomes the caller's own error type with a one-line message naming the file
and the entry, which the CLI prints as is.
"""

from __future__ import annotations

import re
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


def header_lines(text: str, table: str) -> list[int]:
    """The 1-based line of each ``[[table]]`` header, in order (tomllib keeps no positions)."""
    pat = re.compile(rf"^\s*\[\[\s*{re.escape(table)}\s*\]\]")
    return [i for i, line in enumerate(text.splitlines(), start=1) if pat.match(line)]


def key_line(text: str, start: int, key: str) -> int:
    """The line of ``key = ...`` (or ``[table.key]``) in the table whose header is on line
    ``start``; the header's own line when the key is not on a line of its own."""
    lines = text.splitlines()
    pat = re.compile(rf"^\s*{re.escape(key)}\s*=|^\s*\[\s*\w+\.{re.escape(key)}\s*\]")
    for i in range(start, len(lines)):  # lines[start] is the line after the header
        if lines[i].lstrip().startswith("[["):
            break
        if pat.match(lines[i]):
            return i + 1
    return start


def tables(text: str, source: str, table: str, allowed: set[str],
           error: type[ValueError]) -> list[tuple[str, dict[str, Any]]]:
    """[(where, entry)] for each [[table]] in the text, ``where`` being "file:line: table
    #i"; anything else is an `error` naming the file and, where TOML says, the line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"at line (\d+)", str(exc))
        at = f"{source}:{m.group(1)}" if m else source
        raise error(f"{at}: not valid TOML ({exc})") from None
    entries = data.get(table)
    if not isinstance(entries, list) or not entries:
        raise error(f"{source}: expected one or more [[{table}]] tables")
    starts = header_lines(text, table)
    out = []
    for i, e in enumerate(entries, start=1):
        line = starts[i - 1] if len(starts) == len(entries) else None
        where = f"{source}:{line}: {table} #{i}" if line else f"{source}: {table} #{i}"
        if not isinstance(e, dict):
            raise error(f"{where}: not a table")
        unknown = set(e) - allowed
        if unknown:
            raise error(f"{where}: unknown keys {sorted(unknown)}")
        out.append((where, e))
    return out

"""Writing a file so that a reader never sees half of it. Pure standard library."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to a sibling temporary file, fsync it, then rename it over ``path``:
    a crash leaves the old file or the new one, never a torn one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name of this writer's own: two processes (Slurm tasks on one machine) may write the
    # same file at once, and one must not rename the other's half-written file away.
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{os.urandom(3).hex()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def write_json_atomic(path: Path, data: Any, indent: int | None = None) -> Path:
    return write_atomic(path, json.dumps(data, indent=indent, default=str) + "\n")

"""Reading results: JSON Lines files and machine.json records into one pandas DataFrame.

Each resolved file is read once, and a row that repeats a run already read (the same
machine_id, run_id, cell_id and repeat) is dropped with one warning. Reference bundles are
left out unless asked for.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cnnbench.core.schema import FIELDS, REQUIRED, iter_rows, reference_root, result_files

# Row fields that repeat across the rows of a sweep (dicts and lists of strings).
_SHARED = ("build", "env", "options", "threads_set", "kernels", "busy", "flags")


def _canonical_of() -> Callable[[Any], bytes | None]:
    """The function that gives a dict or list one byte string per value (sorted keys):
    orjson's where it is installed, else the standard library's."""
    try:
        import orjson
    except ImportError:
        return _canonical_json

    def canonical(value: Any) -> bytes | None:
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            return None

    return canonical


def _canonical_json(value: Any) -> bytes | None:
    try:
        return json.dumps(value, sort_keys=True).encode()
    except (TypeError, ValueError):
        return None


# How a reference bundle's machine is named wherever it appears (tables, charts, the header):
# its rows are never taken for the user's own machine, even under the same machine id.
REFERENCE_LABEL = "{} (reference)"


def _machine_record(mfile: Path, reference: bool, problems: list[str]) -> dict[str, Any] | None:
    try:
        rec = json.loads(mfile.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        problems.append(f"{mfile}: unreadable machine record ({exc})")
        return None
    if not isinstance(rec, dict):
        return None
    if reference:
        rec = {**rec, "machine_id": REFERENCE_LABEL.format(rec.get("machine_id")),
               "reference": str(mfile.parent)}
    return rec


def reference_notes(left_out: dict[Path, int], read: dict[Path, set[str]]) -> list[str]:
    """A line per reference bundle read (its machines' labels) or left out (its files)."""
    notes = [f"{', '.join(sorted(labels))}: reference results read from {root} (measured on "
             "another machine or at another time, and kept to compare with; not this "
             "machine's own run)" for root, labels in read.items()]
    notes += [f"left out the reference results in {root} ({n} file{'s' if n > 1 else ''}): "
              "a report is about your own results; add --with-reference, or name the folder, "
              "to compare with them" for root, n in left_out.items()]
    return notes


# Text fields with few distinct values: one str object per value instead of one per row
# (orjson makes a new one every time), as a category would, but still plain strings.
_LABELS = tuple(f.name for f in FIELDS if f.type.startswith("str")
                and f.name not in ("cell_id", "started_at", "error"))


def _rounds(value: Any) -> Any:
    """A row's ``samples_s`` as a float64 array: 80 rounds cost 0.7 KB instead of a list's
    2.6 KB of float objects, and every reader wants an array. A null round (a NaN written by
    ``schema.clean``) becomes NaN; anything that is no list of numbers stays as it was."""
    if not isinstance(value, list):
        return value
    try:
        arr = np.array(value, dtype=float)
    except (TypeError, ValueError):
        return value
    arr.flags.writeable = False  # shared by every reader, as the list was
    return arr


class _Columns:
    """Rows become columns 5,000 at a time: parsed dicts are 5x the memory of columns."""

    CHUNK = 5_000

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.chunks: list[pd.DataFrame] = []
        # One object for equal build facts, environments...: 100,000 rows of one sweep hold
        # a handful of distinct ones, and a dict per row would be most of the memory.
        self.shared: dict[bytes, Any] = {}
        self.labels: dict[str, str] = {}
        self.empty: dict[tuple[str, type], Any] = {}
        self.canonical = _canonical_of()

    def add(self, row: dict[str, Any], reference: bool) -> None:
        """Keep ``row``; a reference bundle's row has its machine id marked (REFERENCE_LABEL)."""
        shared, canonical, empty = self.shared, self.canonical, self.empty
        for col in _SHARED:
            v = row.get(col)
            if not v:  # most rows' options, kernels and busy are empty: one object each
                row[col] = empty.setdefault((col, type(v)), v)
                continue
            k = canonical(v)
            if k is not None:
                row[col] = shared.setdefault(k, v)
        if reference:
            row["machine_id"] = REFERENCE_LABEL.format(row.get("machine_id"))
        labels = self.labels
        for col in _LABELS:
            v = row[col]
            if type(v) is str:
                row[col] = labels.setdefault(v, v)
        row["samples_s"] = _rounds(row["samples_s"])
        self.rows.append(row)
        if len(self.rows) >= self.CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.chunks.append(pd.DataFrame(self.rows, columns=list(REQUIRED)))
            self.rows.clear()

    def frame(self) -> pd.DataFrame:
        self.flush()
        if not self.chunks:
            return pd.DataFrame(columns=list(REQUIRED))
        if len(self.chunks) == 1:
            return self.chunks.pop()
        out = pd.concat(self.chunks, ignore_index=True)
        self.chunks.clear()
        return out


def load_results(paths: list[Path], *, with_reference: bool = False,
                 notes: list[str] | None = None,
                 ) -> tuple[pd.DataFrame, list[str], dict[str, dict[str, Any]]]:
    """(all rows as a DataFrame, problems met while reading, machine records by id).

    Each run of a cell is one row: a file named twice is read once, and a row whose
    (machine_id, run_id, cell_id, repeat) was already read (a copied run file) is dropped,
    each said once in the problems. Reference bundles come in as ``schema.result_files``
    says, their machine ids marked with REFERENCE_LABEL; ``notes`` gets a line per bundle
    read or left out. ``samples_s`` holds float64 arrays (``_rounds``), the other fields
    what the JSON holds."""
    problems: list[str] = []
    left_out: dict[Path, int] = {}
    machines: dict[str, dict[str, Any]] = {}
    read: dict[Path, set[str]] = {}
    acc = _Columns()
    for f in result_files(paths, with_reference=with_reference, problems=problems,
                          left_out=left_out):
        ref = reference_root(f.parent)
        for row in iter_rows(f, problems):
            acc.add(row, ref is not None)
            if ref is not None:
                read.setdefault(ref, set()).add(str(row["machine_id"]))
        mfile = f.parent / "machine.json"
        if mfile.is_file() and str(mfile) not in machines:
            rec = _machine_record(mfile, ref is not None, problems)
            if rec is not None:
                machines[str(mfile)] = rec
    if notes is not None:
        notes += reference_notes(left_out, read)
    by_id = {str(m.get("machine_id")): m for m in machines.values()}
    return _once(acc.frame(), problems), problems, by_id


def _once(df: pd.DataFrame, problems: list[str]) -> pd.DataFrame:
    """Each run once: a row whose machine, run, cell and repeat were read already (a copied
    run file) is dropped. Rows without a run or cell id cannot be matched and all stay."""
    again = (df.duplicated(subset=["machine_id", "run_id", "cell_id", "repeat"])
             & df["run_id"].notna() & df["cell_id"].notna())
    n = int(again.sum())
    if not n:
        return df
    problems.append(f"{n:,} rows repeat a run already read (the same machine_id, run_id, "
                    "cell_id and repeat: a copied run file?): each run counted once")
    return df[~again].reset_index(drop=True)

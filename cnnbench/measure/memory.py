"""The worker's peak resident memory, read so that it cannot slow the timed rounds.

The kernel keeps the process's high-water mark of resident memory itself (``VmHWM`` in
/proc/self/status), on every page fault whether anyone reads it or not. So the worker reads
it twice, outside any timed step: once after the framework's import (the baseline, where it
also resets the mark by writing "5" to /proc/self/clear_refs, so the peak is the cell's own
and not the import's), and once after the last round. Nothing samples during the rounds.
Where /proc is missing (not Linux), ``ru_maxrss`` stands in, which cannot be reset: the
peak then includes the import. Pure standard library.
"""

from __future__ import annotations

import resource
import sys
from dataclasses import dataclass
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kb(key: str, status: Path = _STATUS) -> int | None:
    try:
        for line in status.read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])  # "VmHWM:   123456 kB"
    except (OSError, ValueError, IndexError):
        pass
    return None


def rss_mb() -> float | None:
    kb = _status_kb("VmRSS")
    return kb / 1024 if kb is not None else None


def peak_rss_mb() -> float:
    kb = _status_kb("VmHWM")
    if kb is not None:
        return kb / 1024
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return ru / 1024 / (1024 if sys.platform == "darwin" else 1)  # bytes there, kB on Linux


def reset_peak(clear_refs: Path = _CLEAR_REFS) -> bool:
    """Reset the kernel's high-water mark to the current RSS (Linux >= 4.0); False where
    it cannot be (the peak then counts from the process's start)."""
    try:
        clear_refs.write_text("5", encoding="ascii")
        return True
    except OSError:
        return False


@dataclass
class HostMemory:
    """Baseline after import, peak after the rounds: the row's memory fields."""

    enabled: bool = True  # False: touch no counter; every field is None
    baseline_mb: float | None = None
    reset: bool = False

    def start(self) -> None:
        """After the framework's import, before the build."""
        if self.enabled:
            self.baseline_mb = rss_mb()
            self.reset = reset_peak()

    def fields(self) -> dict[str, object]:
        """After the last timed round."""
        if not self.enabled:
            return dict.fromkeys(("peak_rss_mb", "baseline_rss_mb", "rss_added_mb", "peak_vm_mb"))
        peak = peak_rss_mb()
        added = (peak - self.baseline_mb if self.reset and self.baseline_mb is not None
                 else None)
        vm = _status_kb("VmPeak")
        return {"peak_rss_mb": peak, "baseline_rss_mb": self.baseline_mb,
                "rss_added_mb": added, "peak_vm_mb": vm / 1024 if vm is not None else None}

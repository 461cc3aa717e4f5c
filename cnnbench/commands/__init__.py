"""One module per subcommand (as asv's ``commands/``): each owns its arguments, an options
dataclass whose fields are its flags (`cnnbench.core.options`), with ``setup_arguments(
subparsers)`` adding them and ``run(options) -> int`` doing the work, so a command can be
called and tested in-process; ``cnnbench.cli`` only assembles them."""

from __future__ import annotations

from typing import Any


class UsageError(Exception):
    """Bad input: printed as one line, exit status 2."""


def console(stderr: bool = False) -> Any:
    """A rich console; piped output gets a wide page rather than rich's 80 columns, so no
    count is cut."""
    import sys

    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(width=None if stream.isatty() else 160, highlight=False, stderr=stderr,
                   soft_wrap=True)

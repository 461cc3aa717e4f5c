"""`cnnbench` command line: assembles the subcommands of ``cnnbench.commands`` (each owns its
arguments, as asv's commands do: ``setup_arguments(subparsers)`` and ``run(options)``), and
maps their errors to one line and an exit status.

Bad input gets one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from adapters import UnknownAdapter
from cnnbench.commands import UsageError
from cnnbench.commands import compare as compare_cmd
from cnnbench.commands import env as env_cmd
from cnnbench.commands import list as list_cmd
from cnnbench.commands import report as report_cmd
from cnnbench.commands import run as run_cmd
from cnnbench.commands import tune as tune_cmd
from cnnbench.core.cells import PlanError
from cnnbench.core.options import OptionError, parsed_command
from cnnbench.core.prices import PriceError
from cnnbench.plan.variants import VariantError
from workloads import UnknownWorkload

__all__ = ["UsageError", "build_parser", "entry", "main"]

# In the order `cnnbench --help` lists them.
COMMANDS = (run_cmd, tune_cmd, report_cmd, compare_cmd, env_cmd, list_cmd)
# Bad input, whichever layer finds it: one line, exit status 2.
BAD_INPUT = (UsageError, OptionError, PlanError, VariantError, PriceError, UnknownWorkload,
             UnknownAdapter, FileNotFoundError, NotADirectoryError, IsADirectoryError,
             PermissionError)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse would print usage lines too
        # An argument may hold a newline; the message stays one line.
        message = message.replace("\r", "\\r").replace("\n", "\\n")
        raise UsageError(f"{self.prog}: {message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cnnbench", description="Multi-framework CNN benchmark suite.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in COMMANDS:
        command.setup_arguments(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        run, options = parsed_command(build_parser().parse_args(argv))
        return int(run(options))
    except BAD_INPUT as exc:
        msg = str(exc)
        if not msg.startswith("cnnbench"):
            msg = f"cnnbench: error: {msg}"
        print(msg.splitlines()[0] if msg else "cnnbench: error", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


def entry() -> None:
    sys.exit(main())

"""Command-line options defined once: a dataclass field per option, whose metadata holds its
flags and help, and from which the parser is generated (`add_arguments`) and the parsed
values are read back (`from_namespace`).

A command's options are then one dataclass that the parser, the command and the runner all
read, instead of a flag written in the parser, again as a keyword parameter, and again in
the runner's settings. Standard library only.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import Field
from typing import Any


class OptionError(ValueError):
    """A value the parser took but the option refuses (an interpreter that does not exist):
    printed as one line, exit status 2."""


# ------------------------------------------------------------------- value parsers
# argparse turns their ArgumentTypeError into "argument --x: <message>".


def csv(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",")]
    if not text.strip() or any(not t for t in items):
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
    return items


def pos_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def pos_int_list(text: str) -> list[int]:
    return [pos_int(t) for t in csv(text)]


def pos_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def safe_id(text: str) -> str:
    """Run and machine ids become file names: no separators, no leading dot."""
    if not text or text.startswith(".") or not set(text) <= _ID_CHARS or len(text) > 100:
        raise argparse.ArgumentTypeError(
            f"ids may hold letters, digits, '.', '_' and '-' (not first '.'), got {text!r}")
    return text


def slurm_time(text: str) -> str:
    """Slurm's time formats: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS."""
    if not re.fullmatch(r"(\d+-)?\d+(:\d+){0,2}", text.strip()):
        raise argparse.ArgumentTypeError(f"expected a Slurm time limit such as 00:30:00 or "
                                         f"1-00:00:00, got {text!r}")
    return text.strip()


def json_values(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """KEY=VALUE pairs as a dict, each value read as JSON where it is JSON (2, true, "x")."""
    out: dict[str, Any] = {}
    for k, v in pairs:
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


# ------------------------------------------------------------------- help computed late


class LazyHelp(str):
    """A help text computed only when help is printed (`HelpFormatter`): one that needs a
    heavy module (the estimator's presets) costs nothing to a command that only parses."""

    def __new__(cls, make: Callable[[], str]) -> LazyHelp:
        self = super().__new__(cls, "(computed when shown)")
        self.make = make
        return self

    make: Callable[[], str]


class HelpFormatter(argparse.HelpFormatter):
    def _expand_help(self, action: argparse.Action) -> str:
        if isinstance(action.help, LazyHelp):
            action.help = action.help.make()
        return super()._expand_help(action)


# ------------------------------------------------------------------- options as fields


def flag(*flags: str, default: Any = None, factory: Callable[[], Any] | None = None,
         group: str | None = None, convert: Callable[[Any], Any] | None = None,
         alternative: tuple[tuple[str, ...], dict[str, Any]] | None = None,
         **argparse_kwargs: Any) -> Any:
    """A dataclass field that is also a command-line option: ``flags`` and
    ``argparse_kwargs`` go to ``add_argument`` (the field's name is its ``dest``); ``group``
    names an argument group (see `add_arguments`); ``convert`` turns the parsed value into
    the field's (and may raise `OptionError`); ``alternative`` is a second flag writing the
    same field, the two mutually exclusive (--interleave / --no-interleave).

    A flag not given leaves the field's default: the parser's own default is None, so a
    command can tell an option given from one left alone (`given`)."""
    meta = {"flags": flags, "argparse": argparse_kwargs, "group": group, "convert": convert,
            "alternative": alternative}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    if argparse_kwargs.get("action") == "store_true":
        default = False
    return dataclasses.field(default=default, metadata=meta)


def nested(cls: type, group: str | None = None) -> Any:
    """A field holding another options dataclass, whose flags join the parser here."""
    return dataclasses.field(default_factory=cls, metadata={"nested": cls, "group": group})


def add_arguments(parser: argparse.ArgumentParser, cls: type,
                  groups: dict[str, str] | None = None, group: str | None = None) -> None:
    """Add an argument per flagged field of ``cls``, in field order. ``groups`` maps a
    group's title to its description; fields naming one go into that argument group."""
    made: dict[str, Any] = getattr(parser, "_cnnbench_groups", {})
    parser._cnnbench_groups = made  # type: ignore[attr-defined]

    def target(title: str | None) -> Any:
        if title is None:
            return parser
        if title not in made:
            made[title] = parser.add_argument_group(title, (groups or {}).get(title))
        return made[title]

    for f in dataclasses.fields(cls):
        meta = f.metadata
        if "nested" in meta:
            add_arguments(parser, meta["nested"], groups, meta["group"] or group)
        elif "flags" in meta:
            _add_one(target(meta["group"] or group), f)


def _add_one(where: Any, f: Field[Any]) -> None:
    meta = f.metadata
    kwargs = dict(meta["argparse"])
    if kwargs.get("action") != "store_true":
        kwargs.setdefault("default", None)
    flags = meta["flags"]
    if meta["alternative"] is not None:
        where = where.add_mutually_exclusive_group()
    if flags[0].startswith("-"):
        kwargs["dest"] = f.name
    where.add_argument(*flags, **kwargs)
    if meta["alternative"] is not None:
        alt_flags, alt_kwargs = meta["alternative"]
        where.add_argument(*alt_flags, dest=f.name, **alt_kwargs)


def from_namespace(cls: type, ns: argparse.Namespace) -> Any:
    """An instance of ``cls`` from parsed arguments: each flag's value, converted, or the
    field's default where the flag was not given."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if "nested" in meta:
            values[f.name] = from_namespace(meta["nested"], ns)
        elif "flags" in meta and getattr(ns, f.name, None) is not None:
            value = getattr(ns, f.name)
            values[f.name] = meta["convert"](value) if meta["convert"] else value
    return cls(**values)


def given(cls: type, ns: argparse.Namespace) -> list[str]:
    """The first flag of each option of ``cls`` given on the command line."""
    out = []
    for f in dataclasses.fields(cls):
        value = getattr(ns, f.name, None) if "flags" in f.metadata else None
        off = value is False and f.metadata["argparse"].get("action") == "store_true"
        if value is not None and not off:
            out.append(f.metadata["flags"][0])
    return out


def add_command(subparsers: Any, name: str, cls: type, run: Callable[[Any], int], *,
                groups: dict[str, str] | None = None,
                check: Callable[[argparse.Namespace], None] | None = None,
                **kwargs: Any) -> argparse.ArgumentParser:
    """A subcommand whose options are ``cls``: the parser is generated from its fields, and
    ``run(cls instance)`` is what the command line calls (`parsed_command`). ``check``
    refuses what only the parsed flags can tell (a flag given that another excludes)."""
    p: argparse.ArgumentParser = subparsers.add_parser(name, formatter_class=HelpFormatter,
                                                       **kwargs)
    add_arguments(p, cls, groups)
    p.set_defaults(_options=cls, _run=run, _check=check)
    return p


def parsed_command(ns: argparse.Namespace) -> tuple[Callable[[Any], int], Any]:
    """(the subcommand's run, its options) of parsed arguments (see `add_command`)."""
    if ns._check is not None:
        ns._check(ns)
    return ns._run, from_namespace(ns._options, ns)


__all__ = ["HelpFormatter", "LazyHelp", "OptionError", "add_arguments", "add_command",
           "csv", "flag", "from_namespace", "given", "json_values", "key_value", "nested",
           "parsed_command", "pos_float", "pos_int", "pos_int_list", "safe_id", "slurm_time"]

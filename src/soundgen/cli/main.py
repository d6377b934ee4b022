"""Entry point of the `soundgen` command.

Subcommands live in ``soundgen/cli/cmd_*.py``; each module defines ``register(groups)`` and adds its commands
to a group (``groups.group("data")``) or at the top level (``groups.top``). Handlers take the parsed arguments
and return an exit code. Known errors (:class:`~soundgen.errors.SoundgenError`) become one line on stderr and
exit code 2; nothing a user does should show a traceback (set ``SOUNDGEN_DEBUG=1`` to see one anyway).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from soundgen import __version__
from soundgen.errors import SoundgenError

Handler = Callable[[argparse.Namespace], int]


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class CommandGroups:
    """Lazily created subcommand groups (``soundgen data ...``, ``soundgen codec ...``)."""

    HELP = {
        "data": "build datasets and token caches",
        "codec": "train, export and use the neural audio codec",
        "lm": "train and export the text-to-sound language model",
        "eval": "evaluate codecs and generation against baselines",
        "keys": "manage API keys of the service",
        "model": "release and verify model directories",
    }

    def __init__(self, top: Any) -> None:
        self.top = top
        self._groups: dict[str, Any] = {}

    def group(self, name: str) -> Any:
        """Return the subparsers action of group ``name``, creating the group on first use."""
        if name not in self._groups:
            parser = self.top.add_parser(name, help=self.HELP.get(name, name))
            parser.set_defaults(func=_group_help(parser))
            self._groups[name] = parser.add_subparsers(title="commands", metavar="COMMAND")
        return self._groups[name]


def _group_help(parser: argparse.ArgumentParser) -> Handler:
    def show(_: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 2

    return show


def build_parser() -> argparse.ArgumentParser:
    """Build the full argument parser from every ``cmd_*`` module."""
    parser = OneLineParser(prog="soundgen", description="Train a text-to-sound model on audio you own, and serve it.")
    parser.add_argument("--version", action="version", version=f"soundgen {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    top = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=OneLineParser)
    groups = CommandGroups(top)
    package = importlib.import_module("soundgen.cli")
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("cmd_"):
            importlib.import_module(f"soundgen.cli.{info.name}").register(groups)
    parser.set_defaults(func=_group_help(parser))
    return parser


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose >= 2 else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose, args.quiet)
    debug = os.environ.get("SOUNDGEN_DEBUG") == "1"
    try:
        return int(args.func(args) or 0)
    except SoundgenError as e:
        if debug:
            raise
        print(f"soundgen: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("soundgen: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except OSError as e:  # a full disk, a folder without permission: the user's to fix, not a bug
        if debug:
            raise
        where = f": {e.filename}" if e.filename else ""
        print(f"soundgen: error: {e.strerror or _one_line(e)}{where}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - the last guard: a user never sees a traceback
        if debug:
            raise
        print(
            f"soundgen: internal error: {type(e).__name__}: {_one_line(e)} "
            "(this is a bug; rerun with SOUNDGEN_DEBUG=1 for the traceback and report it)",
            file=sys.stderr,
        )
        return 1


def _one_line(e: BaseException) -> str:
    from soundgen.cli.limits import terminal_text

    return terminal_text(" ".join(str(e).split())) or type(e).__name__


if __name__ == "__main__":
    raise SystemExit(main())

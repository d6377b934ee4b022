"""``--section.key=VALUE`` options for every field of a typed run config (see :mod:`soundgen.config`)."""

from __future__ import annotations

import argparse
import dataclasses
import typing

_DEST = "override:"


def add_override_options(parser: argparse.ArgumentParser, cls: type, example: str) -> None:
    """Add one hidden ``--a.b.c=VALUE`` option per leaf field of the dataclass tree ``cls``.

    Args:
        parser: the subcommand's parser.
        cls: the run config dataclass (sections are nested dataclasses).
        example: overrides shown in the group title, e.g. ``--train.lr=3e-4``.
    """
    group = parser.add_argument_group(f"config overrides (YAML values, e.g. {example})")

    def walk(node: type, prefix: str) -> None:
        hints = typing.get_type_hints(node)
        for f in dataclasses.fields(node):  # type: ignore[arg-type]
            key, tp = f"{prefix}{f.name}", hints[f.name]
            if dataclasses.is_dataclass(tp) and isinstance(tp, type):
                walk(tp, f"{key}.")
            else:
                group.add_argument(f"--{key}", dest=f"{_DEST}{key}", metavar="VALUE", help=argparse.SUPPRESS)

    walk(cls, "")


def collect_overrides(args: argparse.Namespace) -> list[str]:
    """The ``key=value`` overrides given on the command line, for :func:`soundgen.config.load_config`."""
    return [
        f"{key[len(_DEST):]}={value}"
        for key, value in vars(args).items()
        if key.startswith(_DEST) and value is not None
    ]

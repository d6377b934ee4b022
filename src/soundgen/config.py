"""Typed dataclass configs: one YAML file plus dotted command-line overrides.

A config is a tree of dataclasses. :func:`load_config` reads a YAML (or JSON) file into it, applies overrides
such as ``train.lr=3e-4`` and rejects unknown keys with a message naming them, so a typo never silently does
nothing. :func:`config_to_dict` gives the resolved tree back for writing into a run directory.

A section whose keys or values were renamed declares it, so that run directories and YAML files written before
still load: ``RENAMED_KEYS: ClassVar[dict[str, str]] = {"old": "new"}`` and
``RENAMED_VALUES: ClassVar[dict[str, dict[str, str]]] = {"key": {"old": "new"}}``.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from soundgen.errors import ConfigError

T = TypeVar("T")


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Return a config dataclass as plain nested dicts and lists (JSON/YAML serialisable)."""
    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        raise TypeError(f"expected a dataclass instance, got {type(cfg).__name__}")
    return _plain(dataclasses.asdict(cfg))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def config_from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build the dataclass ``cls`` from nested dicts, checking names and types.

    Args:
        cls: the dataclass type.
        data: mapping of field name to value; missing fields keep their defaults.
        where: dotted prefix used in error messages.

    Raises:
        ConfigError: unknown field or a value of the wrong type.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"config section '{where or '<root>'}' must be a mapping, got {type(data).__name__}")
    data = _renamed(cls, data, where)
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {', '.join(_join(where, u) for u in unknown)}; "
            f"known keys here: {', '.join(sorted(fields))}"
        )
    kwargs = {name: _coerce(hints[name], value, _join(where, name)) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"invalid config '{where or '<root>'}': {e}") from e


def _renamed(cls: type, data: dict[str, Any], where: str) -> dict[str, Any]:
    """``data`` with the old names of ``cls``'s keys and values replaced by the new ones."""
    keys: dict[str, str] = cls.__dict__.get("RENAMED_KEYS", {})
    values: dict[str, dict[str, str]] = cls.__dict__.get("RENAMED_VALUES", {})
    out = dict(data)
    for old, new in keys.items():
        if old in out:
            if new in out:
                raise ConfigError(f"config keys '{_join(where, old)}' and '{_join(where, new)}' are the same "
                                  f"setting ('{old}' is its old name): give '{new}' alone")
            out[new] = out.pop(old)
    for key, mapping in values.items():
        value = out.get(key)
        if isinstance(value, bool):  # YAML 1.1 reads a bare on/off as a boolean
            value = "on" if value else "off"
        if isinstance(value, str) and value in mapping:
            out[key] = mapping[value]
    return out


def _rename_tree(cls: type, data: Any) -> Any:
    """:func:`_renamed` applied to every section of a loaded file (before it is merged with the defaults)."""
    if not isinstance(data, dict) or not dataclasses.is_dataclass(cls):
        return data
    data = _renamed(cls, data, "")
    hints = get_type_hints(cls)
    return {k: _rename_tree(hints[k], v) if k in hints and isinstance(hints[k], type) else v for k, v in data.items()}


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return config_from_dict(tp, value, where)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where)
            except ConfigError:
                continue
        raise ConfigError(f"config key '{where}': {value!r} does not fit {tp}")
    if origin is typing.Literal:
        if value not in get_args(tp):
            choices = ", ".join(repr(a) for a in get_args(tp))
            raise ConfigError(f"config key '{where}': {value!r} is not one of {choices}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"config key '{where}' must be a list, got {value!r}")
        args = get_args(tp)
        item_tp = args[0] if args else Any
        items = [_coerce(item_tp, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key '{where}' must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"config key '{where}' must be an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "3e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"config key '{where}' must be a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"config key '{where}' must be a string, got {value!r}")
    return value


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``a.b.c=value`` (a leading ``--`` is allowed) into a key path and a YAML-typed value."""
    body = text[2:] if text.startswith("--") else text
    if "=" not in body:
        raise ConfigError(f"override '{text}' must look like --section.key=value")
    key, raw = body.split("=", 1)
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override '{text}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override '{text}': cannot parse value: {e}") from e
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of nested ``data`` with dotted overrides applied."""
    out = json.loads(json.dumps(data))
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override '{text}': '{part}' is not a section")
            node = child
        node[path[-1]] = value
    return out


def load_config(
    cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None, base: T | None = None
) -> T:
    """Load a typed config.

    Args:
        cls: the config dataclass.
        path: YAML or JSON file; keys it leaves out keep the values of ``base`` (or the defaults).
        overrides: dotted overrides, e.g. ``["train.lr=3e-4", "--model.channels=32"]``.
        base: starting values (e.g. ``cls.tiny()``); defaults to ``cls()``.

    Raises:
        ConfigError: unreadable file, unknown key or wrong type.
    """
    data = config_to_dict(base if base is not None else cls())
    if path is not None:
        p = Path(path)
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except FileNotFoundError as e:
            raise ConfigError(f"config file not found: {p}") from e
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            raise ConfigError(f"cannot read config file {p}: {e}") from e
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {p} must hold a mapping at the top level")
        data = _merge(data, _rename_tree(cls, loaded))
    data = apply_overrides(data, overrides or [])
    return config_from_dict(cls, data)


def _merge(base: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def save_config(cfg: Any, path: str | Path) -> None:
    """Write the resolved config as YAML (used for every run directory)."""
    Path(path).write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), encoding="utf-8")

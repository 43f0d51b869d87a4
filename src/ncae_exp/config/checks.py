"""Checking one config node against its schema: its keys (an unknown key is refused with the
nearest valid one), the type of each value (from annotations) and the declared ranges.

A schema is either a dataclass of config/schema.py or, for a node with ``_target_``, the
constructor of that class.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import inspect
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from ncae_exp.config_utils import unknown_key_message
from ncae_exp.errors import ConfigError

# Keys Hydra's instantiate reads itself; ``name`` labels a model in tags (not an argument).
INSTANTIATE_KEYS = ("_target_", "_convert_", "_recursive_", "_partial_", "_args_", "name")
_SCALARS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
_PLURALS = {bool: "booleans", int: "integers", float: "numbers", str: "strings"}


def join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def check_keys(node: Mapping, path: str, known: Iterable[str]) -> None:
    known = [str(k) for k in known]
    for key, value in node.items():
        if str(key) not in known:
            rest = ""  # +modle.hidden=[3]: name the whole key the user wrote
            while isinstance(value, Mapping) and len(value) == 1:
                (inner, value), = value.items()
                rest += f".{inner}"
            raise ConfigError(unknown_key_message(path, str(key), known, rest))


def _union_args(hint: Any) -> tuple | None:
    origin = typing.get_origin(hint)
    if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        return typing.get_args(hint)
    return None


def type_ok(value: Any, hint: Any) -> bool:
    """Whether ``value`` (a resolved YAML value) fits the annotation ``hint``; annotations
    this does not know (``Any``, a callable) accept anything."""
    args = _union_args(hint)
    if args is not None:
        return any(type_ok(value, a) for a in args)
    if hint is type(None) or hint is None:
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:  # names such as run_name=2024 arrive as numbers
        return isinstance(value, (str, int, float)) and not isinstance(value, bool)
    origin, inner = typing.get_origin(hint), typing.get_args(hint)
    if origin in (list, tuple, collections.abc.Sequence):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and inner and inner[-1] is not Ellipsis:
            return len(value) == len(inner) and all(type_ok(v, h) for v, h in zip(value, inner))
        return all(type_ok(v, inner[0]) for v in value) if inner else True
    if isinstance(hint, type) and hint not in (dict, list, tuple, object):
        return isinstance(value, (Mapping, hint))  # an object node (``_target_``), checked on its own
    return True


def describe(hint: Any) -> str:
    args = _union_args(hint)
    if args is not None:
        named = [describe(a) for a in args if a is not type(None)]
        return " or ".join(named + (["null"] if type(None) in args else []))
    if hint in _SCALARS:
        return _SCALARS[hint]
    origin, inner = typing.get_origin(hint), typing.get_args(hint)
    if origin in (list, tuple, collections.abc.Sequence):
        if origin is tuple and inner and inner[-1] is not Ellipsis:
            return f"a list of {len(inner)} {_PLURALS.get(inner[0], 'values')}"
        return f"a list of {_PLURALS.get(inner[0], 'values')}" if inner else "a list"
    return f"a {getattr(hint, '__name__', hint)} config" if isinstance(hint, type) else str(hint)


def check_value(value: Any, hint: Any, path: str, meta: Mapping | None = None) -> None:
    """The type of ``value``, then the ranges in ``meta`` (``ge``, ``le``, ``choices``,
    ``nonempty``); messages read ``trainer.epochs must be >= 1, got -1``."""
    if not type_ok(value, hint):
        raise ConfigError(f"{path} must be {describe(hint)}, got {value!r}")
    if value is None or not meta:
        return
    null = " or null" if _union_args(hint) and type(None) in _union_args(hint) else ""
    if "ge" in meta and "le" in meta and not meta["ge"] <= value <= meta["le"]:
        raise ConfigError(f"{path} must be in [{meta['ge']}, {meta['le']}]{null}, got {value!r}")
    if "ge" in meta and value < meta["ge"]:
        raise ConfigError(f"{path} must be >= {meta['ge']}{null}, got {value!r}")
    if "choices" in meta and value not in meta["choices"]:
        *head, last = meta["choices"]
        raise ConfigError(f"{path} must be {', '.join(head)} or {last}, got {value!r}")
    if meta.get("nonempty") and not str(value).strip():
        raise ConfigError(f"{path} must not be empty")


def check_dataclass(node: Any, schema: type, path: str, optional: Iterable[str] = ()) -> None:
    """``node`` against a dataclass of config/schema.py: no other key, every key present
    (but ``optional`` ones), each value of its field's type and range."""
    if not isinstance(node, Mapping):
        raise ConfigError(f"{path} must be a group of settings, got {node!r}")
    hints = typing.get_type_hints(schema)
    fields = {f.name: f for f in dataclasses.fields(schema)}
    check_keys(node, path, fields)
    for name, f in fields.items():
        if name not in node:
            if name in optional:
                continue
            raise ConfigError(f"missing key {join(path, name)}")
        check_value(node[name], hints[name], join(path, name), f.metadata)


def target_class(node: Mapping, path: str) -> type:
    from hydra.utils import get_class

    target = node.get("_target_")
    if not target:
        raise ConfigError(f"{path} has no _target_ (the class to build)")
    try:
        return get_class(str(target))
    except Exception as err:  # noqa: BLE001 - any import failure is a config mistake here
        raise ConfigError(f"{path}._target_ {target!r} cannot be imported: {' '.join(str(err).split())}") from None


def check_target(node: Any, path: str, also: Iterable[str] = ()) -> None:
    """An object node: its keys are its class's constructor parameters (a class taking
    ``**kwargs`` is open), their types its annotations; nested object nodes likewise. The
    values' ranges are the constructor's to check, when it is built. ``also``: keys checked
    elsewhere (``model.register``, …), named too when a typo is refused."""
    if not isinstance(node, Mapping):
        raise ConfigError(f"{path} must be a group of settings with _target_, got {node!r}")
    cls = target_class(node, path)
    params = inspect.signature(cls).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        check_keys(node, path, [*params, *INSTANTIATE_KEYS, *also])
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # noqa: BLE001 - an annotation we cannot evaluate is not checked
        hints = {}
    for key, value in node.items():
        if key in hints:
            check_value(value, hints[key], join(path, key))
        if isinstance(value, Mapping) and "_target_" in value:
            check_target(value, join(path, key))

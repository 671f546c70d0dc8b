"""Turn a TOML table into a typed dataclass, collecting every problem at once.

Used for suite sections, model-source options, task configs and method params, so the
same rules apply everywhere: unknown keys are errors with the nearest valid key,
values must match the field's annotation (an int is accepted for a float; a float must be
finite: nan and inf are refused), and a dataclass may reject values in
``__post_init__`` by raising ``ValueError``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

_MISSING = dataclasses.MISSING


def nearest(word: str, choices: typing.Iterable[str]) -> str:
    """Return "; did you mean 'x'?" for the closest choice, or a list of choices."""
    choices = sorted(choices)
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.5)
    if match:
        return f"; did you mean '{match[0]}'?"
    if not choices:
        return ""
    shown = ", ".join(choices[:12]) + (", ..." if len(choices) > 12 else "")
    return f"; valid choices: {shown}"


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if origin in (list, tuple):
        args = [a for a in get_args(tp) if a is not Ellipsis]
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return "table"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any) -> tuple[bool, Any]:
    """Return (ok, converted value) for ``value`` against annotation ``tp``."""
    if tp is Any:
        return True, value
    origin = get_origin(tp)
    if origin is Literal:
        return (value in get_args(tp)), value
    if origin in (Union, types.UnionType):
        for arg in get_args(tp):
            ok, converted = _coerce(value, arg)
            if ok:
                return True, converted
        return False, value
    if tp is type(None):
        return value is None, value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False, value
        args = [a for a in get_args(tp) if a is not Ellipsis]
        inner = args[0] if args else Any
        out = []
        for item in value:
            ok, converted = _coerce(item, inner)
            if not ok:
                return False, value
            out.append(converted)
        return True, (tuple(out) if origin is tuple else out)
    if origin is dict or tp is dict:
        return isinstance(value, dict), value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False, value
        try:
            number = float(value)
        except OverflowError:  # an int beyond float's range
            return False, value
        return math.isfinite(number), number
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is str:
        return isinstance(value, str), value
    return isinstance(value, tp) if isinstance(tp, type) else True, value


def _finite_stand_in(value: Any) -> Any:
    """``value`` with every non-finite (or float-overflowing) number replaced by 0."""
    if isinstance(value, float) and not math.isfinite(value):
        return 0.0
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2 ** 1023:
        return 0
    if isinstance(value, list):
        return [_finite_stand_in(v) for v in value]
    return value


def _mismatch(value: Any, tp: Any) -> str:
    """Why ``value`` does not fit ``tp``: "a finite number" where only that is wrong."""
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    stand_in = _finite_stand_in(value)
    if stand_in != value and _coerce(stand_in, tp)[0]:
        return f"expected a finite number, got {shown}"
    return f"expected {_type_name(tp)}, got {shown}"


def build(cls: type, table: Any, where: str, problems: list[str]) -> Any | None:
    """Build dataclass ``cls`` from ``table``; append problems as "where.key: message".

    Returns the instance, or None when any problem was found.
    """
    if not isinstance(table, dict):
        problems.append(f"{where}: expected a table, got {type(table).__name__}")
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    before = len(problems)
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in fields:
            problems.append(f"{where}.{key}: unknown key{nearest(key, fields)}")
            continue
        ok, converted = _coerce(value, hints[key])
        if not ok:
            problems.append(f"{where}.{key}: {_mismatch(value, hints[key])}")
            continue
        values[key] = converted
    for name, field in fields.items():
        if name not in table and field.default is _MISSING and field.default_factory is _MISSING:
            problems.append(f"{where}.{name}: required key is missing")
    if len(problems) > before:
        return None
    try:
        return cls(**values)
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return None


# Field metadata of a key added after runs were stored: at its default it is left out of
# to_dict (and so of run ids), and decode restores the default.
OMIT_AT_DEFAULT = {"omit_at_default": True}


def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass instance as a plain dict (tuples become lists, for JSON); fields with
    :data:`OMIT_AT_DEFAULT` metadata are left out while at their default."""
    omit = {f.name for f in dataclasses.fields(obj)
            if f.metadata.get("omit_at_default") and getattr(obj, f.name) == f.default}
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(obj).items() if k not in omit}


def decode(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a dataclass from :func:`to_dict`'s output (JSON lists become the tuples
    the annotations ask for). The values were checked by :func:`build` already."""
    hints = typing.get_type_hints(cls)
    return cls(**{key: _coerce(value, hints[key])[1] if key in hints else value
                  for key, value in data.items()})

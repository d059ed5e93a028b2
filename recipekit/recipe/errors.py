"""Turn pydantic and YAML errors into RecipeErrors naming file, key path and what was expected."""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from recipekit.core.errors import RecipeError


def key_path(loc: tuple[Any, ...]) -> str:
    """('fixes', 2, 'opset') -> 'fixes[2].opset'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _unwrap(tp: Any) -> list[Any]:
    """The model classes an annotation can hold (through Optional, list, dict, tuple)."""
    origin = typing.get_origin(tp)
    if origin is None:
        return [tp]
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    args = typing.get_args(tp)
    if origin is dict:
        args = args[1:]
    return [t for a in args for t in _unwrap(a)]


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    current: list[Any] = [model]
    for part in loc:
        nxt: list[Any] = []
        for tp in current:
            if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str) and part in tp.model_fields:
                nxt += _unwrap(tp.model_fields[part].annotation)
            elif not (isinstance(tp, type) and issubclass(tp, BaseModel)):
                nxt.append(tp)  # list / dict element: the index or key consumed nothing
        current = [t for t in nxt if t is not None and t is not types.NoneType]
    models = [t for t in current if isinstance(t, type) and issubclass(t, BaseModel)]
    return models[0] if models else None


def unknown_key_message(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    parent = _model_at(model, loc[:-1])
    if parent is None:
        return "unknown key"
    known = sorted(parent.model_fields)
    near = difflib.get_close_matches(str(loc[-1]), known, n=1)
    hint = f" (did you mean '{near[0]}'?)" if near else ""
    return f"unknown key{hint}; expected one of: {', '.join(known)}"


def describe(err: dict[str, Any], model: type[BaseModel]) -> str:
    if err["type"] == "extra_forbidden":
        return unknown_key_message(model, tuple(err["loc"]))
    if err["type"] == "missing":
        return "required key is missing"
    got = err.get("input")
    shown = repr(got) if not isinstance(got, (dict, list)) or len(repr(got)) < 80 else type(got).__name__
    msg = err["msg"].removeprefix("Value error, ")
    return msg if "got " in msg else f"{msg}; got {shown}"


_TAG = re.compile(r"^(str|int|float|bool|none|bytes|[a-z-]+\[.*\])$")
"""Segments pydantic adds to an error's location for each member of a union (`fixes[0].dict[str,any]`)."""


def _user_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors with union-member tags dropped from their locations, one per location."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and _TAG.match(p)))
        out.setdefault(loc, {**err, "loc": loc})
    return list(out.values())


def from_validation(
    file: str, exc: ValidationError, model: type[BaseModel], prefix: tuple[Any, ...] = ()
) -> RecipeError:
    """The first error of a ValidationError as a RecipeError (up to four more on the same line)."""
    errors = _user_errors(exc)
    first, *rest = errors
    msg = describe(first, model)
    for other in rest[:4]:
        msg += f"; also {key_path(prefix + tuple(other['loc']))}: {describe(other, model)}"
    return RecipeError(file, key_path(prefix + tuple(first["loc"])), msg)

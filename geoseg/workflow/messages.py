"""One-line messages for pydantic validation errors of a YAML config.

An unknown key names itself and the closest valid key at that place (difflib); a value of the
wrong type names its key and the type expected there; a missing key names itself. The models
are walked along the error's location to find the valid keys and the expected type, so the
messages follow the schema without a table of their own.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, Literal

from pydantic import BaseModel, ValidationError


def describe_error(e: ValidationError, model: type[BaseModel], where: str) -> str:
    """``where: <what is wrong> (<what to do>)`` for the first error of ``e``."""
    return _describe(e.errors()[0], model, where)[1]


def describe_errors(e: ValidationError, model: type[BaseModel], where: str) -> list[str]:
    """One line per key ``e`` finds wrong (a union's alternatives make several errors of one
    key: its first is kept), in the order pydantic reports them."""
    lines: dict[str, str] = {}
    for err in e.errors():
        key, line = _describe(err, model, where)
        lines.setdefault(key, line)
    return list(lines.values())


def _describe(err: Any, model: type[BaseModel], where: str) -> tuple[str, str]:
    kind = err["type"]
    owner, field, path = _walk(model, err["loc"])
    key = _dotted(path)
    if owner is not None:  # an unknown key
        valid = list(owner.model_fields)
        close = difflib.get_close_matches(str(path[-1]), valid, n=1, cutoff=0.5)
        hint = (
            f"did you mean {_dotted([*path[:-1], close[0]])!r}?"
            if close
            else f"valid keys here: {', '.join(valid)}"
        )
        return key, f"{where}: unknown key {key!r}: {hint}"
    if kind == "missing":
        return key, f"{where}: missing required key {key!r}"
    msg = err["msg"].removeprefix("Value error, ")
    if field is not None and _is_type_error(kind):
        got = err.get("input")
        shown = f"{got!r}" if not isinstance(got, dict | list) else type(got).__name__
        return key, f"{where}: {key} must be {type_name(field)}, got {shown}"
    return key, (f"{where}: {key}: {msg}" if key else f"{where}: {msg}")


def _is_type_error(kind: str) -> bool:
    return kind.endswith(("_type", "_parsing", "_parsing_size")) or kind in (
        "literal_error",
        "bool_parsing",
        "int_from_float",
        "model_attributes_type",
        "union_tag_invalid",
    )


def _dotted(path: list) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _walk(model: type[BaseModel], loc: tuple) -> tuple[type[BaseModel] | None, Any, list]:
    """Follow ``loc`` through the models. Returns (the model, when the last key is unknown to
    it; else None), the annotation of the last known key, and the location as keys and list
    indices (pydantic's union tags such as 'list[str]' left out)."""
    owner: type[BaseModel] | None = model  # whose keys the next part names
    ann: Any = None
    path: list = []
    for part in loc:
        if isinstance(part, int):
            item = _list_item(ann) if ann is not None else None
            if item is not None:
                ann, owner = item, _model_in(item)
                path.append(part)
            continue
        if owner is None:
            continue  # a union tag, not a key
        if part not in owner.model_fields:
            return owner, None, [*path, part]
        ann = owner.model_fields[part].annotation
        owner = _model_in(ann)
        path.append(part)
    return None, ann, path


def _args(ann: Any) -> tuple:
    return typing.get_args(ann) if _is_union(ann) else (ann,)


def _is_union(ann: Any) -> bool:
    return typing.get_origin(ann) in (typing.Union, types.UnionType)


def _model_in(ann: Any) -> type[BaseModel] | None:
    for a in _args(ann):
        if isinstance(a, type) and issubclass(a, BaseModel):
            return a
    return None


def _list_item(ann: Any) -> Any:
    for a in _args(ann):
        if typing.get_origin(a) is list:
            return typing.get_args(a)[0]
    return None


def type_name(ann: Any) -> str:
    """A reader's name for an annotation: 'a number', 'a list of file paths', ..."""
    if _is_union(ann):
        parts = [type_name(a) for a in typing.get_args(ann) if a is not type(None)]
        return " or ".join(dict.fromkeys(parts))
    origin = typing.get_origin(ann)
    if origin is Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(ann))
    if origin is list:
        return f"a list of {_plural(type_name(typing.get_args(ann)[0]))}"
    if origin is dict:
        return "a mapping"
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return f"a mapping with keys {', '.join(ann.model_fields)}"
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        typing.Any: "a value",
    }.get(ann, getattr(ann, "__name__", str(ann)))


def _plural(name: str) -> str:
    for article in ("a ", "an "):
        if name.startswith(article):
            name = name[len(article) :]
            return {
                "string": "strings",
                "integer": "integers",
                "number": "numbers",
                "mapping": "mappings",
            }.get(name, name)
    return name

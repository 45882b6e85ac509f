"""A command's options derived from a stage's :class:`~geoseg.core.options.Options`.

``@with_options(PredictOptions)`` gives the command one typer option per field the class
offers on the command line (its default and help as declared) and calls it with one validated
``opts`` instance instead. Typer builds commands from signatures, so the decorated function's
signature is rewritten: typer has no hook for a parameter group.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from typing import Any

import typer

from geoseg.cli.common import LIST_HELP, fail, split_list
from geoseg.core.options import Options
from geoseg.errors import GeoSegError


def _cli_type(annotation: Any) -> Any:
    """What typer parses: a ``Literal`` as ``str`` or ``int`` (the options object checks the
    value and names the allowed ones), ``X | None`` as ``X``."""
    if typing.get_origin(annotation) is typing.Literal:
        values = typing.get_args(annotation)
        return int if all(isinstance(v, int) for v in values) else str
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _cli_type(args[0]) if len(args) == 1 else str
    return annotation


def with_options(cls: type[Options], *, exclude: tuple[str, ...] = (), **defaults: Any):
    """Decorate a command taking ``opts``: its other parameters stay as they are; ``defaults``
    replaces a field's default on this command only."""

    def decorate(fn):
        sig = inspect.signature(fn, eval_str=True)
        own = [p for p in sig.parameters.values() if p.name != "opts"]
        names = [
            n
            for n, f in cls.model_fields.items()
            if cls.meta(n).get("cli", True) and n not in exclude
        ]
        added = []
        for name in names:
            f = cls.model_fields[name]
            default = defaults.get(name, f.default)
            flag = f"--{name.replace('_', '-')}"
            decl = ()
            if f.annotation is bool:  # a flag; one on by default can be turned off
                decl = (f"{flag}/--no-{flag[2:]}",) if default else (flag,)
            listed = typing.get_origin(_cli_type(f.annotation)) is list
            extra = {"callback": split_list, "metavar": "NAME,..."} if listed else {}
            added.append(
                inspect.Parameter(
                    name,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=typer.Option(
                        default,
                        *decl,
                        help=(f.description or "") + (LIST_HELP if listed else ""),
                        **extra,
                    ),
                    annotation=_cli_type(f.annotation),
                )
            )

        @functools.wraps(fn)
        def command(*args, **kwargs):
            given = {n: kwargs.pop(n) for n in names}
            try:
                opts = cls.of(**given)
            except GeoSegError as e:
                fail(e)
                return None
            return fn(*args, opts=opts, **kwargs)

        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + added
        command.__signature__ = sig.replace(parameters=params)
        command.__annotations__ = {p.name: p.annotation for p in params}
        del command.__wrapped__  # typer must read the new signature, not fn's
        return command

    return decorate

"""A stage's options, declared once: each field's default, allowed values, help text and role.

A stage (predict, vectorize, ...) subclasses :class:`Options` with one :func:`option` per
setting. Everything else is derived from that declaration: the CLI's options
(``geoseg.cli.options``), the workflow section (which subclasses it), the Python API's keyword
arguments (``Options.of``), the job key (``key_params``) and the product tags (``tags``). A new
option is one line here plus the code that uses it.
"""

from __future__ import annotations

from typing import Any, Literal, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from geoseg.errors import GeoSegError

Key = Literal["always", "changed", "never"]


def option(
    default: Any,
    help: str,
    *,
    key: Key = "always",
    cli: bool = True,
    label: str | None = None,
    tag: str | None = None,
    **constraints: Any,
) -> Any:
    """A field of an :class:`Options`: ``help`` is the CLI's --help and the workflow schema's
    description; ``key``: whether the value enters the job key (``always``; ``changed``: only
    when it differs from the default, so staging made before the option existed stays valid;
    ``never``: it does not change the output, or the stage records a resolved value of it);
    ``cli``: offered as a command-line option; ``label``: how errors name it (default
    ``--name``); ``tag``: the product tag that records it; ``constraints``: pydantic's (ge, ...).
    """
    extra = {"key": key, "cli": cli, "label": label, "tag": tag}
    return Field(default, description=help, json_schema_extra=extra, **constraints)


def choice(values) -> Any:
    """A ``Literal`` of ``values`` (a tuple or the keys of a dict): the allowed values stay
    where the code that honours them defines them."""
    return Literal[tuple(values)]


class Options(BaseModel):
    """Base of every stage's options: immutable, unknown names refused, one-line errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    @classmethod
    def of(cls, options: Options | None = None, /, **changes: Any) -> Self:
        """``options`` (default: the defaults) with ``changes``, validated; a bad value is a
        :class:`GeoSegError` naming the option, the value and what is allowed."""
        base = options.model_dump(exclude_unset=True) if options is not None else {}
        try:
            return cls(**{**base, **changes})
        except ValidationError as e:
            raise GeoSegError(cls.describe(e)) from None

    @classmethod
    def meta(cls, name: str) -> dict:
        return cls.model_fields[name].json_schema_extra or {}

    @classmethod
    def describe(cls, e: ValidationError) -> str:
        err = e.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else ""
        if name not in cls.model_fields:
            return f"unknown option {name!r}: use one of {', '.join(cls.model_fields)}"
        label = cls.meta(name).get("label") or f"--{name.replace('_', '-')}"
        value = err.get("input")
        if err["type"] == "literal_error":
            allowed = get_args(cls.model_fields[name].annotation)
            return f"unknown {label} {value!r}: use one of {', '.join(map(str, allowed))}"
        return f"invalid {label} {value!r}: {err['msg'].lower()}"

    def key_params(self) -> dict[str, Any]:
        """The values that change the output, for the job key (see :func:`option`)."""
        out = {}
        for name, f in type(self).model_fields.items():
            key = self.meta(name).get("key", "always")
            value = getattr(self, name)
            if key == "always" or (key == "changed" and value != f.default):
                out[name] = value
        return out

    def tags(self) -> dict[str, str]:
        """The product tags of the options that declare one."""
        return {
            t: str(getattr(self, name))
            for name in type(self).model_fields
            if (t := self.meta(name).get("tag"))
        }

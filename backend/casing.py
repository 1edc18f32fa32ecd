"""The camelCase twin of a snake_case msgspec Struct (the API speaks both, one per route family: see
docs/api-casing.md), so the fields two answers share are declared once.

msgspec's `rename` applies only to the fields a class declares itself: a `rename="camel"` subclass of a snake_case
struct still encodes what it inherits in snake_case (msgspec 0.22).
"""

from __future__ import annotations

import inspect
from typing import Any, TypeVar, cast

import msgspec

S = TypeVar("S", bound=msgspec.Struct)


def camel_case(struct: type[S]) -> type[S]:
    """A class decorator: `struct`, a subclass that adds nothing but its name and docstring to the snake_case struct
    it inherits from, made again (`msgspec.defstruct`) on the same base with every field declared on it, the same
    type and default, and `rename="camel"`: its JSON and its OpenAPI schema name every field in camelCase.
    Type checkers see the class as written, which is what it is: the same fields, the same base."""
    twin = msgspec.defstruct(
        struct.__name__,
        [_declared(field) for field in msgspec.structs.fields(struct)],
        bases=struct.__bases__,
        module=struct.__module__,
        namespace={"__doc__": struct.__doc__},
        rename="camel",
    )
    if _parameters(twin) != _parameters(struct):
        raise TypeError(f"{struct.__qualname__}: camel_case takes a struct whose fields are positional")
    return cast("type[S]", twin)


def _declared(field: msgspec.structs.FieldInfo) -> tuple[str, Any, Any]:
    """`field` as `msgspec.defstruct` takes it: name, type and default."""
    if field.default_factory is not msgspec.NODEFAULT:
        return field.name, field.type, msgspec.field(default_factory=field.default_factory)
    return field.name, field.type, msgspec.field() if field.default is msgspec.NODEFAULT else field.default


def _parameters(struct: type[msgspec.Struct]) -> list[tuple[str, object]]:
    return [(parameter.name, parameter.kind) for parameter in inspect.signature(struct).parameters.values()]

"""A tiny name -> factory registry shared by the learning layer's pluggable parts."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from typing import Generic, TypeVar

from deai.learn.errors import UnknownName

__all__ = ["Registry", "parse_call"]

_CALL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*$", re.S)


def parse_call(text: str) -> tuple[str, dict]:
    """``"name"`` or ``"name(k=v, ...)"`` (keyword arguments, Python literals only) -> (name, kwargs)."""
    m = _CALL.match(text)
    if not m:
        raise UnknownName(f"cannot parse {text!r}; expected name or name(key=value, ...)")
    name, args = m.group(1).lower(), m.group(2)
    kwargs: dict = {}
    if args and args.strip():
        try:
            call = ast.parse(f"f({args})", mode="eval").body
            if not isinstance(call, ast.Call) or call.args:
                raise ValueError("only keyword arguments are allowed")
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
        except (SyntaxError, ValueError) as exc:
            raise UnknownName(f"bad arguments {args!r} for {name!r}: {exc}") from exc
    return name, kwargs


T = TypeVar("T")


class Registry(Generic[T]):
    """Maps lower-case names to factories; ``register`` is usable as a class decorator."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            key = name.lower()
            if key in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[key] = factory
            return factory

        return deco

    def get(self, name: str) -> Callable[..., T]:
        try:
            return self._items[name.lower()]
        except KeyError:
            raise UnknownName(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._items

"""The one registry style of deai: a name -> class (or factory) table, filled by a decorator on the class.

Every pluggable part (aggregators, pre-aggregators, attacks, scorers, strategies, partitioners,
models, job kinds, cheating executors) is registered the same way::

    # deai/learn/aggregators/base.py -- the registry lives beside the base class
    AGGREGATORS: Registry[Aggregator] = Registry("aggregator", UnknownName)

    # deai/learn/aggregators/median.py -- declared where the class is defined
    @AGGREGATORS.register("median", "coordinate_median")
    class CoordinateMedian(Aggregator): ...

The package ``__init__`` imports each member module explicitly, so importing the package (or
anything from it) registers all of its members; no caller imports a module for its side effect.
A name may be registered once; a second registration is an error. ``stamp="name"`` writes the
first name onto the class (``cls.name = "median"``), so a class says its name in one place.
A lookup of an unknown name raises the registry's ``error`` type listing the known names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., object])


class Registry(Generic[T]):
    """Names -> factories of ``T``. ``kind`` names the registry in errors; ``error`` is raised by
    :meth:`get` for an unknown name; ``fold_case`` makes names case-insensitive (stored lower-case);
    ``stamp`` is a class attribute set to the first registered name."""

    def __init__(
        self, kind: str, error: type[Exception], *, fold_case: bool = True, stamp: str | None = None
    ) -> None:
        self.kind = kind
        self.error = error
        self.fold_case = fold_case
        self.stamp = stamp
        self._items: dict[str, Callable[..., T]] = {}

    def _key(self, name: str) -> str:
        return name.lower() if self.fold_case else name

    def register(self, name: str, *aliases: str) -> Callable[[F], F]:
        """Decorator: register the class (or factory function) under ``name`` and any ``aliases``."""

        def deco(factory: F) -> F:
            keys = [self._key(n) for n in (name, *aliases)]
            for i, key in enumerate(keys):
                if key in self._items or key in keys[:i]:
                    raise ValueError(f"{self.kind} {key!r} is registered twice")
            if self.stamp is not None:
                setattr(factory, self.stamp, keys[0])
            for key in keys:
                self._items[key] = factory  # type: ignore[assignment]
            return factory

        return deco

    def get(self, name: str) -> Callable[..., T]:
        """The factory registered as ``name``; raises ``error`` naming the known names if none is."""
        try:
            return self._items[self._key(name)]
        except (KeyError, AttributeError):
            raise self.error(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        """Every registered name (aliases included), sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) in self._items

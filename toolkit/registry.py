"""A name -> class registry filled by a class decorator (timm's ``@register_model`` habit).

Methods and detectors each keep one; the CLI builds its ``click.Choice`` lists from them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from toolkit.errors import AdtkError

T = TypeVar("T", bound=type)


class Registry(Generic[T]):
    """Classes by name, in registration order; ``kind`` names them in error messages."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator: make the class available as ``name`` (and set ``cls.name``)."""

        def deco(cls: T) -> T:
            if name in self._classes:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            cls.name = name
            self._classes[name] = cls
            return cls

        return deco

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests register throw-away classes)."""
        self._classes.pop(name, None)

    def names(self) -> list[str]:
        return list(self._classes)

    def get(self, name: str) -> T:
        """The class registered as ``name``; an unknown name is an error listing the known."""
        try:
            return self._classes[name]
        except KeyError:
            known = ", ".join(self.names())
            raise AdtkError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._classes

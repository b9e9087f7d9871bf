"""A tiny name -> factory registry, so methods are looked up by name, never by if/elif chains.

Modelled on torchdistill's ``registry.py``: a decorator registers a callable under a name and one
``get`` raises a ``ValueError`` naming the unknown key and the known ones.
"""
from __future__ import annotations

from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories of one kind (``what`` names that kind in error messages)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@MODELS.register("mlp")`` registers the decorated callable as ``"mlp"``."""

        def decorate(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.what} {name!r} is registered twice")
            self._items[name] = item
            return item

        return decorate

    def get(self, name: str) -> T:
        """The factory registered as ``name``; a ``ValueError`` lists the known names otherwise."""
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise ValueError(f"No {self.what} {name!r} registered (known: {known})") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

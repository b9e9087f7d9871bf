"""A tiny name -> factory registry, so methods are looked up by name, never by if/elif chains.

Modelled on torchdistill's ``registry.py``: a decorator registers a callable under a name and one
``get`` raises a ``ValueError`` naming the unknown key and the known ones.

A registry may be given a ``discover`` callable: the first lookup (``get``, ``names``, ``in``)
calls it once, so plug-ins that live in a higher layer (``kdviz.methods`` registers the engine's
hooks and losses) are loaded on demand without the lower layer importing or naming them.
"""
from __future__ import annotations

from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories of one kind (``what`` names that kind in error messages)."""

    def __init__(self, what: str, discover: Callable[[], None] | None = None) -> None:
        self.what = what
        self._items: dict[str, T] = {}
        self._discover = discover

    def _ensure_discovered(self) -> None:
        if self._discover is not None:
            discover, self._discover = self._discover, None
            try:
                discover()
            except BaseException:
                self._discover = discover  # a failed plug-in import is retried (and reported) next time
                raise

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
        self._ensure_discovered()
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise ValueError(f"No {self.what} {name!r} registered (known: {known})") from None

    def names(self) -> list[str]:
        self._ensure_discovered()
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        """(name, item) pairs in registration order."""
        self._ensure_discovered()
        return list(self._items.items())

    def __contains__(self, name: object) -> bool:
        self._ensure_discovered()
        return name in self._items

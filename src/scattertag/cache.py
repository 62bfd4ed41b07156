"""A small bounded cache: the values that are costly to set up, kept by key, oldest evicted."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path
from typing import Generic, TypeVar

V = TypeVar("V")


class BoundedCache(Generic[V]):
    """At most ``size`` values by key; the least recently used one is evicted first.

    Lookups are safe from several threads (a value may be built twice by racing threads;
    one of them is kept).
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"cache size must be >= 1, got {size}")
        self.size = size
        self._values: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], V]) -> V:
        """The value for ``key``, made by ``build()`` (and stored) if it is not held."""
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
        value = build()
        self.put(key, value)
        return value

    def put(self, key: Hashable, value: V) -> None:
        """Store ``value`` under ``key``, evicting the least recently used beyond ``size``."""
        with self._lock:
            self._values[key] = value
            self._values.move_to_end(key)
            while len(self._values) > self.size:
                self._values.popitem(last=False)

    def __getstate__(self) -> dict:
        """Pickled (handed to worker processes) with its values, without its lock."""
        return {"size": self.size, "values": self.items()}

    def __setstate__(self, state: dict) -> None:
        self.size, self._lock = state["size"], threading.Lock()
        self._values = OrderedDict(state["values"])

    def items(self) -> list[tuple[Hashable, V]]:
        """The (key, value) pairs held, oldest first."""
        with self._lock:
            return list(self._values.items())

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._values


def files_digest(root: Path, paths: Iterable[Path], *versions: str) -> str:
    """blake2b-128 of each file's name (relative to ``root``) and bytes, in order, and of
    ``versions``: the key of a kept result that must be remade when the code or weights
    that made it change."""
    h = hashlib.blake2b(digest_size=16)
    for path in paths:
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    for version in versions:
        h.update(version.encode())
    return h.hexdigest()

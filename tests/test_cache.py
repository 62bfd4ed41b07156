"""The bounded cache: builds once per key, evicts the least recently used."""

import pickle

import pytest

from scattertag.cache import BoundedCache


def test_builds_once_and_evicts_least_recently_used():
    cache: BoundedCache[str] = BoundedCache(2)
    built = []

    def build(key):
        built.append(key)
        return key.upper()

    assert cache.get("a", lambda: build("a")) == "A"
    assert cache.get("b", lambda: build("b")) == "B"
    assert cache.get("a", lambda: build("a")) == "A"  # held: not built again, now most recent
    cache.get("c", lambda: build("c"))  # evicts b, the least recently used
    assert built == ["a", "b", "c"] and "b" not in cache and "a" in cache and len(cache) == 2
    cache.put("d", "D")
    assert [k for k, _ in cache.items()] == ["c", "d"]
    copy = pickle.loads(pickle.dumps(cache))  # handed to worker processes
    assert copy.items() == cache.items() and copy.get("c", lambda: "new") == "C"
    with pytest.raises(ValueError, match="size must be >= 1"):
        BoundedCache(0)

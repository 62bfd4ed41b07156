"""Tag vocabularies: short tags, hierarchical keys and multi-hot vectors.

A *hierarchical key* such as ``features.main.ring: anisotropic`` names what caused a tag
and its details; its *short tag* is the text after the last ``.`` and before any ``:``
(here ``ring``), matched case-insensitively to the vocabulary (``Ring``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

#: The 17 tags of Wang, Yager, Yu and Hoai (WACV 2017), in their (alphabetical) order.
DEFAULT_TAGS: tuple[str, ...] = (
    "BCC",
    "Beam Off Image",
    "Circular Beamstop",
    "Diffuse high-q",
    "Diffuse low-q",
    "FCC",
    "Halo",
    "High background",
    "Higher orders",
    "Linear beamstop",
    "Many rings",
    "Polycrystalline",
    "Ring",
    "Strong scattering",
    "Structure factor",
    "Weak scattering",
    "Wedge beamstop",
)

#: Tags that say something about the sample's structure (docs/tags.md), as opposed to the
#: beamstop, the beam position and the exposure: a frame with no sample signal (zeros, a
#: flat field, a blank frame with its module gaps marked) must get none of them.
STRUCTURAL_TAGS: frozenset[str] = frozenset(
    {"BCC", "Diffuse high-q", "Diffuse low-q", "FCC", "Halo", "Higher orders", "Many rings"}
    | {"Polycrystalline", "Ring", "Structure factor"}
)

#: Grazing-incidence (GISAXS) tags, beyond the reference vocabulary.
GISAXS_TAGS: tuple[str, ...] = ("Horizon", "Yoneda", "Specular rod", "Bragg rods")


def tags_above(
    tags: Sequence[str], scores: np.ndarray, thresholds: float | np.ndarray = 0.5
) -> list[str]:
    """The ``tags`` whose score (T,) reaches its threshold (a scalar or (T,)), in order."""
    return [t for t, on in zip(tags, np.asarray(scores) >= np.asarray(thresholds)) if on]


def short_tag(key: str) -> str:
    """The short tag of a hierarchical key: after the last '.', before any ':'."""
    head = key.split(":", 1)[0]
    return head.rsplit(".", 1)[-1].strip()


@dataclass(frozen=True)
class Vocabulary:
    """An ordered set of tags; multi-hot vectors follow this order."""

    tags: tuple[str, ...] = DEFAULT_TAGS
    _lookup: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tags = tuple(str(t) for t in self.tags)
        lowered = [t.lower() for t in tags]
        if len(set(lowered)) != len(lowered):
            raise ValueError(f"vocabulary has duplicate tags (case-insensitive): {tags}")
        if not tags:
            raise ValueError("vocabulary must have at least one tag")
        object.__setattr__(self, "tags", tags)
        object.__setattr__(self, "_lookup", {t: i for i, t in enumerate(lowered)})

    def __len__(self) -> int:
        return len(self.tags)

    def __iter__(self):
        return iter(self.tags)

    def __contains__(self, tag: object) -> bool:
        return isinstance(tag, str) and tag.strip().lower() in self._lookup

    def index(self, tag: str) -> int:
        """Position of ``tag`` (case-insensitive); ValueError naming the allowed tags."""
        try:
            return self._lookup[tag.strip().lower()]
        except KeyError:
            raise ValueError(f"unknown tag {tag!r}; allowed tags: {', '.join(self.tags)}") from None

    def canonical(self, tag: str) -> str:
        """The vocabulary's own spelling of ``tag``."""
        return self.tags[self.index(tag)]

    def encode(self, tags: Iterable[str]) -> np.ndarray:
        """Multi-hot uint8 vector of shape (len(self),) for the given tags."""
        vector = np.zeros(len(self), dtype=np.uint8)
        for tag in tags:
            vector[self.index(tag)] = 1
        return vector

    def decode(self, vector: np.ndarray, thresholds: float | np.ndarray = 0.5) -> list[str]:
        """Tags whose score reaches the threshold (a scalar or one per tag)."""
        vector = np.asarray(vector)
        if vector.shape != (len(self),):
            raise ValueError(
                f"vector shape {vector.shape} does not match vocabulary size {len(self)}"
            )
        return tags_above(self.tags, vector, thresholds)

    def tags_from_keys(self, keys: Iterable[str] | Mapping[str, object]) -> list[str]:
        """Short tags (vocabulary order, no repeats) of the keys that the vocabulary knows.

        Keys whose short tag is not in the vocabulary carry detail only and are skipped.
        """
        found = {self._lookup[s] for s in (short_tag(k).lower() for k in keys) if s in self._lookup}
        return [self.tags[i] for i in sorted(found)]

    def to_list(self) -> list[str]:
        """JSON-friendly list of tags."""
        return list(self.tags)

    @classmethod
    def from_list(cls, tags: Iterable[str]) -> Vocabulary:
        """Inverse of :meth:`to_list`."""
        return cls(tuple(tags))


DEFAULT_VOCABULARY = Vocabulary(DEFAULT_TAGS)
GISAXS_VOCABULARY = Vocabulary(DEFAULT_TAGS + GISAXS_TAGS)

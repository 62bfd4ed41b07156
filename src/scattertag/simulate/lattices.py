"""Powder peaks of nanoparticle lattices: positions q/q1 and multiplicities.

Reflections are enumerated from Miller indices with each lattice's selection rule, so the
ratios and multiplicities are right by construction:

* BCC (cubic, h + k + l even): q/q1 = sqrt(2), sqrt(4), sqrt(6), ... / sqrt(2)
* FCC (cubic, h, k, l all even or all odd): sqrt(3), sqrt(4), sqrt(8), sqrt(11), ... / sqrt(3)
* hexagonal (2-D lattice of cylinders, |G|^2 ~ h^2 + h k + k^2): 1, sqrt(3), 2, sqrt(7), 3, ...
* lamellar (1-D stack): 1, 2, 3, ...
"""

from __future__ import annotations

from collections import Counter
from functools import cache
from itertools import product

import numpy as np

LATTICES = ("BCC", "FCC", "hexagonal", "lamellar")

#: First-order peak of silver behenate, the usual SAXS calibrant (1/A; d = 58.38 A).
AGBH_Q1 = 0.1076


def _cubic(rule, hmax: int) -> Counter:
    """Multiplicity of each h^2 + k^2 + l^2 over allowed (h, k, l) != 0 with |h|,|k|,|l| <= hmax."""
    rng = range(-hmax, hmax + 1)
    return Counter(
        h * h + k * k + l * l
        for h, k, l in product(rng, rng, rng)
        if (h, k, l) != (0, 0, 0) and rule(h, k, l)
    )


@cache
def reflections(lattice: str, count: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` powder peaks: (q / q1 ratios, multiplicities), both (count,).

    Cached: do not modify the arrays.
    """
    hmax = int(np.ceil(np.sqrt(3 * count))) + 2  # enough shells for ``count`` distinct |G|
    if lattice == "BCC":
        table = _cubic(lambda h, k, l: (h + k + l) % 2 == 0, hmax)
    elif lattice == "FCC":
        table = _cubic(lambda h, k, l: len({h % 2, k % 2, l % 2}) == 1, hmax)
    elif lattice == "hexagonal":
        rng = range(-4 * hmax, 4 * hmax + 1)
        table = Counter(h * h + h * k + k * k for h, k in product(rng, rng) if (h, k) != (0, 0))
    elif lattice == "lamellar":
        table = Counter({n * n: 2 for n in range(1, count + 1)})  # +n and -n
    else:
        raise ValueError(f"unknown lattice {lattice!r}; allowed: {', '.join(LATTICES)}")
    g2 = np.array(sorted(table)[:count], dtype=np.float64)
    mult = np.array([table[int(v)] for v in g2], dtype=np.float64)
    return np.sqrt(g2 / g2[0]), mult

"""Cholesky solves by matrix products, which run without holding Python's GIL.

A symmetric positive definite G (n, n) is factorised once, G = R^T R with R upper
triangular (``scipy.linalg.cho_factor``), and then solved for every frame. SciPy's LAPACK
wrappers (``cho_solve``, ``solve_triangular``) hold the GIL while they work, so threads
preparing frames take turns in them. Here R is cut into a few diagonal blocks, their
inverses are computed once, and both triangular solves are block substitutions made of
NumPy matrix products (BLAS, GIL released):

    R^T y = b:  y_I = R_II^-T (b_I - R_<I,I^T y_<I),  I = 1, 2, ...
    R x = y:    x_I = R_II^-1 (y_I - R_I,>I x_>I),    I = ..., 2, 1.

NumPy releases the GIL in a matrix product only when its result has more than 500
numbers, so a block has at least :data:`MIN_BLOCK` rows (one block below that size: the
solve is then short anyway). Per solve this reads R's triangle and the blocks' inverses,
(n^2 / 2 + n b) numbers for blocks of b rows, in 2 n / b Python steps.
"""

from __future__ import annotations

from functools import cached_property
from itertools import pairwise

import numpy as np
import scipy.linalg

#: Fewest rows of a diagonal block: NumPy keeps the GIL in products of <= 500 numbers.
MIN_BLOCK = 512


class Cholesky:
    """G = R^T R from ``scipy.linalg.cho_factor``'s (c, lower); solves G^-1 b and R^-T b.

    ``c`` (n, n) holds R in its upper triangle, or R^T in its lower one when ``lower``;
    the other triangle is not read. ``c`` is kept, not copied. ``min_block``: fewest rows
    of a diagonal block (see the module docstring).
    """

    def __init__(
        self,
        c: np.ndarray,
        lower: bool,
        min_block: int = MIN_BLOCK,
        inverses: np.ndarray | None = None,
    ) -> None:
        if c.ndim != 2 or c.shape[0] != c.shape[1]:
            raise ValueError(f"a Cholesky factor is square, got shape {c.shape}")
        self.c, self.lower, self.min_block = c, bool(lower), max(1, int(min_block))
        if inverses is not None:  # from :attr:`inverses` (the set-up cache): not computed again
            blocks = self._blocks()
            if inverses.shape != (len(c), max(stop - start for start, stop in blocks)):
                raise ValueError(
                    f"inverses of shape {inverses.shape} do not fit a {c.shape} factor"
                )
            self.__dict__["_diagonal"] = [
                (start, stop, inverses[start:stop, : stop - start]) for start, stop in blocks
            ]

    def _blocks(self) -> list[tuple[int, int]]:
        """(start, stop) of each diagonal block: n // min_block blocks (at least one) of
        b >= min_block rows."""
        n = len(self.c)
        count = max(1, n // self.min_block)
        edges = (np.arange(count + 1) * n // count).tolist()
        return list(pairwise(edges))

    @property
    def inverses(self) -> np.ndarray:
        """(n, b) the diagonal blocks' inverses R_II^-1 stacked by rows, each zero-padded on
        the right to the widest block b: what ``Cholesky(c, lower, inverses=...)`` takes."""
        blocks = self._diagonal
        out = np.zeros((len(self.c), max(stop - start for start, stop, _ in blocks)))
        for start, stop, inverse in blocks:
            out[start:stop, : stop - start] = inverse
        return out

    @property
    def R(self) -> np.ndarray:
        """(n, n) view whose upper triangle is R (G = R^T R)."""
        return self.c.T if self.lower else self.c

    @cached_property
    def _diagonal(self) -> list[tuple[int, int, np.ndarray]]:
        """(start, stop, R_II^-1) of each diagonal block, computed once (~n b^2 / 3 flops, GIL
        held)."""
        R = self.R
        out = []
        for start, stop in self._blocks():
            inverse, info = scipy.linalg.lapack.dtrtri(R[start:stop, start:stop], lower=0)
            if info != 0:
                raise np.linalg.LinAlgError(f"Cholesky factor singular at row {start + info - 1}")
            out.append((start, stop, np.triu(inverse)))
        return out

    def whiten(self, b: np.ndarray) -> np.ndarray:
        """(n,) or (n, B) R^-T b, so that ||R^-T b||^2 = b^T G^-1 b."""
        R, b = self.R, np.asarray(b, dtype=np.float64)
        y = np.empty_like(b)
        for start, stop, inverse in self._diagonal:
            y[start:stop] = inverse.T @ (b[start:stop] - R[:start, start:stop].T @ y[:start])
        return y

    def back(self, y: np.ndarray) -> np.ndarray:
        """(n,) or (n, B) R^-1 y, the second half of :meth:`solve`."""
        R, y = self.R, np.asarray(y, dtype=np.float64)
        x = np.empty_like(y)
        for start, stop, inverse in reversed(self._diagonal):
            x[start:stop] = inverse @ (y[start:stop] - R[start:stop, stop:] @ x[stop:])
        return x

    def solve(self, b: np.ndarray) -> np.ndarray:
        """(n,) or (n, B) G^-1 b = R^-1 R^-T b."""
        return self.back(self.whiten(b))

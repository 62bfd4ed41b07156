"""Cholesky solves by matrix products, which run without holding Python's GIL.

A symmetric positive definite G (n, n) is factorised once, G = R^T R with R upper
triangular (``scipy.linalg.cho_factor``), and then solved for every frame. SciPy's LAPACK
wrappers (``cho_solve``, ``solve_triangular``) hold the GIL while they work, so threads
preparing frames take turns in them. Here R is cut into a few diagonal blocks, their
inverses are computed once, and both triangular solves are block substitutions made of
NumPy matrix products (BLAS, GIL released):

    R^T y = b:  y_I = R_II^-T (b_I - sum_{J<I} R_JI^T y_J),  I = 1, 2, ...
    R x = y:    x_I = R_II^-1 (y_I - R_I,>I x_>I),           I = ..., 2, 1.

Only what these read is kept, as one panel per block row: R_II^-1 (b, b) beside R_I,>I, so
n^2 / 2 + n b / 2 numbers (~21 MB in float64 at n = 1984) instead of the square factor and
the inverses (~42 MB); the panels lie end to end in one array (:attr:`Cholesky.packed`),
which the set-up cache stores and maps back. The panels keep the factor's type: a float32
factor (LAPACK's ``spotrf``, ~2x faster than ``dpotrf``) is solved in float32, half the
bytes read per solve; its solutions carry a relative error ~cond(G) 6e-8. NumPy releases
the GIL in a matrix product only when its result has more than 500 numbers, so a block has
at least :data:`MIN_BLOCK` rows (one block below that size: the solve is then short
anyway). Per solve this reads the panels once, in 2 n / b Python steps.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import scipy.linalg

#: Fewest rows of a diagonal block: NumPy keeps the GIL in products of <= 500 numbers.
MIN_BLOCK = 512


class Cholesky:
    """G = R^T R from ``scipy.linalg.cho_factor``'s (c, lower); solves G^-1 b and R^-T b.

    ``c`` (n, n), float32 or float64, holds R in its upper triangle, or R^T in its lower one
    when ``lower``; the other triangle is not read, and ``c`` is not kept (the panels of the
    module docstring are, in ``c``'s type: solves run and return in it).
    ``min_block``: fewest rows of a diagonal block.
    """

    def __init__(self, c: np.ndarray, lower: bool, min_block: int = MIN_BLOCK) -> None:
        if c.ndim != 2 or c.shape[0] != c.shape[1]:
            raise ValueError(f"a Cholesky factor is square, got shape {c.shape}")
        self.n, self.min_block = len(c), max(1, int(min_block))
        R = c.T if lower else c
        dtype = np.float32 if c.dtype == np.float32 else np.float64
        (trtri,) = scipy.linalg.lapack.get_lapack_funcs(("trtri",), dtype=dtype)
        blocks = self._blocks()
        size = sum((stop - start) * (self.n - start) for start, stop in blocks)
        self._unpack(np.empty(size, dtype))
        for (start, stop), (_, _, panel) in zip(blocks, self._panels):
            inverse, info = trtri(R[start:stop, start:stop], lower=0)
            if info != 0:
                raise np.linalg.LinAlgError(f"Cholesky factor singular at row {start + info - 1}")
            panel[:, : stop - start] = np.triu(inverse)  # written in place: no copies of panels
            panel[:, stop - start :] = R[start:stop, stop:]

    @classmethod
    def from_packed(cls, packed: np.ndarray, n: int, min_block: int = MIN_BLOCK) -> Cholesky:
        """The factor whose :attr:`packed` panels (of an (n, n) G) are ``packed`` (kept, not
        copied: e.g. mapped from the set-up cache)."""
        factor = cls.__new__(cls)
        factor.n, factor.min_block = int(n), max(1, int(min_block))
        size = sum((stop - start) * (factor.n - start) for start, stop in factor._blocks())
        if packed.dtype not in (np.float32, np.float64) or packed.shape != (size,):
            raise ValueError(
                f"packed panels of shape {packed.shape} and type {packed.dtype} do not fit a "
                f"{n} x {n} factor"
            )
        factor._unpack(packed)
        return factor

    def _unpack(self, packed: np.ndarray) -> None:
        """Views of the panels (start, stop, (b, n - start) panel) in the ``packed`` array."""
        self.packed = packed
        self._panels: list[tuple[int, int, np.ndarray]] = []
        offset = 0
        for start, stop in self._blocks():
            size = (stop - start) * (self.n - start)
            panel = packed[offset : offset + size].reshape(stop - start, self.n - start)
            self._panels.append((start, stop, panel))
            offset += size

    def _blocks(self) -> list[tuple[int, int]]:
        """(start, stop) of each diagonal block: n // min_block blocks (at least one) of
        b >= min_block rows."""
        count = max(1, self.n // self.min_block)
        edges = (np.arange(count + 1) * self.n // count).tolist()
        return list(pairwise(edges))

    @property
    def dtype(self) -> np.dtype:
        """float32 or float64: the panels' type, in which solves run and return."""
        return self.packed.dtype

    @property
    def R(self) -> np.ndarray:
        """(n, n) upper triangular R (G = R^T R), rebuilt from the panels (a copy)."""
        R = np.zeros((self.n, self.n), self.dtype)
        (trtri,) = scipy.linalg.lapack.get_lapack_funcs(("trtri",), dtype=self.dtype)
        for start, stop, panel in self._panels:
            b = stop - start
            R[start:stop, start:stop] = np.triu(trtri(panel[:, :b])[0])
            R[start:stop, stop:] = panel[:, b:]
        return R

    def whiten(self, b: np.ndarray) -> np.ndarray:
        """(n,) or (n, B) R^-T b, so that ||R^-T b||^2 = b^T G^-1 b."""
        b = np.asarray(b, dtype=self.dtype)
        y = np.empty_like(b)
        for i, (start, stop, panel) in enumerate(self._panels):
            rest = b[start:stop]
            for above, end, upper in self._panels[:i]:  # R_JI of the panels above
                rest = rest - upper[:, start - above : stop - above].T @ y[above:end]
            y[start:stop] = panel[:, : stop - start].T @ rest
        return y

    def back(self, y: np.ndarray) -> np.ndarray:
        """(n,) or (n, B) R^-1 y, the second half of :meth:`solve`."""
        y = np.asarray(y, dtype=self.dtype)
        x = np.empty_like(y)
        for start, stop, panel in reversed(self._panels):
            b = stop - start
            x[start:stop] = panel[:, :b] @ (y[start:stop] - panel[:, b:] @ x[stop:])
        return x

    def solve(self, b: np.ndarray) -> np.ndarray:
        """(n,) or (n, B) G^-1 b = R^-1 R^-T b."""
        return self.back(self.whiten(b))

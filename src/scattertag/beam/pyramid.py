"""The frame's valid pixels and its pyramid of log block means, the levels every estimator reads.

A level (:class:`Level`) holds g = log(1 + block mean of the valid counts) over blocks of
b x b pixels, its validity, its lit blocks (valid and outside beamstop shadows darker than
1 / DARK_RATIO of the 20th percentile) and, computed once when asked, the smoothed g, its
gradient and its interiors. :func:`pyramid` builds a frame's coarse, fine and ring levels,
nested; :func:`window_level` builds one level over a window only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, TypeVar

import numpy as np

from scattertag.beam.boxes import box_all, dilate_cross
from scattertag.beam.gaussian import gaussian
from scattertag.beam.grid import BlockGrid, exact_block_sums
from scattertag.beam.grid import block_sums as block_sums  # re-exported: polish, fallbacks
from scattertag.beam.order_stats import percentile
from scattertag.beam.radial import Pixels
from scattertag.beam.radial import pixels as pixels_of
from scattertag.beam.shadow import Shadows, find_shadows
from scattertag.io import masks

T = TypeVar("T")

#: Largest side of the coarse level (pixels) and of the refinement level.
COARSE_SIDE, FINE_SIDE = 128, 256
#: Largest side of the level on which rings and arcs are traced (pixels).
RING_SIDE = 256
#: Smallest side kept at the coarse and the other levels when a frame is a long strip.
MIN_COARSE_SIDE, MIN_FINE_SIDE = 32, 96
#: The levels' Gaussian smoothing reaches this many of its sigmas.
SMOOTH_TRUNCATE = 3.0
#: Blocks this many times darker than the frame's 20th percentile are beamstop shadow.
DARK_RATIO = 30.0


def valid_counts(
    counts: np.ndarray, valid: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """(:func:`valid_pixels`, the counts with invalid pixels 0 or None): integer counts are
    zeroed once here, for the saturation test (max and mean of the valid pixels without
    copying them out) and for the pyramid's block sums (:func:`pyramid`)."""
    counts = np.asarray(counts)
    if counts.ndim != 2:
        raise ValueError(f"counts must be a 2-D frame (rows, cols), got shape {counts.shape}")
    if valid is not None and np.shape(valid) != counts.shape:
        raise ValueError(f"valid has shape {np.shape(valid)}, counts {counts.shape}")
    ok = masks.valid_pixels(counts, None if valid is None else np.asarray(valid, dtype=bool))
    if not ok.any():
        return ok, None
    zeroed = None
    if counts.dtype.kind in "iu":  # valid counts >= 0: the zeroed frame's max is theirs
        vals = zeroed = counts if ok.all() else counts * ok  # integers: where(ok, counts, 0)
        top = zeroed.max()
    else:
        vals = counts.ravel() if ok.all() else counts[ok]  # no 1-per-pixel copy when all valid
        top = vals.max()
    # the maximum's count first (1 in 8 frames of 1000 px holds 4): the mean only then
    if np.count_nonzero(vals == top) >= 4 and top > 20.0 * _valid_mean(counts, ok, vals, top) + 1.0:
        sat = counts == top  # the saturated pixels (the compare over the frame only then)
        ok &= ~sat
        if zeroed is not None:
            zeroed = np.where(sat, 0, zeroed)
    return ok, zeroed


def _valid_mean(counts: np.ndarray, ok: np.ndarray, vals: np.ndarray, top: Any) -> float:
    """The mean of the valid counts: ``vals`` the valid values (floats) or the counts with
    invalid pixels 0 (integers, whose sum is exact in uint64 and, under 2^53, as a float);
    ``top`` their maximum."""
    if counts.dtype.kind not in "iu":
        return float(vals.mean())
    n = np.count_nonzero(ok)
    if float(top) * n < 2.0**53:  # integer sums under 2^53 are the float64 sums, exactly
        return float(np.sum(vals, dtype=np.uint64)) / n
    return float(counts[ok].mean())


@dataclass(frozen=True)
class Level(BlockGrid):
    """One pyramid level: log image, validity, and its block size b in frame pixels.

    A level pixel (i, j) covers frame pixels [b i, b i + b) x [b j, b j + b); its centre is
    frame pixel (b j + (b - 1) / 2, b i + (b - 1) / 2) in (x, y).
    """

    g: np.ndarray  # (R, C) float64, log(1 + mean counts), 0 where invalid
    ok: np.ndarray  # (R, C) bool, valid
    lit: np.ndarray  # (R, C) bool, valid and not in a beamstop's shadow
    dark: np.ndarray  # (R, C) bool, valid and in a beamstop's shadow (before widening)
    b: int
    sigma: float  # smoothing (level pixels) of the derivatives
    #: block sums of counts and of valid pixels at b // 2 (the polish level's, :func:`polish`),
    #: kept by the ring level when the pyramid went through them on its way (b even), else
    #: None; whole numbers in an unsigned integer type where the counts are
    #: (:func:`exact_block_sums`, which :func:`level_from_sums` reads faster)
    finer: tuple[np.ndarray, np.ndarray] | None = field(default=None, compare=False, repr=False)
    #: (rows, cols) slices when only that box of the level was built (:func:`window_level`):
    #: g, ok, lit and dark are 0 / False outside it, and the smoothing, its gradient and the
    #: interiors are computed over the box alone (right from :func:`_window_margin` inside it)
    window: tuple[slice, slice] | None = field(default=None, compare=False, repr=False)
    _inner: dict = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def smooth(self) -> np.ndarray:
        """(R, C) g smoothed over the lit pixels (Gaussian, ``sigma``)."""
        if self.window is None:
            return _smooth(self.g, self.lit, self.sigma)
        box = self.window
        return _embed(_smooth(self.g[box], self.lit[box], self.sigma), self.g.shape, box)

    @cached_property
    def means(self) -> np.ndarray:
        """(R, C) the blocks' mean counts back from g, expm1(g) (0 where invalid): taken once
        for the shadows and the dark floors of the fallbacks (~25 ns a value), from the
        table g was read from where it was (:func:`_log_means`)."""
        logs = self.held("logs")
        return np.expm1(self.g) if logs is None else logs.expm1(self.g)

    @cached_property
    def grad(self) -> tuple[np.ndarray, np.ndarray]:
        """(dg/dy, dg/dx) of the smoothed g, each (R, C), per level pixel."""
        if self.window is None:
            gy, gx = central_differences(self.smooth)
        elif min(self.g[self.window].shape) < 2:  # a window off the level: nothing to read
            gy, gx = np.zeros(self.g.shape), np.zeros(self.g.shape)
        else:
            box = self.window
            gy, gx = (_embed(d, self.g.shape, box) for d in central_differences(self.smooth[box]))
        return gy, gx

    @cached_property
    def smooth_grad(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The smoothed g and its d/dx and d/dy, each (R, C) (:attr:`smooth`, :attr:`grad`)."""
        gy, gx = self.grad
        return self.smooth, gx, gy

    def kept(self, key: Hashable, make: Callable[[], T]) -> T:
        """``make()``, computed once a level under ``key`` (what several estimators read)."""
        if key not in self._inner:
            self._inner[key] = make()
        return self._inner[key]

    def held(self, key: Hashable) -> Any:
        """The value :meth:`kept` under ``key``, or None when nothing computed it yet."""
        return self._inner.get(key)

    def shadows(self, side: int) -> Shadows:
        """The level's beamstop shadows (:func:`find_shadows`, ``side`` the frame's longer
        side in pixels), found once for the candidates and the glow fallback."""
        return self.kept(
            ("shadows", side), lambda: find_shadows(self.g, self.ok, self.b, side, self.means)
        )

    def interior(self, width: int) -> np.ndarray:
        """(R, C) bool: lit pixels whose (2 width + 1)^2 neighbourhood is lit and on the frame."""
        if width not in self._inner:
            narrower = self._inner.get(width - 1) if width >= 2 else None
            if self.window is None and narrower is not None:
                # a (2 width + 1)^2 box is a (2 width - 1)^2 box grown by 3 x 3: the same pixels
                self._inner[width] = box_all(narrower, 1)
            elif self.window is None:
                self._inner[width] = box_all(self.lit, width)
            else:
                box = self.window
                self._inner[width] = _embed(box_all(self.lit[box], width), self.lit.shape, box)
        return self._inner[width]


def _embed(a: np.ndarray, shape: tuple[int, ...], box: tuple[slice, slice]) -> np.ndarray:
    """``a`` (the box's shape) placed at ``box`` in an array of ``shape``, zero elsewhere."""
    out = np.zeros(shape, a.dtype)
    out[box] = a
    return out


def dark_floor(mean: np.ndarray) -> float:
    """Mean counts under which a block is in a beamstop's shadow: 1/DARK_RATIO of the 20th
    percentile of ``mean`` (N,), the valid blocks' mean counts."""
    return percentile(mean, 20) / DARK_RATIO


def level_from_sums(
    sums: np.ndarray, n: np.ndarray, b: int, sigma: float, floor: float | None = None
) -> Level:
    """A level from block sums of counts and of valid pixels; a block is valid if half is.

    Blocks darker than ``floor`` (default :func:`dark_floor` of the valid blocks: beamstop
    shadows, 1e-3 to 1e-5 transmission), widened by 2 blocks, are left out of ``lit``.
    """
    ok = n >= 0.5 * (b * b)
    full = sums / np.maximum(n, 1.0)  # a valid block's mean (it holds at least one pixel)
    g, logs = _log_means(sums, n, full, ok, b)
    mean = full.ravel() if ok.all() else full[ok]
    lit = ok.copy()
    dark = np.zeros_like(ok)
    if mean.size:
        floor = dark_floor(mean) if floor is None else floor
        np.less(full, floor, out=dark, where=ok)
        if dark.any():
            lit &= ~dilate_cross(dark, 2)
    return Level(g, ok, lit, dark, b, sigma, _inner={} if logs is None else {"logs": logs})


@dataclass(frozen=True)
class _LogTable:
    """How :func:`_log_means` took g: ``table`` (K,) log1p(k / b^2) of every whole sum k up to
    K - 1, ``at`` (R, C) each block's sum (clipped to K - 1) and ``used`` (R, C) bool the
    blocks that read the table (None: all of them); the rest took log1p directly."""

    table: np.ndarray
    at: np.ndarray
    used: np.ndarray | None

    def expm1(self, g: np.ndarray) -> np.ndarray:
        """expm1(g), (R, C), the same floats: expm1 of the table read where g was."""
        out = np.expm1(self.table).take(self.at)
        if self.used is not None:
            np.expm1(g, out=out, where=~self.used)
        return out


def _log_means(
    sums: np.ndarray, n: np.ndarray, full: np.ndarray, ok: np.ndarray, b: int
) -> tuple[np.ndarray, _LogTable | None]:
    """(R, C) g = log1p(``full``) on the valid blocks ``ok``, 0 elsewhere, from the blocks'
    sums of counts and of valid pixels, and the table it read (None: none). Where the sums
    are whole (an unsigned integer type: :func:`exact_block_sums`) a block of b^2 valid
    pixels whose counts sum to k has the mean k / b^2: those with k up to a quarter of the
    blocks' number read log1p(k / b^2) from a table of every such k (the same division and
    log1p: the same float; a table entry costs one log1p, ~25 ns, a block a gather), the
    others take it directly."""
    if not (sums.dtype.kind == "u" and n.dtype.kind == "u" and sums.size >= 1024):
        g = np.zeros(sums.shape)
        np.log1p(full, out=g, where=ok)  # whole arrays, no masked gathers and scatters
        return g, None
    top = min(int(sums.max()), sums.size // 4)
    used = n == b * b
    used &= sums <= top
    at = np.minimum(sums, top)
    table = np.log1p(np.arange(top + 1) / float(b * b))
    g = table.take(at)
    if used.all():
        return g, _LogTable(table, at, None)
    np.copyto(g, 0.0, where=~used)
    np.log1p(full, out=g, where=ok & ~used)
    return g, _LogTable(table, at, used)


def sums_floor(sums: np.ndarray, n: np.ndarray, b: int) -> float | None:
    """:func:`dark_floor` of the valid blocks of b x b pixels with these block sums of counts
    and of valid pixels (what :func:`level_from_sums` takes when given none); None if none
    is valid."""
    valid = n >= 0.5 * (b * b)
    return dark_floor(sums[valid] / n[valid]) if valid.any() else None


def _window_margin(sigma: float) -> int:
    """Level pixels by which a window level (:func:`window_level`) is built beyond where it
    is read: the shadows' widening (2), the smoothing's reach and the gradient's (1)."""
    return 2 + int(SMOOTH_TRUNCATE * sigma + 0.5) + 1  # scipy's Gaussian reaches int(t s + 0.5)


def window_level(
    sums: np.ndarray,
    n: np.ndarray,
    b: int,
    sigma: float,
    x: float,
    y: float,
    reach: float,
    floor: float | None = None,
) -> Level:
    """The level of :func:`level_from_sums` (the shadows' floor that of all its blocks:
    ``floor``, :func:`sums_floor` of ``sums`` and ``n``, taken here when None) built only
    over the square of ``reach`` level pixels about (x, y) and :func:`_window_margin`
    beyond it (:attr:`Level.window`): its maps there are the whole level's, value for
    value, at a fraction of the cost (the fine polish reads 8 % of a 500 x 500 level's
    side about one point)."""
    rows, cols = sums.shape
    half = math.ceil(reach) + _window_margin(sigma)
    i, j = math.floor(y), math.floor(x)
    box = (
        slice(min(max(i - half, 0), rows), min(max(i + half + 2, 0), rows)),
        slice(min(max(j - half, 0), cols), min(max(j + half + 2, 0), cols)),
    )
    if floor is None:
        floor = sums_floor(sums, n, b)
    part = level_from_sums(sums[box], n[box], b, sigma, floor)
    g, ok, lit, dark = (_embed(a, sums.shape, box) for a in (part.g, part.ok, part.lit, part.dark))
    return Level(g, ok, lit, dark, b, sigma, window=box)


def reduction(side: int, short: int, target: int, min_short: int) -> int:
    """Block size bringing ``side`` to at most ``target`` while ``short`` keeps ``min_short``."""
    return max(1, min(math.ceil(side / target), short // min_short))


def pyramid(
    counts: np.ndarray, ok: np.ndarray, zeroed: np.ndarray | None = None
) -> tuple[Level, Level, Level]:
    """(coarse, fine, ring) levels, nested: ring at most RING_SIDE a side, fine at most
    FINE_SIDE, coarse at most COARSE_SIDE; long strips keep their short side. ``zeroed``:
    the counts with invalid pixels 0 (:func:`valid_counts`), made here when None."""
    side, short = max(counts.shape), min(counts.shape)
    b_ring = reduction(side, short, RING_SIDE, MIN_FINE_SIDE)
    k_fine = reduction(side // b_ring, short // b_ring, FINE_SIDE, MIN_FINE_SIDE)
    b_fine = b_ring * k_fine
    k = reduction(side // b_fine, short // b_fine, COARSE_SIDE, MIN_COARSE_SIDE)
    c = np.where(ok, counts, 0) if zeroed is None else zeroed  # not counts * ok: NaN * 0
    finer = None
    # each level summed from the one below in integers where the counts are whole
    # (exact_block_sums: the same values as float64 sums, without float passes)
    if b_ring % 2 == 0:  # through the polish level's sums (b_ring / 2), kept for polish
        half = b_ring // 2
        sums, n = exact_block_sums(c, half), exact_block_sums(ok, half)
        finer = (sums, n)
        sums, n = exact_block_sums(sums, 2), exact_block_sums(n, 2)
    else:
        sums, n = exact_block_sums(c, b_ring), exact_block_sums(ok, b_ring)
    ring = replace(level_from_sums(sums, n, b_ring, 1.5), finer=finer)
    if k_fine > 1:
        sums, n = exact_block_sums(sums, k_fine), exact_block_sums(n, k_fine)
        fine = level_from_sums(sums, n, b_fine, 1.5)
    else:
        fine = ring
    coarse = fine
    if k > 1:
        sums, n = exact_block_sums(sums, k), exact_block_sums(n, k)
        coarse = level_from_sums(sums, n, b_fine * k, 1.0)
    return coarse, fine, ring


def central_differences(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(d/dy, d/dx) of float64 ``a`` (R, C) as ``np.gradient(a)`` takes them, the same floats:
    (a[i + 1] - a[i - 1]) / 2 inside, one-sided differences at the border; written into
    the outputs (np.gradient's copies and generic slicing cost ~a third of its time)."""
    if min(a.shape) < 3 or a.dtype != np.float64:
        gy, gx = np.gradient(a)
        return gy, gx
    gy, gx = np.empty_like(a), np.empty_like(a)
    np.subtract(a[2:], a[:-2], out=gy[1:-1])
    gy[1:-1] /= 2.0
    np.subtract(a[1], a[0], out=gy[0])
    np.subtract(a[-1], a[-2], out=gy[-1])
    np.subtract(a[:, 2:], a[:, :-2], out=gx[:, 1:-1])
    gx[:, 1:-1] /= 2.0
    np.subtract(a[:, 1], a[:, 0], out=gx[:, 0])
    np.subtract(a[:, -1], a[:, -2], out=gx[:, -1])
    return gy, gx


#: The smoothed all-lit mask (its normaliser, with its floor at 1e-3) by (shape, sigma):
#: a level whose pixels are all lit divides by the same array, frame after frame.
_FULL_DEN: dict[tuple[tuple[int, ...], float], np.ndarray] = {}


def _gaussian(a: np.ndarray, sigma: float) -> np.ndarray:
    """The levels' Gaussian smoothing of ``a``: ``sigma`` level px, 0 beyond the border."""
    return gaussian(a, sigma, mode="constant", truncate=SMOOTH_TRUNCATE)


def _full_den(shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """max(smoothed ones, 1e-3) of ``shape`` (read-only, computed once a shape and sigma):
    :func:`_smooth`'s normaliser where every pixel is lit, all over 1e-3 (sigma <= 5)."""
    key = (shape, sigma)
    den = _FULL_DEN.get(key)
    if den is None:
        den = np.maximum(_gaussian(np.ones(shape), sigma), 1e-3)
        den.flags.writeable = False
        if len(_FULL_DEN) >= 16:  # a few level shapes recur; a new one now and then
            _FULL_DEN.clear()
        _FULL_DEN[key] = den
    return den


def _smooth(g: np.ndarray, use: np.ndarray, sigma: float) -> np.ndarray:
    """(R, C) Gaussian-smoothed g over the pixels ``use``, normalised by their smoothed count
    (0 where that count is under 1e-3)."""
    if use.all() and sigma <= 5.0:  # g * 1.0 is g; the normaliser is the same every frame
        num = _gaussian(g, sigma)
        num /= _full_den(g.shape, sigma)
        return num
    m = use.astype(np.float64)
    num = _gaussian(g * m, sigma)
    den = _gaussian(m, sigma)
    num /= np.maximum(den, 1e-3)  # in place: where(den > 1e-3, num / max(den, 1e-3), 0)
    np.copyto(num, 0.0, where=den <= 1e-3)
    return num


def pixels(level: Level, keep: int = 20000, use: np.ndarray | None = None) -> Pixels:
    """At most ``keep`` lit pixels of the level (and of ``use``, (R, C) bool), evenly strided;
    those of the whole level are taken once per level (candidates and fallbacks share them)."""
    if use is None:
        return level.kept(("pixels", keep), lambda: pixels(level, keep, level.lit))
    k = np.flatnonzero(level.lit if use is level.lit else level.lit & use)  # row-major
    if k.size > keep:
        k = k[np.linspace(0, k.size - 1, keep).astype(np.int64)]
    iy, ix = np.divmod(k, level.g.shape[1])  # of the kept pixels only
    return pixels_of(ix.astype(np.float64), iy.astype(np.float64), level.g.ravel().take(k))

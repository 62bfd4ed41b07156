"""Beamstop shadows on a level of blocks: where they are and where their tips point.

A beamstop's shadow is the blocks much darker than the mean about them (:func:`shadow_mask`),
counted above the frame's floor (an integrating detector's offset); its connected parts,
the largest of them and their long axes (:func:`largest_shadows`), and the tip of each
long one with the axis from it into the shadow (:func:`shadow_tips`, :func:`held_tips`,
:func:`tip_starts`: where a bar's round end would have its centre). The fits of a stop's
shape to the edge of its shadow read these: circles (:mod:`scattertag.beam.disks`), a
bar's round end and a long stop's midline (:mod:`scattertag.beam.bars`), traced with
:mod:`scattertag.beam.edges`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from scattertag.beam.boxes import EdgeDistance, close_cross, nonzero2d
from scattertag.beam.gaussian import gaussian
from scattertag.beam.grid import block_sums
from scattertag.beam.order_stats import median, percentile

#: A shadow block is darker than the mean about it by this much in log(1 + counts - floor).
CONTRAST = 1.0
#: Counts a block of the light is read as where a pixel's cannot show CONTRAST at all
#: (:func:`count_scale`; where the block holds that many).
LIGHT_COUNTS = 10.0
#: Reach (Gaussian sigma, fraction of the frame's longer side) of the mean a shadow block
#: is compared with.
REACH = 0.04
#: Largest beamstop radius (fraction of the frame's longer side).
MAX_RADIUS = 0.1
#: A shadow's end nearer the level's border is fitted as a bar's end too
#: (:func:`tip_starts`) when it stops at least this many blocks short of the border.
FREE_END = 3.0
#: A held stop's shadow runs from its tip toward the level's border: its other end lies at
#: most this fraction of the tip's distance from the border (:func:`held_tips`).
HELD_BORDER = 0.5


def shadow_mask(mean: np.ndarray, valid: np.ndarray, reach: float, b: int = 1) -> np.ndarray:
    """(R, C) bool: valid blocks at least CONTRAST darker, in h = log(1 + mean - floor)
    averaged over 3 x 3 blocks, than the mean of h about them over the unshadowed blocks
    (Gaussian of ``reach`` blocks, two passes).

    mean: (R, C) mean counts of the blocks of b x b pixels; floor, the 0.5th percentile of
    the valid blocks, is the counts a shadow keeps whatever the light (an integrating
    detector's offset, dark counts); a beamstop's shadow stands out, the slope of a steep
    pattern does not. On a weak frame the counts are read per block (:func:`count_scale`).
    """
    floor = percentile(mean[valid], 0.5)
    excess = np.maximum(mean - floor, 0.0)
    h = np.log1p(excess * count_scale(excess[valid], b))
    m = valid.astype(np.float64)
    hs = ndimage.uniform_filter(h * m, 3) / np.maximum(ndimage.uniform_filter(m, 3), 1e-3)
    dark = np.zeros_like(valid)
    k = max(1, int(reach // 2))  # the wide mean on blocks of k x k: it is smooth
    for _ in range(2):
        dark = valid & (hs < _local_mean(h, valid & ~dark, reach / k, k) - CONTRAST)
        if not dark.any():
            break  # a second pass would average the same blocks: the same (empty) mask
    return dark


def count_scale(excess: np.ndarray, b: int) -> float:
    """The factor the valid blocks' counts a pixel over the floor, ``excess`` (N,), are read
    at: 1, or where the light (their median) is under e^CONTRAST - 1 counts a pixel, so that
    no block can be CONTRAST darker in log(1 + counts a pixel) however dark, the factor
    LIGHT_COUNTS / light that reads the light as LIGHT_COUNTS counts, where a block of b x b
    pixels holds that many (Poisson: a block lit at LIGHT_COUNTS varies by +-0.3 in
    log(1 + counts), over 3 x 3 blocks by +-0.1, well under CONTRAST; fewer tell no shadow
    from noise)."""
    weak = math.expm1(CONTRAST)
    if 2 * np.count_nonzero(excess < weak) <= excess.size:
        return 1.0  # the light reaches it (no median taken: most frames)
    light = float(median(excess))
    if not 0.0 < light < weak or light * b * b < LIGHT_COUNTS:
        return 1.0
    return LIGHT_COUNTS / light


def _local_mean(h: np.ndarray, use: np.ndarray, sigma: float, k: int) -> np.ndarray:
    """(R, C) Gaussian mean (``sigma`` in units of k blocks) of h over the blocks ``use``,
    computed on k x k blocks and spread back to the blocks (nearest)."""
    m = use.astype(np.float64)
    rows, cols = h.shape
    if k > 1:
        hm = h * m
        if rows % k or cols % k:
            pad = ((0, -rows % k), (0, -cols % k))
            hm, m = np.pad(hm, pad), np.pad(m, pad)
        hm, m = block_sums(hm, k), block_sums(m, k)
    else:
        hm = h * m
    num = gaussian(hm, sigma, mode="constant", truncate=3.0)
    den = gaussian(m, sigma, mode="constant", truncate=3.0)
    out = num / np.maximum(den, 1e-3 * k * k)
    if k > 1:
        out = np.repeat(np.repeat(out, k, axis=0), k, axis=1)[:rows, :cols]
    return out


@dataclass(frozen=True)
class Shadows:
    """Beamstop shadows on a level of b x b frame-pixel blocks: ``bright`` (R, C) bool the
    valid blocks outside them, ``label`` (R, C) int numbering the shadows' connected parts
    1..count (0 elsewhere; a detector gap across a shadow is part of it)."""

    bright: np.ndarray
    label: np.ndarray
    count: int
    b: int
    _largest: dict = field(default_factory=dict, compare=False, repr=False)


def find_shadows(
    g: np.ndarray, valid: np.ndarray, b: int, side: int, mean: np.ndarray | None = None
) -> Shadows:
    """The shadows (:func:`shadow_mask`) of a level: g, valid (R, C) log(1 + mean counts)
    of b x b blocks and which are valid; ``side`` the frame's longer side (pixels);
    ``mean`` expm1(g) when the caller holds it."""
    reach = max(3.0, REACH * side / b)
    dark = shadow_mask(np.expm1(g) if mean is None else mean, valid, reach, b)
    bright = valid & ~dark
    if not dark.any() or not bright.any():
        return Shadows(bright, np.zeros(dark.shape, np.int32), 0, b)
    # a shadow crossed by a detector gap stays one shadow
    dark |= ~valid & close_cross(dark, 2)
    lab, n = ndimage.label(dark, structure=np.ones((3, 3), bool))
    return Shadows(bright, lab, int(n), b)


def largest_shadows(
    shadows: Shadows, most: int = 3
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(iy, ix, v) of each of the ``most`` largest shadows of at least 6 blocks, largest
    first: its blocks' rows and columns, and v = (vx, vy) the unit vector along its long
    axis (the principal axis of the blocks' positions). Found once per ``shadows``."""
    lab = shadows.label
    if shadows.count == 0:
        return []
    if most in shadows._largest:  # the axes, the bar tips and the glow ask for them
        return shadows._largest[most]
    sizes = np.bincount(lab.ravel(), minlength=shadows.count + 1)[1:]
    out = []
    for k in np.argsort(-sizes)[:most]:
        if sizes[k] < 6:
            break
        iy, ix = nonzero2d(lab == k + 1)
        x, y = ix - ix.mean(), iy - iy.mean()
        out.append((iy, ix, np.linalg.eigh(np.cov(np.stack([x, y])))[1][:, 1]))
    shadows._largest[most] = out
    return out


def shadow_tips(shadows: Shadows, most: int = 3) -> list[tuple[float, float, float, float]]:
    """(x, y, ux, uy) in frame pixels: the tip of each long shadow that reaches toward the
    frame's border (a bar, rod, wedge or a disk's arm), and the unit vector along its long
    axis from the tip into the shadow; the ``most`` largest shadows of at least 6 blocks.

    The beam lies on that axis near the tip: half the bar's width inside a bar's round end,
    some way inside a wedge's point (where the tip alone does not say).
    """
    out = []
    for iy, ix, v in largest_shadows(shadows, most):
        (tip, _), (other, _) = _end_border(iy, ix, v, shadows)
        out.append(_tip(iy, ix, v, shadows.b, tip, other))
    return out


def held_tips(shadows: Shadows, most: int = 3) -> list[tuple[float, float, float, float]]:
    """:func:`shadow_tips` of the shadows that run from the tip toward the level's border
    (the other end at most HELD_BORDER of the tip's distance from it): a stop held from
    outside the frame along its axis (a bar, rod, wedge or arm), whose outline is
    mirror-symmetric about an axis through the beam; not a paddle's box seen without its
    arm (its long axis may run across the arm, about a line that misses the beam)."""
    out = []
    for iy, ix, v in largest_shadows(shadows, most):
        (tip, d_tip), (other, d_other) = _end_border(iy, ix, v, shadows)
        if d_other <= HELD_BORDER * d_tip:
            out.append(_tip(iy, ix, v, shadows.b, tip, other))
    return out


def _end_border(
    iy: np.ndarray,
    ix: np.ndarray,
    v: np.ndarray,
    shadows: Shadows,
    edge: EdgeDistance | None = None,
) -> tuple[tuple[int, float], tuple[int, float]]:
    """((j, d), (k, d)): the ends of a shadow's long axis v (indices into its blocks iy, ix
    of ``shadows``) and their distances (blocks) to the level's border, or to what ``edge``
    (distances, blocks, :class:`~scattertag.beam.boxes.EdgeDistance`) measures, the farther
    (the tip) first."""
    rows, cols = shadows.label.shape
    along = (ix - ix.mean()) * v[0] + (iy - iy.mean()) * v[1]
    ends = (int(np.argmin(along)), int(np.argmax(along)))
    if edge is None:
        border = [float(min(ix[j], iy[j], cols - 1 - ix[j], rows - 1 - iy[j])) for j in ends]
    else:
        border = [float(edge[iy[j], ix[j]]) for j in ends]
    if border[0] < border[1]:
        return (ends[1], border[1]), (ends[0], border[0])
    return (ends[0], border[0]), (ends[1], border[1])


def _tip(
    iy: np.ndarray, ix: np.ndarray, v: np.ndarray, b: int, tip: int, other: int
) -> tuple[float, float, float, float]:
    """(x, y, ux, uy) frame px: the end ``tip`` of a shadow's long axis v (indices ``tip``
    and ``other`` of its ends among its blocks iy, ix of b x b px, :func:`_end_border`),
    and the unit vector from it inward, toward the end ``other``."""
    inward = (ix[other] - ix[tip]) * v[0] + (iy[other] - iy[tip]) * v[1]
    sign = 1.0 if inward >= 0 else -1.0
    return b * ix[tip] + (b - 1) / 2, b * iy[tip] + (b - 1) / 2, sign * v[0], sign * v[1]


def tip_starts(
    shadows: Shadows,
    side: int,
    most: int = 3,
    edge: EdgeDistance | None = None,
    ends: bool = False,
) -> list[tuple[tuple[float, float], float, float]]:
    """(start, angle, half) of the ``most`` largest shadows' tips (:func:`shadow_tips`):
    the bar's half-width ``half`` (frame px) as half its blocks per block of length within
    MAX_RADIUS of the side (``side`` the frame's longer side) of the tip (0 when under 3
    blocks long), ``angle`` (radians) of its axis into the shadow, ``start`` (frame x, y)
    that far inside the tip: where a round end's centre would be. The tip is the end
    farther from the level's border, or from what ``edge`` measures (:func:`_end_border`).
    With ``ends`` also the other end of a shadow that stops at least FREE_END blocks short
    of the border there: a bar's shadow fades out where the light about it grows dim (far
    from the beam), and its faded end may lie farther from the border than its round one."""
    b = shadows.b
    out = []
    for iy, ix, v in largest_shadows(shadows, most):
        (tip, _), (other, d_other) = _end_border(iy, ix, v, shadows, edge)
        pairs = [(tip, other), (other, tip)] if ends and d_other >= FREE_END else [(tip, other)]
        for a, o in pairs:
            x, y, ux, uy = _tip(iy, ix, v, b, a, o)
            along = (ix * b + (b - 1) / 2 - x) * ux + (iy * b + (b - 1) / 2 - y) * uy
            per = np.bincount((along[along < MAX_RADIUS * side] / b).astype(np.int64))
            half = 0.5 * b * float(np.median(per[1:])) if per.size >= 4 else 0.0
            start = (x + ux * (half - 0.5 * b), y + uy * (half - 0.5 * b))
            out.append((start, math.atan2(uy, ux), half))
    return out

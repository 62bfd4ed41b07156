"""Dark intervals along a profile: where a beamstop crosses a line of the frame.

A small stop that the line crosses (a disk, a bar's end) darkens an interval of it that is
bright on both sides; the interval's ends are the stop's edges, at the row where the
counts cross the middle of the level inside and the level outside (the stop's penumbra
passes half there). For a round stop the middle of the interval is the stop's centre row,
wherever the line cuts the disk (a chord's midpoint lies on the diameter perpendicular to
it); for a bar whose axis passes through a point of the line, that point.

A profile's dips are found by a grey closing (the dark intervals no longer than the
closing's length filled from both sides): rows lying DIP_STEP in log(1 + counts) below the
closed profile (an e-fold: a stop passes 1e-5 to 0.3) and DIP_SNR times the profile's
row-to-row noise, bounded above and below by rows that stand that high too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

#: A dip lies at least DIP_STEP in log(1 + counts) and DIP_SNR times the profile's noise
#: below the closed profile, on both of its sides.
DIP_STEP, DIP_SNR = 1.0, 8.0
#: Rows either side of a dip whose median gives the level outside it.
DIP_SIDE = 4


@dataclass(frozen=True)
class Dip:
    """A dark interval of a profile, in the frame's rows: its ends (edge rows, top < bottom),
    the spread of its middle (px) and its depth (log(1 + counts), the smaller side's)."""

    top: float
    bottom: float
    spread: float
    depth: float

    @property
    def middle(self) -> float:
        """The interval's middle row: a round stop's centre row."""
        return 0.5 * (self.top + self.bottom)

    @property
    def length(self) -> float:
        """The interval's length (px): the chord of the stop along the line."""
        return self.bottom - self.top


def noise(v: np.ndarray) -> float:
    """Row-to-row noise of a profile v (n,): 1.4826 MAD of its differences / sqrt 2."""
    steps = np.diff(v)
    return 1.4826 * float(np.median(np.abs(steps - np.median(steps)))) / math.sqrt(2.0)


def depth(v: np.ndarray, longest: int) -> np.ndarray:
    """(n,) how far a profile v (n,) lies below its grey closing over ``longest`` + 1 samples
    (0 outside dark intervals no longer than ``longest``)."""
    return ndimage.grey_closing(v, size=longest + 1, mode="nearest") - v


def find_dips(v: np.ndarray, rows: np.ndarray, longest: int) -> list[Dip]:
    """Dips of a profile v (n,) of log(1 + counts) sampled at frame rows ``rows`` (n,,
    increasing; valid rows only) no longer than ``longest`` samples, top first.

    A dip: a run of samples at least max(DIP_STEP, DIP_SNR x noise) below the closing,
    whose DIP_SIDE samples above and below (the level outside) both stand that much above
    the run's median; each edge where the counts cross the middle of the inside and that
    side's level (linear between the two samples that bracket it); the middle's spread
    half the hypotenuse of the edges' (half the distance of bracketing rows that are not
    adjacent, a gap between them; else 0.5 px).
    """
    k = DIP_SIDE
    if v.size < 2 * k + 3:
        return []
    thr = max(DIP_STEP, DIP_SNR * noise(v))
    dark = depth(v, longest) >= thr
    lab, n = ndimage.label(dark)
    out = []
    lin = np.expm1(v)
    for a, b in ((s.start, s.stop - 1) for (s,) in ndimage.find_objects(lab)[:n]):
        if a < k or b + k >= v.size:
            continue  # not bounded on both sides within the profile
        inside = float(np.median(v[a : b + 1]))
        up, down = float(np.median(v[a - k : a])), float(np.median(v[b + 1 : b + 1 + k]))
        if min(up, down) - inside < thr:
            continue
        top = _edge(lin, rows, a, -1, 0.5 * (math.expm1(up) + math.expm1(inside)))
        bottom = _edge(lin, rows, b, 1, 0.5 * (math.expm1(down) + math.expm1(inside)))
        spread = 0.5 * math.hypot(top[1], bottom[1])
        out.append(Dip(top[0], bottom[0], spread, min(up, down) - inside))
    return out


def _edge(lin: np.ndarray, rows: np.ndarray, i: int, step: int, mid: float) -> tuple[float, float]:
    """(row, spread) where the counts lin (n,) rise through ``mid`` going from sample i
    (inside a dip) in direction ``step`` (-1 up, +1 down): linear between the bracketing
    samples; spread half their distance in rows when not adjacent, else 0.5."""
    j = i
    while 0 <= j + step < lin.size and lin[j + step] < mid:
        j += step
    o = j + step
    if not 0 <= o < lin.size:
        return float(rows[j]), 0.5
    gap = abs(float(rows[o] - rows[j]))
    if gap > 1:
        return 0.5 * float(rows[o] + rows[j]), 0.5 * gap
    t = (mid - lin[j]) / max(lin[o] - lin[j], 1e-12)
    return float(rows[j] + step * t), 0.5

"""Beam centre found from the image, with a confidence; a given centre checked against it.

Four estimators work on a pyramid of the log-scaled frame
(``g = log(1 + counts)``, block means over valid pixels):

* **point symmetry** (on the frame): small-angle patterns obey I(q) = I(-q), so the frame
  reflected through the centre c, g(2c - p), matches g(p). The masked normalised
  correlation of g with its reflection, for every c at once, is four FFT convolutions
  (the reflection through c is a convolution evaluated at 2c); its peak is the coarse
  centre, refined by Gauss-Newton on the residual g(p) - g(2c - p).
* **gradient lines** (anywhere, also off the frame): the gradient of an isotropic pattern
  points along the radius, so the lines through the pixels along their gradients meet
  at the centre; the robustly weighted least-squares meeting point is a 2 x 2 solve
  (iteratively reweighted: beamstop edges, streaks and texture are outliers).
* **ring arcs** (rings and arcs, also off the frame): ridge points of the radial profile
  about the current centre are grouped by ring and fitted with circles of a common
  centre (Gauss-Newton on the radial residuals); a RANSAC over the arcs (each clean arc's
  own circle proposes a centre, the arcs concentric about it are fitted together) gives
  the ranker the centres that several arcs share when other arcs pull the common fit off.
  A chosen ring fit is tried as tilted cones (:mod:`scattertag.beam.cones`): on a tilted
  detector rings are conics whose centres drift from the beam, and the direct-beam point
  of the cones replaces the circles' centre when the cones fit the arcs clearly better.
* **beamstop** (on the frame): a disk beamstop, or a bar's round end, is centred on the
  beam; a circle fitted to the round edge of its shadow (:mod:`scattertag.beam.shadow`),
  or a bar's end fitted as a half disk on a bar of constant width, gives the centre
  whatever the sample shows; loose circles (less of the edge, a larger
  standard error) and the axis of a long shadow (a wedge's or a bar's, searched for the
  most point-symmetric centre near its tip) are extra candidates.

Three fallbacks are tried only on frames the rules leave "not found": grazing incidence
(the mirror column and the specular geometry along it, :func:`_grazing`), the direct
beam's glow beside a rod stop that crosses the beam (:mod:`scattertag.beam.glow`) and a
small ring or sharp peak about the beam at full resolution (:mod:`scattertag.beam.compact`,
:func:`_compact`). A
not-found centre off the frame (or at its border) is moved to the fit of the falloff about
it with the polarisation factor of a flat detector (:mod:`scattertag.beam.falloff`).

Rules choose among the estimators' centres and give a confidence (agreement among them
times the isotropy about the centre, :func:`_confidence`); a logistic ranker trained on
simulated frames (:mod:`scattertag.beam.ranker`) sees those and the extra ones,
and replaces the rules' choice when it is sure of another (:func:`_choose`). Below
:data:`CONFIDENCE_THRESHOLD` the centre should be treated as not found.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
from scipy import ndimage

from scattertag.beam import compact, cones, dips, falloff, horizon, outline, ranker, shadow
from scattertag.beam import glow as beam_glow
from scattertag.beam.boxes import box_all, box_any, dilate_cross, nonzero2d
from scattertag.beam.cones import fit_cones
from scattertag.beam.grid import BlockGrid, on_frame
from scattertag.beam.order_stats import median, nanmedian_rows, percentile
from scattertag.beam.pose import Arcs, DetectorPose, refit, tolerance
from scattertag.beam.radial import Pixels as _Pixels
from scattertag.beam.radial import climb as _climb
from scattertag.beam.radial import isotropy as _isotropy
from scattertag.beam.radial import pixels as pixels_of
from scattertag.beam.reflection import fast_len as _fast_len
from scattertag.beam.reflection import parabola as _parabola
from scattertag.beam.reflection import reflection_sums
from scattertag.beam.shadow import (
    Shadows,
    StopAxis,
    bar_tips,
    find_shadows,
    held_tips,
    shadow_circles,
    shadow_tips,
    stop_axis,
    tip_starts,
)
from scattertag.io import masks

#: Estimates with a confidence below this are "centre not found".
CONFIDENCE_THRESHOLD = 0.3
#: A given centre agrees with the image if within this many pixels of the image's best
#: centre (or within 3 standard errors of it, or 2 % of the frame diagonal off the frame).
AGREE_PX = 5.0
#: Largest side of the coarse level (pixels) and of the refinement level.
COARSE_SIDE, FINE_SIDE = 128, 256
#: Largest side of the level on which rings and arcs are traced (pixels).
RING_SIDE = 256
#: Smallest side kept at the coarse and the other levels when a frame is a long strip.
MIN_COARSE_SIDE, MIN_FINE_SIDE = 32, 96
#: A ring fit with at least 2 arcs and at most this standard error (pixels) is trusted.
RING_SIGMA_PX = 2.0
#: A ring fit through at least this many concentric arcs is evidence enough on its own.
MANY_ARCS = 5
#: Off the frame, a ring fit (even through one arc) within this fraction of the diagonal of
#: the chosen centre, and explaining the image at most OFF_ARC_ISOTROPY (fine isotropy)
#: worse, replaces it (:func:`_arc_off_frame`).
OFF_ARC_REACH, OFF_ARC_ISOTROPY = 0.1, 0.05
#: Estimators that look at different evidence; agreement among them is confidence.
INDEPENDENT = ("rings", "symmetry", "gradient", "beamstop")
#: Centres farther than this many frame diagonals from the frame's middle are rejected.
FAR_DIAGONALS = 4.0
#: Point symmetry needs at least this fraction of the lit pixels to have a lit partner.
MIN_OVERLAP = 0.05
#: A second point-symmetry peak is sought among centres whose reflection overlaps this much.
WIDE_OVERLAP = 0.3
#: The axis of a long shadow is searched from this fraction of the frame's side beyond its
#: tip to this fraction into it (a wedge's point lies 2.5-6 %, a bar's end 1-3 % from the beam).
AXIS_REACH = (0.015, 0.08)
#: A chosen isotropy-search centre is polished by the point symmetry of the pixels within
#: this fraction of the ring level's longer side of it, and kept if those pairs correlate
#: at least POLISH_RHO (:func:`_polish_symmetry`).
POLISH_WINDOW, POLISH_RHO = 0.08, 0.8
#: A chosen ring fit is traced again at twice the ring level's resolution only within this
#: many pixels of that level of the ring level's ridge pixels (:func:`_polish`).
POLISH_BAND = 8.0
#: The last polish of gradient and isotropy centres (:func:`_fine_symmetry`): window (share
#: of the level's side), largest standard error and move (frame px).
FINE_FROM = ("gradient", "isotropy", "symmetry")
FINE_WINDOW, FINE_SIGMA, FINE_MOVE = 0.08, 0.5, 8.0
#: A flat field's ramp in g across the frame's longer side (2-20 % in counts): a chosen
#: point-symmetry or shadow-axis centre, fitted with the ramp free, is polished without it
#: only where a ramp this steep could move the polish by at most FINE_SIGMA
#: (:func:`_ramp_bias`), else with the ramp free again.
RAMP_MAX = 0.2
#: Methods whose centre was fitted with the ramp free (:func:`_refine_symmetry`).
RAMPED = ("symmetry", "axis")
#: A chosen shadow-axis centre moves onto its stop's midline (:func:`_axis_polish`) when
#: that lies within this fraction of the frame's longer side of it.
AXIS_MOVE = 0.01
#: ... over the bounding box of that band and this many pixels about it: the smoothing
#: (3 sigma), the Hessian's differences and the interior test reach 12 (:func:`_retrace`);
#: everywhere when the ring level shows fewer than POLISH_FEW_ARCS arcs.
POLISH_MARGIN, POLISH_FEW_ARCS = 16, 5
#: Arcs that are circles about the common centre (rms of their distances to it at most
#: TIE_RMS level px: a stop's edge or a spot's rim is none) and whose mean radii lie within
#: TIE_RADIUS level px of the smallest of them are one ring (one radius,
#: :func:`_tie_rings`), regrouped about each new centre TIE_ROUNDS times at most.
TIE_RMS, TIE_RADIUS, TIE_ROUNDS = 0.5, 1.0, 3
#: Beamstop circles kept as candidates: edge cover and standard error (px) of the loose ones.
LOOSE_SPAN, LOOSE_SIGMA = 0.2, 3.0
#: The ranker's choice replaces the rules' at this P(hit), if higher than the P(hit) of
#: the rules' choice by RANK_MARGIN (:func:`_choose`).
RANK_OVERRIDE, RANK_MARGIN = 0.5, 0.1
#: A tight ring fit: at least this many arcs and a standard error (px) at most this
#: (:func:`_tight_rings`).
TIGHT_ARCS, TIGHT_SIGMA = 3, 0.5
#: A chosen ring fit gives way to tilted cones through its arcs (:func:`_tilted`) whose
#: robust rms is at most CONE_RMS of the circles', whose standard error is at most
#: CONE_SIGMA of the goal's tolerance, within CONE_REACH of the diagonal of the circles'
#: centre, with a tilt in CONE_TILT (degrees) and a distance d of at least CONE_NEAR
#: times the outermost arc's radius (2 theta under 76 degrees there).
CONE_RMS, CONE_SIGMA, CONE_REACH = 0.7, 0.5, 0.1
#: The cone fit gives up early unless its starts reach this fraction of the circles' rms.
CONE_WORTH = 0.85
CONE_TILT, CONE_NEAR = (2.0, 45.0), 0.25
#: Off the frame a found ring fit whose arcs tilted cones (tilt in CONE_TILT, d at least
#: CONE_NEAR radii) explain better (robust rms at most RIVAL_RMS of the circles')
#: with the direct beam farther from the circles' centre than the goal's tolerance plus
#: RIVAL_Z of the cones' standard error, or whose own standard error exceeds that
#: tolerance, does not fix the beam (:func:`_tilted`, :func:`_rival`): at most
#: RIVAL_CONFIDENCE (one estimator alone).
RIVAL_RMS, RIVAL_Z, RIVAL_CONFIDENCE = 0.95, 2.0, 0.25
#: Grazing incidence (:func:`_grazing`, tried only when the centre is not found otherwise):
#: a horizon is a drop of at least HORIZON_DROP in the mean of g across it (windows of
#: rows / 64 rows, at least 2) in the median column, and a drop in HORIZON_COLUMNS of the
#: columns; the mirror column's pairs must cover GRAZING_OVERLAP of the lit pixels and
#: correlate GRAZING_RHO.
HORIZON_DROP, HORIZON_COLUMNS = 0.3, 0.8
#: On the specular column (:func:`_specular`): the horizon is a step (:func:`horizon.step`);
#: the specular spot exceeds the running median over +-SPOT_REACH rows by at least
#: SPOT_CONTRAST, and the columns SPOT_SIDE of the width aside by half as much at most.
SPOT_REACH, SPOT_CONTRAST, SPOT_SIDE = 8, 1.0, 0.01
#: The film's horizon on the specular column is a step of the pattern, not a spot's edge:
#: the median of the HORIZON_PERSIST rows above the step's own 4 stands at least half a
#: horizon.HORIZON_STEP above that of as many below (a bright spot or defect 20-30 rows
#: high, whose lower edge is a drop too, falls back to the background within them).
HORIZON_PERSIST = 32
GRAZING_OVERLAP, GRAZING_RHO = 0.3, 0.5
#: A found centre gives way to a half pattern's beam (:func:`_below_horizon`) under a
#: horizon at least HALF_CLEAR px below it, when it lies within HALF_NEAR of the width of
#: the mirror column.
HALF_CLEAR, HALF_NEAR = 2.0, 0.02
#: A grazing beam whose y spreads at most GUESS_SPREAD px (4 x the goal's 2 px) is a
#: better guess than a centre the rules leave not found, even at a lower confidence.
GUESS_SPREAD = 8.0
#: Small stops on the specular column (:func:`_column_stops`): an interval at least
#: STOP_SHORTEST rows long (a stop narrower than a few pixels stops no beam; a dead pixel
#: is one row); one stop below the horizon without a partner above is evidence STOP_SINGLE.
STOP_SHORTEST, STOP_SINGLE = 3.0, 0.5
#: A centre the rules leave not found, from one of FALLOFF_FROM, off the frame or on it
#: within FALLOFF_EDGE of the diagonal of its border, moves to the fit of a radial profile
#: times the polarisation factor (:func:`_falloff`) when that model leaves at most
#: 1 / FALLOFF_GAIN of the variance a circle model leaves there, at a detector distance of
#: at least FALLOFF_NEAR fine-level diagonals, off the frame.
FALLOFF_FROM, FALLOFF_GAIN, FALLOFF_NEAR = ("isotropy", "gradient", "symmetry"), 1.1, 0.05
FALLOFF_EDGE = 0.05
#: A choice inside the frame (or none) is refitted from the off-frame point where circles
#: explain the frame best (:func:`scattertag.beam.falloff.off_frame`), on the same terms,
#: the fit kept within FALLOFF_INSIDE_REACH diagonals of the frame's middle (a beam beside
#: the frame: farther ones, 1.4-1.9 diagonals on seed 0, came from on-frame beams).
FALLOFF_INSIDE_REACH = 0.75
#: A not-found ring fit or shadow-axis centre about which no rings show gives way to an
#: off-frame ring fit about which they do (:func:`_arc_guess`), as FALLOFF_FROM's do; the
#: arcs' shared centres it asks are proposed by up to ARC_SEEDS arcs (:func:`_arc_fits`).
ARC_GUESS_WEAK = ("rings", "axis")
ARC_SEEDS = 8
#: The levels' Gaussian smoothing reaches this many of its sigmas.
SMOOTH_TRUNCATE = 3.0
#: Point symmetry's Gauss-Newton (:func:`_refine_symmetry`): steps, and the largest (level px).
SYMMETRY_ITERS, SYMMETRY_STEP = 8, 2.0
#: Blocks this many times darker than the frame's 20th percentile are beamstop shadow.
DARK_RATIO = 30.0
#: A ring fit stands on its own (:func:`_confidence`) only if the radial profile of g about
#: its centre, over one of CREST_SECTORS sectors at least, shows a crest CREST_Z standard
#: errors above the lowest bin within CREST_REACH ring-level pixels on either side
#: (:func:`_crest`); standard errors under CREST_SE_FLOOR (in g) count as that.
CREST_SECTORS, CREST_REACH, CREST_Z, CREST_SE_FLOOR = 4, 4, 10.0, 1e-3
#: A bright flat top about a centre (:func:`_plateau`): the radial profile of g spans at
#: most PLATEAU_FLAT (10 % in counts: a flat field's ripple, azimuthally averaged) or 6
#: counting-noise standard errors over at least PLATEAU_MIN ring-level pixels (a window is
#: 15-40 % of the frame's side, 38-100 of them; a saturated spot's core 1-3), then steps
#: down by PLATEAU_STEP (a factor 1.65 in counts) within PLATEAU_EDGE of its radius (a
#: window's blurred edge 0.02-0.1 of it, a falloff's over 1).
PLATEAU_FLAT, PLATEAU_MIN, PLATEAU_STEP, PLATEAU_EDGE = 0.1, 8, 0.5, 0.25
#: Methods whose evidence is the pattern about their centre (its symmetry, its isotropy):
#: found only where the image pins the centre (:func:`_pinned`).
PATTERN = ("symmetry", "gradient", "isotropy")
#: The confidence of one estimator alone (no backer, no evidence of its own): not found.
LONE = 0.25
#: The pattern about a centre pins it (:func:`_local_isotropy`) when, over PIN_REACH
#: ring-level pixels about it in PIN_SECTORS sectors, at least PIN_ISOTROPY of its
#: structure beyond the noise is radial (a ring, halo or falloff: 0.19-1 on the simulated
#: hits of seeds 0 and 1 but for spots and a rod's tip; the middle of a cosmic-ray track,
#: of a slow background's bump or of nothing: 0-0.15).
PIN_REACH, PIN_SECTORS, PIN_ISOTROPY = 32, 8, 0.17
#: A given centre about which the fine level's isotropy R^2 reaches this, at a local
#: maximum, agrees without the full estimate (:func:`agrees_at_a_glance`).
GLANCE_ISOTROPY = 0.3
#: A settled set-up's centre offered to a later frame (``settled=True``): the R^2 peak may
#: lie within GLANCE_SETTLED_PEAK level pixels (b / 2: 2 px at 1000 x 1000, the goal) if no
#: point GLANCE_RING level pixels away, in 8 directions, is more isotropic.
GLANCE_SETTLED_PEAK, GLANCE_RING = 0.5, 16.0
#: A settled centre the glance does not confirm is contradicted by the frame
#: (:func:`settled_glance`) when a point farther than the goal's tolerance is more isotropic
#: by GLANCE_MARGIN in R^2 (the level pure noise stays under), or by half what the centre
#: leaves unexplained when that is less, or when at least GLANCE_SHADOW_BLOCKS blocks of the
#: fine level are beamstop shadow and none lies within GLANCE_SHADOW_REACH level pixels
#: of a centre on the frame (the beam lies behind its stop; a block blurs the shadow's edge).
GLANCE_MARGIN, GLANCE_SHADOW_BLOCKS, GLANCE_SHADOW_REACH = 0.02, 4, 3.0
#: The search for that point meets at most this many of the coarse level's gradient lines
#: (the strongest) and scores R^2 on as many of its pixels (a regular subsample; the two
#: R^2 compared use them all).
GLANCE_SEARCH_PIXELS = 4096
#: :func:`settled_glance`'s verdicts.
AGREES, UNINFORMATIVE, CONTRADICTED = "agrees", "uninformative", "contradicted"


@dataclass(frozen=True)
class BeamCenterEstimate:
    """A beam centre found from the image.

    Attributes
    ----------
    x, y : centre in pixels, x along columns, y along rows, (0, 0) the centre of the first
        pixel; it may lie off the frame.
    confidence : in [0, 1]; below :data:`CONFIDENCE_THRESHOLD` the centre is not found.
    method : which estimator gave the centre (``symmetry``, ``gradient``, ``rings``,
        ``cone`` (rings of a tilted detector), ``beamstop``, ``axis``, ``isotropy``,
        ``grazing`` (mirror column and specular geometry), ``glow`` (the direct beam's
        glow beside a rod stop), ``compact`` (a small ring or sharp peak about the beam at
        full resolution), ``falloff`` (an off-frame centre, not found, from the
        falloff with polarisation), ``pose`` (cones of another frame's pose through this
        frame's arcs, :func:`scattertag.beam.pose.refit`), ``none``).
    on_frame : True if the centre falls on the detector, -0.5 <= x < cols - 0.5 and
        -0.5 <= y < rows - 0.5.
    sigma : standard error of the centre in pixels (inf when unknown).
    pose : the detector's pose (direct-beam point, distance, tilt) when ``method`` is
        ``cone``, else None: other frames of the same set-up may be refitted with it.
    arcs : the frame's traced arcs (at least 2) when its centre is a ring fit or not
        found, else None: what a refit with another frame's pose needs
        (:func:`scattertag.beam.pose.refit`).
    """

    x: float
    y: float
    confidence: float
    method: str
    on_frame: bool
    sigma: float = math.inf
    pose: DetectorPose | None = None
    arcs: Arcs | None = field(default=None, compare=False, repr=False)

    @property
    def found(self) -> bool:
        """True if the confidence reaches :data:`CONFIDENCE_THRESHOLD`."""
        return self.confidence >= CONFIDENCE_THRESHOLD


@dataclass(frozen=True)
class BeamCenterCheck:
    """A given beam centre compared with the image's own best centre.

    Attributes
    ----------
    agrees : False only if the image's centre is found and the given one is far from it.
    distance : pixels from the given centre to the image's best centre.
    score : radial coherence of the gradient field about the given centre divided by that
        about the best centre, in [0, 1] (1: the given centre explains the image as well).
    best : the image's own estimate.
    """

    agrees: bool
    distance: float
    score: float
    best: BeamCenterEstimate


# ---- pixels and pyramid ------------------------------------------------------------------
def valid_pixels(counts: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """(rows, cols) bool: finite, non-negative, not the all-bits-set value, and in ``valid``.

    Negative values mark Pilatus gaps; 2^32 - 1 (2^16 - 1, 2^8 - 1) marks Eiger gaps; a
    maximum reached by at least 4 pixels and over 20 times the mean is saturation, dropped.
    """
    return _valid(counts, valid)[0]


def _valid(counts: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """(:func:`valid_pixels`, the counts with invalid pixels 0 or None): integer counts are
    zeroed once here, for the saturation test (max and mean of the valid pixels without
    copying them out) and for the pyramid's block sums (:func:`_pyramid`)."""
    counts = np.asarray(counts)
    if counts.ndim != 2:
        raise ValueError(f"counts must be a 2-D frame (rows, cols), got shape {counts.shape}")
    if valid is not None and np.shape(valid) != counts.shape:
        raise ValueError(f"valid has shape {np.shape(valid)}, counts {counts.shape}")
    ok = masks.valid_pixels(counts, None if valid is None else np.asarray(valid, dtype=bool))
    if not ok.any():
        return ok, None
    zeroed = None
    mean: float
    if counts.dtype.kind in "iu":  # valid counts >= 0: the zeroed frame's max is theirs
        vals = zeroed = counts if ok.all() else counts * ok  # integers: where(ok, counts, 0)
        top, n = zeroed.max(), np.count_nonzero(ok)
        if float(top) * n < 2.0**53:  # integer sums under 2^53 are the float64 sums, exactly
            mean = float(np.sum(zeroed, dtype=np.uint64)) / n
        else:
            mean = float(counts[ok].mean())
    else:
        vals = counts.ravel() if ok.all() else counts[ok]  # no 1-per-pixel copy when all valid
        top, mean = vals.max(), float(vals.mean())
    if top > 20.0 * mean + 1.0 and np.count_nonzero(vals == top) >= 4:  # top > 0: not a 0
        sat = counts == top  # the saturated pixels (the compare over the frame only then)
        ok &= ~sat
        if zeroed is not None:
            zeroed = np.where(sat, 0, zeroed)
    return ok, zeroed


@dataclass(frozen=True)
class _Level(BlockGrid):
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
    #: block sums of counts and of valid pixels at b // 2 (the polish level's, :func:`_polish`),
    #: kept by the ring level when the pyramid went through them on its way (b even), else None
    finer: tuple[np.ndarray, np.ndarray] | None = field(default=None, compare=False, repr=False)
    #: (rows, cols) slices when only that box of the level was built (:func:`_window_level`):
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
    def grad(self) -> tuple[np.ndarray, np.ndarray]:
        """(dg/dy, dg/dx) of the smoothed g, each (R, C), per level pixel."""
        if self.window is None:
            gy, gx = np.gradient(self.smooth)
        elif min(self.g[self.window].shape) < 2:  # a window off the level: nothing to read
            gy, gx = np.zeros(self.g.shape), np.zeros(self.g.shape)
        else:
            box = self.window
            gy, gx = (_embed(d, self.g.shape, box) for d in np.gradient(self.smooth[box]))
        return gy, gx

    @cached_property
    def ridges(self) -> _Ridges:
        """Ridge pixels of the level (:func:`_ridges`), traced once for every estimator."""
        return _ridges(self)

    @cached_property
    def smooth_grad(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The smoothed g and its d/dx and d/dy, each (R, C) (:attr:`smooth`, :attr:`grad`)."""
        gy, gx = self.grad
        return self.smooth, gx, gy

    @cached_property
    def horizon(self) -> int | None:
        """The sample horizon's level row (:func:`_horizon`), found once for the grazing
        candidates."""
        return _horizon(self)

    def shadows(self, side: int) -> Shadows:
        """The level's beamstop shadows (:func:`find_shadows`, ``side`` the frame's longer
        side in pixels), found once for the candidates and the glow fallback."""
        key = ("shadows", side)
        if key not in self._inner:
            self._inner[key] = find_shadows(self.g, self.ok, self.b, side)
        return self._inner[key]

    def interior(self, width: int) -> np.ndarray:
        """(R, C) bool: lit pixels whose (2 width + 1)^2 neighbourhood is lit and on the frame."""
        if width not in self._inner:
            if self.window is None:
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


def _block_sums(a: np.ndarray, b: int) -> np.ndarray:
    """(R // b, C // b) float64 sums over b x b blocks (trailing rows/cols dropped)."""
    rows, cols = a.shape[0] // b, a.shape[1] // b
    if a.dtype == bool and b * b < 256:  # counts of True: exact in uint8
        return _whole_block_sums(a[: rows * b, : cols * b].view(np.uint8), b).astype(np.float64)
    if a.dtype.kind in "iu" and a.size and a.min() >= 0 and int(a.max()) * b * b < 2**32:
        # whole counts whose block sums fit in uint32: exact, and half float64's memory
        return _whole_block_sums(a[: rows * b, : cols * b], b, np.uint32).astype(np.float64)
    out = np.zeros((rows, cols))
    for i in range(b):
        for j in range(b):
            out += a[i : rows * b : b, j : cols * b : b]
    return out


def _whole_block_sums(a: np.ndarray, b: int, dtype: type | None = None) -> np.ndarray:
    """Sums over b x b blocks of whole numbers ``a`` (R b, C b) in ``dtype`` (a's own when
    None), which the caller knows they fit: exact in any order, so the b rows of each block
    are added first (whole contiguous rows), then the b columns."""
    acc = a[0::b].astype(dtype or a.dtype)
    for i in range(1, b):
        np.add(acc, a[i::b], out=acc, casting="unsafe")  # non-negative, fits: exact
    out = acc[:, 0::b].copy()
    for j in range(1, b):
        out += acc[:, j::b]
    return out


def _dark_floor(mean: np.ndarray) -> float:
    """Mean counts under which a block is in a beamstop's shadow: 1/DARK_RATIO of the 20th
    percentile of ``mean`` (N,), the valid blocks' mean counts."""
    return percentile(mean, 20) / DARK_RATIO


def _level(
    sums: np.ndarray, n: np.ndarray, b: int, sigma: float, floor: float | None = None
) -> _Level:
    """A level from block sums of counts and of valid pixels; a block is valid if half is.

    Blocks darker than ``floor`` (default :func:`_dark_floor` of the valid blocks: beamstop
    shadows, 1e-3 to 1e-5 transmission), widened by 2 blocks, are left out of ``lit``.
    """
    ok = n >= 0.5 * (b * b)
    full = sums / np.maximum(n, 1.0)  # a valid block's mean (it holds at least one pixel)
    g = np.zeros(sums.shape)
    np.log1p(full, out=g, where=ok)  # whole arrays, no masked gathers and scatters
    mean = full.ravel() if ok.all() else full[ok]
    lit = ok.copy()
    dark = np.zeros_like(ok)
    if mean.size:
        floor = _dark_floor(mean) if floor is None else floor
        np.less(full, floor, out=dark, where=ok)
        if dark.any():
            lit &= ~dilate_cross(dark, 2)
    return _Level(g, ok, lit, dark, b, sigma)


def _sums_floor(sums: np.ndarray, n: np.ndarray, b: int) -> float | None:
    """:func:`_dark_floor` of the valid blocks of b x b pixels with these block sums of counts
    and of valid pixels (what :func:`_level` takes when given none); None if none is valid."""
    valid = n >= 0.5 * (b * b)
    return _dark_floor(sums[valid] / n[valid]) if valid.any() else None


def _window_margin(sigma: float) -> int:
    """Level pixels by which a window level (:func:`_window_level`) is built beyond where it
    is read: the shadows' widening (2), the smoothing's reach and the gradient's (1)."""
    return 2 + int(SMOOTH_TRUNCATE * sigma + 0.5) + 1  # scipy's Gaussian reaches int(t s + 0.5)


def _window_level(
    sums: np.ndarray, n: np.ndarray, b: int, sigma: float, x: float, y: float, reach: float
) -> _Level:
    """The level of :func:`_level` (the shadows' floor that of all its blocks) built only over
    the square of ``reach`` level pixels about (x, y) and :func:`_window_margin` beyond it
    (:attr:`_Level.window`): its maps there are the whole level's, value for value, at a
    fraction of the cost (the fine polish reads 8 % of a 500 x 500 level's side about one
    point)."""
    rows, cols = sums.shape
    half = math.ceil(reach) + _window_margin(sigma)
    i, j = math.floor(y), math.floor(x)
    box = (
        slice(min(max(i - half, 0), rows), min(max(i + half + 2, 0), rows)),
        slice(min(max(j - half, 0), cols), min(max(j + half + 2, 0), cols)),
    )
    part = _level(sums[box], n[box], b, sigma, _sums_floor(sums, n, b))
    g, ok, lit, dark = (_embed(a, sums.shape, box) for a in (part.g, part.ok, part.lit, part.dark))
    return _Level(g, ok, lit, dark, b, sigma, window=box)


def _reduction(side: int, short: int, target: int, min_short: int) -> int:
    """Block size bringing ``side`` to at most ``target`` while ``short`` keeps ``min_short``."""
    return max(1, min(math.ceil(side / target), short // min_short))


def _pyramid(
    counts: np.ndarray, ok: np.ndarray, zeroed: np.ndarray | None = None
) -> tuple[_Level, _Level, _Level]:
    """(coarse, fine, ring) levels, nested: ring at most RING_SIDE a side, fine at most
    FINE_SIDE, coarse at most COARSE_SIDE; long strips keep their short side. ``zeroed``:
    the counts with invalid pixels 0 (:func:`_valid`), made here when None."""
    side, short = max(counts.shape), min(counts.shape)
    b_ring = _reduction(side, short, RING_SIDE, MIN_FINE_SIDE)
    k_fine = _reduction(side // b_ring, short // b_ring, FINE_SIDE, MIN_FINE_SIDE)
    b_fine = b_ring * k_fine
    k = _reduction(side // b_fine, short // b_fine, COARSE_SIDE, MIN_COARSE_SIDE)
    c = np.where(ok, counts, 0) if zeroed is None else zeroed  # not counts * ok: NaN * 0
    finer = None
    if b_ring % 2 == 0:  # through the polish level's sums (b_ring / 2), kept for _polish
        half = b_ring // 2
        finer = (_block_sums(c, half), _block_sums(ok, half))
        sums, n = _block_sums(finer[0], 2), _block_sums(finer[1], 2)
    else:
        sums = _block_sums(c, b_ring) if b_ring > 1 else c.astype(np.float64)
        n = _block_sums(ok, b_ring) if b_ring > 1 else ok.astype(np.float64)
    ring = replace(_level(sums, n, b_ring, 1.5), finer=finer)
    if k_fine > 1:
        sums, n = _block_sums(sums, k_fine), _block_sums(n, k_fine)
        fine = _level(sums, n, b_fine, 1.5)
    else:
        fine = ring
    coarse = _level(_block_sums(sums, k), _block_sums(n, k), b_fine * k, 1.0) if k > 1 else fine
    return coarse, fine, ring


# ---- gradient field ----------------------------------------------------------------------
@dataclass(frozen=True)
class _Field:
    """Gradient samples of a level: positions (x, y), unit gradient (nx, ny), weight |grad g|^2."""

    x: np.ndarray
    y: np.ndarray
    nx: np.ndarray
    ny: np.ndarray
    w: np.ndarray


def _smooth(g: np.ndarray, use: np.ndarray, sigma: float) -> np.ndarray:
    """(R, C) Gaussian-smoothed g over the pixels ``use``, normalised by their smoothed count."""
    m = use.astype(np.float64)
    num = ndimage.gaussian_filter(g * m, sigma, mode="constant", truncate=SMOOTH_TRUNCATE)
    den = ndimage.gaussian_filter(m, sigma, mode="constant", truncate=SMOOTH_TRUNCATE)
    return np.where(den > 1e-3, num / np.maximum(den, 1e-3), 0.0)


def _gradient_field(level: _Level, keep: int = 20000) -> _Field:
    """Gradient samples of the smoothed level on interior pixels, the ``keep`` strongest."""
    gy, gx = level.grad
    k = np.flatnonzero(level.interior(max(1, math.ceil(2 * level.sigma))))
    iy, ix = np.divmod(k, gx.shape[1])  # nonzero2d, the flat indices kept for the gathers
    gx, gy = gx.ravel().take(k), gy.ravel().take(k)
    w = gx * gx + gy * gy
    if w.size > keep:
        top = np.argpartition(w, w.size - keep)[-keep:]
        iy, ix, gx, gy, w = iy[top], ix[top], gx[top], gy[top], w[top]
    norm = np.sqrt(np.maximum(w, 1e-30))
    return _Field(ix.astype(np.float64), iy.astype(np.float64), gx / norm, gy / norm, w)


def _coherence(f: _Field, cx: float, cy: float, r_min: float = 2.0) -> float:
    """Radiality of the gradients about (cx, cy): sum w (n . u)^2 / sum w mapped to [-1, 1].

    u is the unit radius vector; 1 for an isotropic pattern, 0 for random directions.
    """
    dx, dy = f.x - cx, f.y - cy
    r = dx * dx  # in place: r = sqrt(dx^2 + dy^2), cos = (n . d) / r, w cos^2
    r += dy * dy
    np.sqrt(r, out=r)
    use = r > r_min
    if use.all():  # the usual case: no gathers (the same sums)
        cos, w = f.nx * dx, f.w
        cos += f.ny * dy
        cos /= r
    elif not use.any():
        return 0.0
    else:
        cos, w = (f.nx[use] * dx[use] + f.ny[use] * dy[use]) / r[use], f.w[use]
    wcc = w * cos
    wcc *= cos
    return float(2.0 * np.sum(wcc) / max(np.sum(w), 1e-300) - 1.0)


def _solve2(sxx: float, sxy: float, syy: float, bx: float, by: float) -> tuple[float, float, float]:
    """(x, y, det): [[sxx, sxy], [sxy, syy]] (x, y) = (bx, by) by Cramer's rule, and the
    matrix's determinant (x, y NaN when it is 0): the estimators' many 2 x 2 solves
    without LAPACK's per-call overhead."""
    det = sxx * syy - sxy * sxy
    if not det:
        return math.nan, math.nan, det
    return (syy * bx - sxy * by) / det, (sxx * by - sxy * bx) / det, det


def _lines_meet(f: _Field) -> tuple[float, float]:
    """The gradient lines' meeting point (x, y, level px): :func:`_meeting_point` of all
    lines, then again started there (its weights then favour the lines that pass near);
    NaN when the lines do not meet."""
    x, y, _ = _meeting_point(f, None)
    if math.isfinite(x):
        x, y, _ = _meeting_point(f, (x, y))
    return x, y


def _meeting_point(
    f: _Field, start: tuple[float, float] | None, iters: int = 10, scale: float = 0.15
) -> tuple[float, float, float]:
    """Robust meeting point (x, y) of the gradient lines, and its standard error (level px).

    Minimises sum_i w_i rho(d_i / r_i), d_i = t_i . (c - p_i) the distance from c to the
    line through p_i along its gradient (t_i the unit normal of that line), r_i = |c - p_i|,
    rho the Cauchy loss of scale ``scale`` (radians): iteratively reweighted 2 x 2 solves
    A c = b with A = sum w t t^T, b = sum w t (t . p).
    """
    tx, ty = -f.ny, f.nx
    tp = tx * f.x + ty * f.y
    terms = np.stack([tx * tx, tx * ty, ty * ty, tx * tp, ty * tp])  # (5, N)
    c = None if start is None else np.array(start, dtype=np.float64)
    wt = f.w
    for _ in range(iters):
        if c is not None:  # in place: r2 = |p - c|^2 + 4, ang2 = d^2 / r2, wt = w / r2 / (1 + ...)
            r2 = f.x - c[0]
            r2 *= r2
            dy = f.y - c[1]
            dy *= dy
            r2 += dy
            r2 += 4.0
            ang2 = tx * c[0]
            ang2 += ty * c[1]
            ang2 -= tp
            ang2 *= ang2
            ang2 /= r2
            ang2 /= scale**2
            ang2 += 1.0
            wt = f.w / r2
            wt /= ang2
        sxx, sxy, syy, bx, by = (float(v) for v in terms @ wt)
        x, y, det = _solve2(sxx, sxy, syy, bx, by)
        if not math.isfinite(det) or det <= 1e-12 * max((sxx + syy) ** 2, 1e-300):
            break
        new = np.array([x, y])
        done = c is not None and math.hypot(*(new - c)) < 1e-3
        c = new
        if done:
            break
    if c is None:
        return math.nan, math.nan, math.inf
    res = tx * c[0] + ty * c[1] - tp
    dof = max(int(np.count_nonzero(wt)) - 2, 1)
    sxx, sxy, syy, _, _ = (float(v) for v in terms @ wt)
    det = sxx * syy - sxy * sxy
    if det <= 0:
        return float(c[0]), float(c[1]), math.inf
    trace = (sxx + syy) / det * float(wt @ (res * res)) / dof  # of the covariance
    return float(c[0]), float(c[1]), math.sqrt(max(trace, 0.0))


# ---- point symmetry ----------------------------------------------------------------------
def _symmetry_map(level: _Level, min_overlap: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Correlation of g with its reflection through every centre c = s / 2, and the overlap.

    For s = 2c, with m the validity and G = g m:
    n(s) = (m * m)(s), S1 = (G * m)(s), S2 = (G^2 * m)(s), S12 = (G * G)(s) (convolutions),
    rho(s) = (S12 - S1^2 / n) / (S2 - S1^2 / n), the normalised correlation of g(p) and
    g(s - p) over the valid pairs; returned (2R - 1, 2C - 1) with NaN where the overlap is
    below ``min_overlap`` of the valid pixels, and the overlap fraction.
    """
    m = level.lit.astype(np.float64)
    n, s1, s2, s12 = reflection_sums(level.g, m)
    total = max(m.sum(), 1.0)
    return _pair_correlation(n, s1, s2, s12, min_overlap * total), n / total


def _pair_correlation(
    n: np.ndarray, s1: np.ndarray, s2: np.ndarray, s12: np.ndarray, least: float
) -> np.ndarray:
    """Normalised correlation of the pairs (g(p), g(p')) from their sums over n pairs:
    (S12 - S1^2 / n) / (S2 - S1^2 / n); NaN where n is below max(least, 16)."""
    enough = n > max(least, 16.0)
    mean_sq = np.where(enough, s1 * s1 / np.maximum(n, 1.0), 0.0)
    var = s2 - mean_sq
    return np.where(
        enough & (var > 1e-9 * np.abs(s2).max()), (s12 - mean_sq) / np.maximum(var, 1e-300), np.nan
    )


def _symmetry_peaks(rho: np.ndarray, overlap: np.ndarray) -> list[tuple[float, float, float]]:
    """(x, y, rho) of the best point-symmetry centres of a level, sub-pixel, from its map
    (:func:`_symmetry_map`): the best of all centres, and the best of those whose reflection
    overlaps at least WIDE_OVERLAP of the lit pixels when that is another point (a smooth
    frame correlates well with itself over a thin band at its edge, so the best of all is
    often a centre on the border)."""
    out: list[tuple[float, float, float]] = []
    for floor in (0.0, WIDE_OVERLAP):
        r = np.where(overlap >= floor, rho, np.nan)
        if not np.isfinite(r).any():
            continue
        i, j = (int(k) for k in np.unravel_index(np.nanargmax(r), r.shape))
        dy = _parabola(rho, i, j, axis=0)
        dx = _parabola(rho, i, j, axis=1)
        peak = ((j + dx) / 2.0, (i + dy) / 2.0, float(rho[i, j]))
        if not out or math.hypot(peak[0] - out[0][0], peak[1] - out[0][1]) > 1.0:
            out.append(peak)
    return out


def _axis_start(
    rho: np.ndarray, coarse: _Level, tip: tuple[float, float, float, float], side: int
) -> tuple[float, float] | None:
    """The most point-symmetric centre (frame px) on the axis of a long shadow, from
    AXIS_REACH[0] of the frame's longer side ``side`` beyond its tip to AXIS_REACH[1] into
    it (:func:`scattertag.beam.shadow.shadow_tips`), on the coarse level's map."""
    x, y, ux, uy = tip
    t = np.arange(-AXIS_REACH[0] * side, AXIS_REACH[1] * side, 0.5 * coarse.b)
    off = (coarse.b - 1) / 2  # frame -> coarse level pixels, s = 2c on the map
    cx, cy = (x + t * ux - off) / coarse.b, (y + t * uy - off) / coarse.b
    i, j = np.rint(2 * cy).astype(np.int64), np.rint(2 * cx).astype(np.int64)
    inside = (i >= 0) & (i < rho.shape[0]) & (j >= 0) & (j < rho.shape[1])
    if not inside.any():
        return None
    r = np.full(t.size, np.nan)
    r[inside] = rho[i[inside], j[inside]]
    if not np.isfinite(r).any():
        return None
    k = int(np.nanargmax(r))
    return x + t[k] * ux, y + t[k] * uy


def _bilinear(maps: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """Bilinear samples (N,) of each of the K (R, C) ``maps`` at (x, y) (N,) level pixels
    (inside the frame); the corners and weights found once for all maps, one 1-D gather
    per map and corner (faster than gathering (N, K) rows of a stack)."""
    rows, cols = maps[0].shape
    i0 = np.minimum(y.astype(np.int64), rows - 2)
    j0 = np.minimum(x.astype(np.int64), cols - 2)
    fy, fx = y - i0, x - j0
    k = i0 * cols + j0
    w = ((1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx)
    idx = (k, k + 1, k + cols, k + cols + 1)
    flat = [np.ravel(m) for m in maps]
    return [sum(wi * f.take(ii) for wi, ii in zip(w, idx)) for f in flat]


def _symmetry_sample(
    level: _Level, iy: np.ndarray, ix: np.ndarray, keep: int
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """(iy, ix, N, g): at most ``keep`` of the N pixels (iy, ix), evenly strided (as
    floats), and the smoothed level there (:func:`_refine_symmetry`)."""
    total = iy.size
    if iy.size > keep:
        pick = np.linspace(0, iy.size - 1, keep).astype(np.int64)
        iy, ix = iy[pick], ix[pick]
    return iy.astype(np.float64), ix.astype(np.float64), total, level.smooth[iy, ix]


def _symmetry_reach(radius: float, iters: int = SYMMETRY_ITERS) -> float:
    """How far from its start (level px) :func:`_refine_symmetry` over the pixels within
    ``radius`` of it, and :func:`_sharpness` about where it ends, read the level: the centre
    moves at most SYMMETRY_STEP a step, a pixel's partner 2c - p lies as far beyond the
    centre as the pixel, and a bilinear sample reads the next pixel."""
    return radius + 2 * SYMMETRY_STEP * iters + 1


def _refine_symmetry(
    level: _Level,
    start: tuple[float, float],
    iters: int = SYMMETRY_ITERS,
    keep: int = 12000,
    ramp: bool = True,
    radius: float = math.inf,
) -> tuple[float, float, float, float]:
    """Gauss-Newton on r(p) = g(p) - g(2c - p) - 2 a . (p - c) / L from ``start``:
    (x, y, sigma, rho) in level px; only pixels p within ``radius`` (level px) of ``start``.

    a is a linear ramp of g across the level (L its longest side): a detector's flat field
    (2-20 % across the frame) or an absorption gradient multiplies the counts by a ramp,
    which adds an antisymmetric term to g that a centre alone would absorb by moving
    (several pixels on smooth small-angle frames). Huber-weighted; sigma is the standard
    error of c, rho the correlation of the pairs. At least MIN_OVERLAP of the lit pixels
    must have a lit partner.
    """
    gs = level.smooth
    inner = level.interior(1)
    if math.isfinite(radius):
        iy, ix = nonzero2d(inner)
        near = (ix - start[0]) ** 2 + (iy - start[1]) ** 2 <= radius * radius
        iy, ix, total, gp = _symmetry_sample(level, iy[near], ix[near], keep)
    else:  # the same pixels from every start: sampled once per level
        key = ("symmetry", keep)
        if key not in level._inner:
            iy, ix = nonzero2d(inner)
            level._inner[key] = _symmetry_sample(level, iy, ix, keep)
        iy, ix, total, gp = level._inner[key]
    rows, cols = gs.shape
    scale = float(max(rows, cols))
    k = 4 if ramp else 2
    theta = np.zeros(4)  # cx, cy, ax, ay
    theta[:2] = start
    sigma, rho = math.inf, 0.0
    pairs: tuple[np.ndarray, np.ndarray] | None = None
    for _ in range(iters):
        c, a = theta[:2], theta[2:]
        qx, qy = 2 * c[0] - ix, 2 * c[1] - iy
        inside = (qx >= 0) & (qx <= cols - 1) & (qy >= 0) & (qy <= rows - 1)
        qi, qj = np.rint(qy[inside]).astype(np.int64), np.rint(qx[inside]).astype(np.int64)
        use = np.flatnonzero(inside)[inner.ravel().take(qi * cols + qj)]
        if use.size < max(50, MIN_OVERLAP * min(total, keep)):
            return math.nan, math.nan, math.inf, 0.0
        gq, gxq, gyq = _bilinear(level.smooth_grad, qx[use], qy[use])
        dx, dy = (ix[use] - c[0]) / scale, (iy[use] - c[1]) / scale
        jac = np.stack(
            [-2.0 * gxq + 2 * a[0] / scale, -2.0 * gyq + 2 * a[1] / scale, -2.0 * dx, -2.0 * dy]
        )[:k]
        r = gp[use] - gq - 2.0 * (a[0] * dx + a[1] * dy)
        s = 1.4826 * median(np.abs(r - median(r))) + 1e-12
        w = np.minimum(1.0, 1.5 * s / np.maximum(np.abs(r), 1e-300))
        jw = jac * w
        h = jw @ jac.T
        det = h[0, 0] * h[1, 1] - h[0, 1] * h[1, 0]  # of the centre's block, without LAPACK
        if det <= 1e-12 * max((h[0, 0] + h[1, 1]) ** 2, 1e-300):
            break
        try:
            cov = np.linalg.inv(h)
        except np.linalg.LinAlgError:
            break
        step = -cov @ (jw @ r)
        norm = float(np.hypot(*step[:2]))
        if norm > SYMMETRY_STEP:
            step *= SYMMETRY_STEP / norm
        theta[:k] += step
        sigma = float(np.sqrt(max(cov[0, 0] + cov[1, 1], 0.0)) * s)
        pairs = (gp[use], gq)  # rho of the last completed step's pairs, computed once
        if norm < 0.01:
            break
    if pairs is not None:
        gpu, gq = pairs
        rho = float(np.corrcoef(gpu, gq)[0, 1]) if gpu.std() > 0 and gq.std() > 0 else 0.0
    return float(theta[0]), float(theta[1]), sigma, rho


# ---- rings and arcs ----------------------------------------------------------------------
@dataclass(frozen=True)
class _Ridges:
    """Ridge pixels of a level: positions (x, y), weight (ridge strength), arc label 0..J-1;
    ``rows``, ``cols`` every pixel that passed the ridge test (before the crest and the
    arcs' size were asked), where a finer level may look again (:func:`_retrace`)."""

    x: np.ndarray
    y: np.ndarray
    w: np.ndarray
    label: np.ndarray
    count: int
    rows: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    cols: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    def only(self, arcs: np.ndarray) -> _Ridges:
        """The ridge pixels of the arcs where ``arcs`` ((J,) bool), relabelled 0..K-1."""
        keep = arcs[self.label]
        return replace(
            self,
            x=self.x[keep],
            y=self.y[keep],
            w=self.w[keep],
            label=(np.cumsum(arcs) - 1)[self.label[keep]],
            count=int(arcs.sum()),
        )


def _hessian(
    level: _Level, iy: np.ndarray, ix: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(g_xx, g_yx, g_yy, l1, l2) of the smoothed level at interior pixels (iy, ix): central
    differences of its gradient (as ``np.gradient`` takes them), l1 <= l2 the eigenvalues."""
    gy, gx = level.grad
    cols = gy.shape[1]
    k = iy * cols + ix
    fy, fx = gy.ravel(), gx.ravel()
    gyy = (fy.take(k + cols) - fy.take(k - cols)) / 2.0
    gyx = (fy.take(k + 1) - fy.take(k - 1)) / 2.0
    gxx = (fx.take(k + 1) - fx.take(k - 1)) / 2.0
    half = 0.5 * (gxx + gyy)
    root = np.sqrt(0.25 * (gxx - gyy) ** 2 + gyx * gyx)
    return gxx, gyx, gyy, half - root, half + root


def _ridges(level: _Level, min_size: int = 12, near: np.ndarray | None = None) -> _Ridges:
    """Pixels on bright ridges (rings, arcs): Hessian eigenvalue l1 << 0 and |l1| > 2 |l2|.

    Connected ridge pixels (8-neighbours) form one arc; arcs under ``min_size`` pixels are
    dropped. l1 <= l2 are the eigenvalues of the Hessian of the smoothed log image; the
    noise level is the robust spread of l1 over (a regular sample of) the interior pixels.
    With ``near`` ((R, C) bool) only its pixels may be ridge pixels (the Hessian is taken
    there alone).
    """
    inner = level.interior(math.ceil(2 * level.sigma) + 1)
    iy, ix = nonzero2d(inner)
    if iy.size < 100:
        return _Ridges(*(np.empty(0),) * 3, np.empty(0, np.int64), 0)
    step = max(1, iy.size // 16384)  # the noise level from <= ~32k samples
    if near is None:  # the samples are among the pixels tested: their l1 is taken once
        gxx, gyx, gyy, l1, l2 = _hessian(level, iy, ix)
        few = l1[::step]
    else:
        few = _hessian(level, iy[::step], ix[::step])[3]
        iy, ix = nonzero2d(inner & near)
        gxx, gyx, gyy, l1, l2 = _hessian(level, iy, ix)
    noise = 1.4826 * median(np.abs(few - median(few))) + 1e-12
    ridge = (l1 < -4.0 * noise) & (-l1 > 2.0 * np.abs(l2))
    iy, ix = iy[ridge], ix[ridge]
    rows, cols = iy, ix
    gy, gx = level.grad
    # unit eigenvector e of l1 (across the ridge) and the Newton step t to the ridge's crest
    a, b, c, lam = gxx[ridge], gyx[ridge], gyy[ridge], l1[ridge]
    ex, ey = np.where(np.abs(a - lam) > np.abs(c - lam), (b, lam - a), (lam - c, b))
    norm = np.maximum(np.hypot(ex, ey), 1e-300)
    ex, ey = ex / norm, ey / norm
    t = -(gx[iy, ix] * ex + gy[iy, ix] * ey) / lam
    crest = np.abs(t) <= 0.7
    mask = np.zeros_like(inner)
    mask[iy[crest], ix[crest]] = True
    lab, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    iy, ix, t, ex, ey, lam = iy[crest], ix[crest], t[crest], ex[crest], ey[crest], lam[crest]
    arc = lab[iy, ix] - 1
    big = np.bincount(arc, minlength=n) >= min_size
    keep = big[arc]
    renumber = np.cumsum(big) - 1
    return _Ridges(
        (ix + t * ex)[keep],
        (iy + t * ey)[keep],
        -lam[keep],
        renumber[arc[keep]],
        int(big.sum()),
        rows,
        cols,
    )


def _fit_arcs(
    rd: _Ridges, start: tuple[float, float] | None = None, iters: int = 15, tie: bool = True
) -> tuple[float, float, float, int]:
    """Circles with a common centre through the arcs: (x, y, sigma, arcs used) in level px.

    Algebraic start (Kasa, when ``start`` is None): for arc j, x^2 + y^2 = 2 c . p + e_j,
    linear in c once each arc's weighted mean is removed. Then Gauss-Newton on the radial
    residuals d_i = |p_i - c| - R_j (R_j the arc's weighted mean radius), Cauchy-weighted
    (scale 1 px), dropping arcs whose rms residual exceeds 3 times the median arc's
    (:func:`_circles`); then, with ``tie``, once more with one radius per ring
    (:func:`_tie_rings`).
    """
    if rd.count < 1:
        return math.nan, math.nan, math.inf, 0
    if start is None:
        w = rd.w
        xc, yc = _centred(rd.x, w, rd.label, rd.count), _centred(rd.y, w, rd.label, rd.count)
        zc = _centred(rd.x**2 + rd.y**2, w, rd.label, rd.count)
        sxx, sxy, syy = float(w @ (xc * xc)), float(w @ (xc * yc)), float(w @ (yc * yc))
        x, y, det = _solve2(sxx, sxy, syy, float(w @ (xc * zc)), float(w @ (yc * zc)))
        if det <= 1e-9 * (sxx + syy) ** 2:
            return math.nan, math.nan, math.inf, 0
        start = (0.5 * x, 0.5 * y)
    ring = np.arange(rd.count)
    x, y, sigma, alive = _circles(rd, start, ring, np.ones(rd.count, bool), iters)
    if not math.isfinite(x):
        return math.nan, math.nan, math.inf, 0
    if not tie:
        return x, y, sigma, int(alive.sum())
    return _tie_rings(rd, (x, y, sigma, alive), iters)


def _centred(
    v: np.ndarray, wt: np.ndarray, lab: np.ndarray, n: int, tot: np.ndarray | None = None
) -> np.ndarray:
    """v less the weighted (wt) mean of v over its group (``lab`` in 0..n-1); ``tot`` each
    group's sum of wt when known."""
    tot = np.bincount(lab, wt, n) if tot is None else tot
    return v - (np.bincount(lab, wt * v, n) / np.maximum(tot, 1e-300))[lab]


def _circles(
    rd: _Ridges,
    start: tuple[float, float],
    ring: np.ndarray,
    alive: np.ndarray,
    iters: int,
) -> tuple[float, float, float, np.ndarray]:
    """Gauss-Newton from ``start`` for one centre and one radius per ring through the arcs
    (``ring`` (J,) int: arc j lies on ring ``ring[j]``, one radius each; arcs not ``alive``
    (J,) bool left out): (x, y, sigma, alive) in level px.

    Residuals d_i = |p_i - c| - R_k (R_k the ring's weighted mean radius), Cauchy weights
    (scale 1 px); an arc whose rms residual exceeds 3 times the median live arc's (at least
    0.5 px) is dropped. sigma: the centre's standard error (trace of the covariance).
    """
    lab, n = rd.label, rd.count
    lab_r = ring[lab]
    m = int(ring.max()) + 1
    own = m == n and bool((ring == np.arange(n)).all())  # a radius per arc
    w = rd.w
    c = np.array(start, dtype=np.float64)
    alive = alive.copy()
    sigma = math.inf
    for _ in range(iters):
        dx, dy = rd.x - c[0], rd.y - c[1]
        rho = np.maximum(np.hypot(dx, dy), 1e-9)
        ux, uy = dx / rho, dy / rho
        wa = w if alive.all() else w * alive[lab]  # w * True is w: no gather while all live
        tot = np.bincount(lab_r, wa, m)
        d = _centred(rho, wa, lab_r, m, tot)
        per_arc = tot if own else np.bincount(lab, wa, n)
        rms = np.sqrt(np.bincount(lab, wa * d * d, n) / np.maximum(per_arc, 1e-300))
        if alive.sum() > 2:
            alive &= rms <= 3.0 * max(median(rms[alive]), 0.5)
        wt = (wa if alive.all() else wa * alive[lab]) / (1.0 + d * d)
        tot = np.bincount(lab_r, wt, m)
        jx, jy = -_centred(ux, wt, lab_r, m, tot), -_centred(uy, wt, lab_r, m, tot)
        wx, wy = wt * jx, wt * jy
        sxx, sxy, syy = float(wx @ jx), float(wx @ jy), float(wy @ jy)
        x, y, det = _solve2(sxx, sxy, syy, float(wx @ d), float(wy @ d))
        if not math.isfinite(det) or det <= 1e-12 * max((sxx + syy) ** 2, 1e-300):
            return math.nan, math.nan, math.inf, alive
        c = c - (x, y)
        rings = int(alive.sum()) if own else np.unique(ring[alive]).size
        dof = max(int(np.count_nonzero(wt)) - 2 - rings, 1)
        sigma = math.sqrt((sxx + syy) / det * float(wt @ (d * d)) / dof)  # trace of A^-1 ...
        if math.hypot(x, y) < 1e-4:
            break
    return float(c[0]), float(c[1]), sigma, alive


def _rings_of(rd: _Ridges, c: tuple[float, float], alive: np.ndarray) -> np.ndarray:
    """(J,) int: the ring of each arc about centre c (level px): the live arcs that are
    circles about c (rms of their distances to c about their mean at most TIE_RMS) sorted
    by that mean radius, a new ring wherever the radius exceeds the ring's first by over
    TIE_RADIUS; the other arcs each a ring of their own."""
    d = np.hypot(rd.x - c[0], rd.y - c[1])
    tot = np.maximum(np.bincount(rd.label, rd.w, rd.count), 1e-300)
    radius = np.bincount(rd.label, rd.w * d, rd.count) / tot
    spread = np.sqrt(np.bincount(rd.label, rd.w * (d - radius[rd.label]) ** 2, rd.count) / tot)
    round_ = alive & (spread <= TIE_RMS)
    ring = np.empty(rd.count, np.int64)
    k, first = -1, -math.inf
    for j in np.argsort(radius):
        if not round_[j] or radius[j] - first > TIE_RADIUS:
            k += 1
            first = radius[j] if round_[j] else -math.inf
        ring[j] = k
    return ring


def _tie_rings(
    rd: _Ridges, fit: tuple[float, float, float, np.ndarray], iters: int
) -> tuple[float, float, float, int]:
    """The circle fit ``fit`` (x, y, sigma, alive: :func:`_circles` with a radius per arc)
    fitted again with one radius per ring (:func:`_rings_of`), the rings regrouped about
    each new centre (TIE_ROUNDS times at most): (x, y, sigma, arcs used), sigma and the
    arcs those of ``fit``.

    A ring cut by detector gaps, a stop's arm or the frame's edge into arcs is one circle:
    with a radius each, arcs fix the centre only across themselves (their curvature
    barely), so short arcs of one ring on opposite sides left it 1-3 px off. The standard
    error stays the free fit's: it says how well the arcs fix the centre without assuming
    which of them are one ring (a tilted detector's ellipses break that: their pieces
    share no radius about the circles' centre), and the rules that trust ring fits by it
    (tight fits, :func:`_choose_by_rules`) were set on it.
    """
    x, y, sigma, alive = fit
    for _ in range(TIE_ROUNDS):
        ring = _rings_of(rd, (x, y), alive)
        if np.unique(ring[alive]).size == int(alive.sum()):
            break  # no two live arcs share a ring
        x2, y2, _, _ = _circles(rd, (x, y), ring, alive, iters)
        if not math.isfinite(x2):
            break
        moved = math.hypot(x2 - x, y2 - y)
        x, y = x2, y2
        if moved < 1e-3:
            break
    return x, y, sigma, int(alive.sum())


def _arc_circle(
    x: np.ndarray, y: np.ndarray, w: np.ndarray
) -> tuple[float, float, float, float, float]:
    """One arc's own circle: (cx, cy, R, rms, span), level px and radians.

    Weighted algebraic fit (Kasa) of |p - c|^2 = R^2, linear in (c, R^2 - |c|^2) once the
    arc's weighted mean is removed; rms of the radial residuals |p - c| - R; span the arc's
    angular extent about c (2 pi less the largest gap between the points' angles).
    """
    mx, my = float(np.average(x, weights=w)), float(np.average(y, weights=w))
    u, v = x - mx, y - my
    sw = np.sqrt(w)
    a = np.stack([u, v, np.ones_like(u)], axis=1) * sw[:, None]
    sol = np.linalg.lstsq(a, (u * u + v * v) * sw, rcond=None)[0]
    cx, cy = 0.5 * sol[0], 0.5 * sol[1]
    r2 = sol[2] + cx * cx + cy * cy
    if not r2 > 0:
        return math.nan, math.nan, math.nan, math.inf, 0.0
    radius = math.sqrt(r2)
    res = np.hypot(u - cx, v - cy) - radius
    rms = float(np.sqrt(np.average(res * res, weights=w)))
    ang = np.sort(np.arctan2(v - cy, u - cx))
    gaps = np.diff(np.concatenate([ang, ang[:1] + 2 * math.pi]))
    return cx + mx, cy + my, radius, rms, float(2 * math.pi - gaps.max())


def _arc_consensus(
    rd: _Ridges,
    max_radius: float,
    seeds: int = 8,
    tol: float = 1.0,
    min_span: float = 0.3,
    most: int = 2,
) -> list[tuple[float, float, float, int]]:
    """Centres that many arcs share, found from single arcs (RANSAC over arcs): (x, y,
    sigma, arcs) in level px, the best-supported first, at most ``most``.

    The common fit through all arcs (:func:`_fit_arcs`) is pulled off by arcs that are not
    rings about the beam (beamstop edges, the horizon, streaks, n-fold arcs). Here each of
    the ``seeds`` strongest arcs that is itself a clean circle (rms <= 0.5 px, spanning >=
    ``min_span`` rad, radius <= ``max_radius``) proposes its centre c; the arcs concentric
    about c (rms of |p - c| less their mean radius <= ``tol``) are fitted with a common
    centre from c, twice; support = the ridge strength of those arcs.
    """
    if rd.count < 1:
        return []
    strength = np.bincount(rd.label, rd.w, rd.count)
    hyps: list[tuple[float, tuple[float, float, float, int]]] = []
    for j in np.argsort(-strength)[:seeds]:
        on = rd.label == j
        if np.count_nonzero(on) < 12:
            continue
        cx, cy, radius, rms, span = _arc_circle(rd.x[on], rd.y[on], rd.w[on])
        if not (rms <= 0.5 and span >= min_span and radius <= max_radius):
            continue
        if any(math.hypot(cx - h[1][0], cy - h[1][1]) <= 2 * tol for h in hyps):
            continue
        fit, support = (cx, cy, math.inf, 1), 0.0
        for last in (False, True):
            d = np.hypot(rd.x - fit[0], rd.y - fit[1])
            mean = np.bincount(rd.label, rd.w * d, rd.count) / strength
            r = d - mean[rd.label]
            rms_k = np.sqrt(np.bincount(rd.label, rd.w * r * r, rd.count) / strength)
            inl = rms_k <= tol
            if not inl.any():
                break
            x, y, s, n = _fit_arcs(rd.only(inl), fit[:2], tie=last)
            if not math.isfinite(x):
                break
            fit, support = (x, y, s, n), float(strength[inl].sum())
        if support > 0:
            hyps.append((support, fit))
    hyps.sort(key=lambda h: -h[0])
    out: list[tuple[float, float, float, int]] = []
    for _, fit in hyps:
        if all(math.hypot(fit[0] - o[0], fit[1] - o[1]) > 2 * tol for o in out):
            out.append(fit)
    return out[:most]


# ---- the estimate ------------------------------------------------------------------------
@dataclass(frozen=True)
class _Candidate:
    """One estimator's centre (frame px), its standard error (frame px) and its evidence."""

    method: str
    x: float
    y: float
    sigma: float
    coherence: float
    isotropy: float  # adjusted R^2 of a radial profile about the centre (coarse level)
    fine_isotropy: float  # the same on the fine level
    rho: float = 0.0  # point-symmetry correlation (symmetry)
    arcs: int = 0  # arcs used (rings)
    seed: str = ""  # the candidate the isotropy search started from (isotropy)
    extra: bool = False  # seen by the ranker only (:func:`_choose`)
    span: float = 0.0  # fraction of the circle its edge points cover (beamstop)
    pose: DetectorPose | None = None  # the detector's pose (cone)


# ---- isotropy score ----------------------------------------------------------------------
def _pixels(level: _Level, keep: int = 20000, use: np.ndarray | None = None) -> _Pixels:
    """At most ``keep`` lit pixels of the level (and of ``use``, (R, C) bool), evenly strided;
    those of the whole level are taken once per level (candidates and fallbacks share them)."""
    if use is None:
        key = ("pixels", keep)
        if key not in level._inner:
            level._inner[key] = _pixels(level, keep, level.lit)
        return level._inner[key]
    iy, ix = nonzero2d(level.lit & use)
    if iy.size > keep:
        pick = np.linspace(0, iy.size - 1, keep).astype(np.int64)
        iy, ix = iy[pick], ix[pick]
    return pixels_of(ix.astype(np.float64), iy.astype(np.float64), level.g[iy, ix])


def _candidates(
    counts: np.ndarray,
    ok: np.ndarray,
    hint: tuple[float, float] | None = None,
    levels: tuple[_Level, _Level, _Level] | None = None,
) -> list[_Candidate]:
    """Centres from the estimators on the frame's pyramid (``levels``, :func:`_pyramid`,
    built here when None), those that converge."""
    coarse, fine, ring = _pyramid(counts, ok) if levels is None else levels
    ff = _gradient_field(fine)
    pc, pf = _pixels(coarse), _pixels(fine)
    out: list[_Candidate] = []

    rows, cols = counts.shape
    far = FAR_DIAGONALS * math.hypot(rows, cols)

    def add(method: str, x: float, y: float, sigma: float, isof: float | None = None, **kw) -> None:
        fx, fy = fine.to_frame(x, y)
        near = math.hypot(fx - (cols - 1) / 2, fy - (rows - 1) / 2) <= far
        if math.isfinite(x) and math.isfinite(y) and not math.isnan(sigma) and near:
            coh = _coherence(ff, x, y)
            iso = _isotropy(pc, *coarse.from_frame(fx, fy))
            isof = _isotropy(pf, x, y) if isof is None else isof  # a climb's score is this
            out.append(_Candidate(method, fx, fy, sigma * fine.b, coh, iso, isof, **kw))

    rd = ring.ridges
    x, y, _, n = _fit_arcs(rd, tie=False)  # a start for the fit below
    if math.isfinite(x):
        x, y, s, n = _fit_arcs(rd, (x, y))
        add("rings", *fine.from_frame(*ring.to_frame(x, y)), s * ring.b / fine.b, arcs=n)
    fc = _gradient_field(coarse)
    x, y = _lines_meet(fc)
    if math.isfinite(x):
        x, y, s = _meeting_point(ff, fine.from_frame(*coarse.to_frame(x, y)))
        add("gradient", x, y, s)
    if out and out[0].method == "rings" and out[0].arcs >= 3 and out[0].sigma <= 0.5:
        return out  # a tight ring fit: the other estimators cannot do better
    fits = [(c.x, c.y) for c in out if c.method == "rings"]
    for x, y, s, n in _arc_consensus(rd, 2.0 * math.hypot(*ring.g.shape)):
        fx, fy = ring.to_frame(x, y)
        if n >= 3 and all(math.hypot(fx - a, fy - b) > 2.0 for a, b in fits):
            add("rings", *fine.from_frame(fx, fy), s * ring.b / fine.b, arcs=n, extra=True)
    shadows = ring.shadows(max(counts.shape))
    circles = shadow_circles(counts, ok, shadows, LOOSE_SPAN, LOOSE_SIGMA)
    strict = [c for c in circles if c.span >= shadow.MIN_SPAN and c.sigma <= shadow.MAX_SIGMA]
    loose = [c for c in circles if c not in strict]
    for circle in strict[:2] + loose[:2]:
        x, y = fine.from_frame(circle.x, circle.y)
        add("beamstop", x, y, circle.sigma / fine.b, span=circle.span, extra=circle in loose)
    ends = bar_tips(counts, ok, shadows)
    for end in ends[:2]:
        x, y = fine.from_frame(end.x, end.y)
        add("beamstop", x, y, end.sigma / fine.b, span=shadow.tip_cover(end))
    if strict or ends:
        return out  # the stop's round edge is the choice (see _choose): no search needed
    rho, overlap = _symmetry_map(coarse)
    for px, py, _ in _symmetry_peaks(rho, overlap):
        x, y, s, r = _refine_symmetry(fine, fine.from_frame(*coarse.to_frame(px, py)))
        if on_frame(*fine.to_frame(x, y), counts.shape):
            add("symmetry", x, y, s, rho=r)
    for tip in shadow_tips(shadows):
        start = _axis_start(rho, coarse, tip, max(counts.shape))
        if start is not None:
            x, y, s, r = _refine_symmetry(fine, fine.from_frame(*start))
            if on_frame(*fine.to_frame(x, y), counts.shape):
                add("axis", x, y, s, rho=r, extra=True)
    by = _by_method([c for c in out if not c.extra])
    tol = max(2.0, 0.005 * math.hypot(*counts.shape))
    if (
        "symmetry" in by
        and "gradient" in by
        and (
            math.hypot(by["symmetry"].x - by["gradient"].x, by["symmetry"].y - by["gradient"].y)
            <= tol
        )
    ):
        return out  # two independent estimators agree: no search needed
    add("centre", *fine.from_frame((cols - 1) / 2, (rows - 1) / 2), math.inf)
    if hint is not None:
        add("hint", *fine.from_frame(float(hint[0]), float(hint[1])), math.inf)
    plain = [c for c in out if not c.extra]
    if plain:
        top = max(plain, key=lambda c: c.isotropy)
        x, y, _ = _climb(pc, coarse.from_frame(top.x, top.y), 4.0, 0.5)
        x, y, score = _climb(pf, fine.from_frame(*coarse.to_frame(x, y)), 1.0, 0.25)
        add("isotropy", x, y, 0.5, isof=score, seed=top.method)
    return out


# ---- grazing incidence -------------------------------------------------------------------
def _mirror_column(level: _Level) -> tuple[float, float]:
    """(x, rho): the column x (level px) about which g is most left-right symmetric, and the
    correlation of the pairs g(i, j), g(i, 2x - j) over the lit pixels.

    A grazing-incidence pattern is mirror-symmetric about the plane of incidence (the
    column of the direct beam and the specular rod), not point-symmetric: the film hides
    everything below its horizon. As :func:`_symmetry_map`, with 1-D convolutions along
    the rows summed over the rows (in Fourier space) for every s = 2x at once; the pairs
    must cover GRAZING_OVERLAP of the lit pixels.
    """
    m = level.lit.astype(np.float64)
    big = level.g * m
    size = 2 * m.shape[1] - 1
    f = _fast_len(size)
    fm, fg, fg2 = (np.fft.rfft(a, f, axis=1) for a in (m, big, big * level.g))
    n, s1, s2, s12 = (
        np.fft.irfft((a * b).sum(axis=0), f)[:size]
        for a, b in ((fm, fm), (fg, fm), (fg2, fm), (fg, fg))
    )
    rho = _pair_correlation(n, s1, s2, s12, GRAZING_OVERLAP * max(m.sum(), 1.0))
    if not np.isfinite(rho).any():
        return math.nan, 0.0
    k = int(np.nanargmax(rho))
    return (k + _parabola(rho[None, :], 0, k, axis=1)) / 2.0, float(rho[k])


def _horizon(level: _Level) -> int | None:
    """Level row h of the sample horizon (rows < h above it), or None: the row where g
    drops most from the k rows above to the k rows below (k = rows / 64, at least 2),
    the drop being the median over the columns with both windows half lit; kept if that
    median is at least HORIZON_DROP and HORIZON_COLUMNS of those columns drop."""
    m = level.lit.astype(np.float64)
    rows, cols = m.shape
    k = max(2, rows // 64)
    cg = np.vstack([np.zeros(cols), np.cumsum(level.g * m, axis=0)])
    cm = np.vstack([np.zeros(cols), np.cumsum(m, axis=0)])
    if rows < 2 * k + 1:
        return None
    h = np.arange(k, rows - k)
    na, nb = cm[h] - cm[h - k], cm[h + k] - cm[h]  # (H, C) lit rows above and below
    use = (na >= k / 2) & (nb >= k / 2)
    drop = np.where(
        use,
        (cg[h] - cg[h - k]) / np.maximum(na, 1) - (cg[h + k] - cg[h]) / np.maximum(nb, 1),
        np.nan,
    )
    enough = use.sum(axis=1) >= 0.5 * cols
    if not enough.any():
        return None
    med = np.full(h.size, -np.inf)
    med[enough] = nanmedian_rows(drop[enough])  # np.nanmedian(..., axis=1), faster
    falls = np.zeros(h.size)
    falls[enough] = np.nanmean(np.where(use, drop > 0, np.nan)[enough], axis=1)
    med[falls < HORIZON_COLUMNS] = -np.inf
    i = int(np.argmax(med))
    row = int(h[i]) if med[i] >= HORIZON_DROP else None
    return row


def _column_profile(counts: np.ndarray, ok: np.ndarray, x: float) -> np.ndarray:
    """(rows,) log(1 + mean counts) of the valid pixels of columns round(x) - 1 .. + 1, NaN
    in rows with none."""
    c = round(x)
    cols = slice(max(c - 1, 0), min(c + 2, counts.shape[1]))
    use = ok[:, cols]
    n = use.sum(axis=1)
    total = np.where(use, counts[:, cols], 0).sum(axis=1, dtype=np.float64)
    return np.where(n > 0, np.log1p(np.maximum(total, 0.0) / np.maximum(n, 1)), np.nan)


def _excess(profile: np.ndarray) -> np.ndarray:
    """(n,) how far a column profile exceeds its running median over +-SPOT_REACH rows;
    -inf where it or the median is not finite."""
    base = ndimage.median_filter(np.nan_to_num(profile, nan=-np.inf), size=2 * SPOT_REACH + 1)
    return np.where(np.isfinite(profile) & np.isfinite(base), profile - base, -np.inf)


def _specular(counts: np.ndarray, ok: np.ndarray, x: float) -> tuple[float, float] | None:
    """(y, w): the direct beam's row from the profile of the specular column x
    (:func:`_column_profile`), and its spread w (px), or None when the column shows no
    specular spot above a horizon.

    On the specular rod the film's horizon (exit angle 0) lies d tan(alpha_i) above the
    direct beam and the specular reflection (exit angle alpha_i) d tan(2 alpha_i) above
    it, so y = 2 y_h - y_s (to alpha_i^2: 1e-5 of d tan(alpha_i) at 0.4 degrees). The
    horizon y_h: :func:`_step` over the whole column.
    The spot y_s: above the horizon, the row where the profile most exceeds its running
    median over +-SPOT_REACH rows, by at least SPOT_CONTRAST, refined by a parabola; a
    spot, not a ring crossing the column: at the columns SPOT_SIDE of the width to either
    side the same row exceeds its median by at most half as much; at least SPOT_REACH rows
    above the horizon (the step's window and the spot's width: a bright band or the
    direct beam's halo at the horizon's edge is no spot).
    """
    profile = _column_profile(counts, ok, x)
    rows = np.flatnonzero(np.isfinite(profile))
    step = horizon.step(profile[rows], rows)
    if step is None:
        return None
    y_h, spread_h, above = step
    if not _persists(profile, y_h):
        return None
    top = int(rows[above]) - 2
    if top < 2 * SPOT_REACH:
        return None
    side = max(3.0, SPOT_SIDE * counts.shape[1])
    excess = _excess(profile[:top])
    i = int(np.argmax(excess))
    if excess[i] < SPOT_CONTRAST:
        return None
    for off in (-side, side):
        aside = _column_profile(counts, ok, x + off) if 0 <= x + off < counts.shape[1] else None
        if aside is not None and _excess(aside[:top])[i] > 0.5 * excess[i]:
            return None
    seg = profile[:top]
    y_s = i + _parabola(np.nan_to_num(seg, nan=-np.inf)[None, :], 0, i, axis=1)
    if y_h - y_s < SPOT_REACH:
        return None  # not resolved from the horizon: a band or halo at its edge
    return 2.0 * y_h - y_s, 2.0 * spread_h


def _persists(profile: np.ndarray, y_h: float) -> bool:
    """True if the column ``profile`` (rows,; NaN where invalid) stands, in the median of
    the HORIZON_PERSIST rows above the horizon y_h (past the step's own 4), at least half a
    horizon.HORIZON_STEP above the median of as many rows below it."""
    i = round(y_h)
    above = profile[max(i - 4 - HORIZON_PERSIST, 0) : max(i - 4, 0)]
    below = profile[i + 4 : i + 4 + HORIZON_PERSIST]
    if not (np.isfinite(above).any() and np.isfinite(below).any()):
        return False
    return bool(np.nanmedian(above) - np.nanmedian(below) >= 0.5 * horizon.HORIZON_STEP)


def _column_stops(
    counts: np.ndarray, ok: np.ndarray, x: float, level: _Level
) -> tuple[float, float, float] | None:
    """(y, w, evidence): the direct beam's row on the specular column x (frame px) from the
    small stops that cross it (:func:`dips.find_dips`), its spread w (px) and the evidence
    (1 for a pair of stops about the horizon, STOP_SINGLE for one stop below it), or None.

    Beamlines block the direct beam and the specular spot with small stops; both lie on
    the specular column, the beam d tan(alpha_i) below the film's horizon (y grows down:
    exit angle -alpha_i, under the sample plane), the spot as far above it (exit angle
    alpha_i), so a stop over each makes a dark interval of the column on either side of
    the horizon, their middles (a round stop's centre row: :mod:`scattertag.beam.dips`)
    mirror images about it. The horizon: :func:`_horizon` of the level (frame-wide, the
    median over the columns, which the stops do not sway), refined on the column by
    :func:`_step` within 2 blocks of it. Intervals whose top edge lies at the horizon
    (within DIP_SIDE rows and its spread) are the film's shadow, not a stop; intervals dark
    at both columns max(length, 2 DIP_SIDE) aside are bands across the frame (gaps stored
    as zeros, a bar), not a stop; a stop is at least STOP_SHORTEST rows long and at most
    2 x :data:`shadow.MAX_RADIUS` of the longer side. A pair: a lower and an upper
    interval with |y_upper + y_lower - 2 y_h| at most half their summed lengths (each stop
    covers its beam) plus the horizon's spread, the most symmetric; y is the mean of the
    lower middle and the mirror of the upper one (two estimates of the beam), w half their
    difference (at least the middles' spreads). One interval below the horizon without a
    partner: its middle (a stop is centred on the beam), w its spread.
    """
    h = level.horizon
    if h is None:
        return None
    y0 = h * level.b - 0.5  # frame row between level rows h - 1 and h
    profile = _column_profile(counts, ok, x)
    rows = np.flatnonzero(np.isfinite(profile))
    v = profile[rows]
    step = horizon.step(v, rows, (y0 - 2 * level.b, y0 + 2 * level.b))
    if step is None:
        return None
    y_h, w_h, _ = step
    longest = int(2 * shadow.MAX_RADIUS * max(counts.shape))
    found = [
        d
        for d in dips.find_dips(v, rows, longest)
        if d.length >= STOP_SHORTEST
        and abs(d.top - y_h) > dips.DIP_SIDE + w_h
        and not _band(counts, ok, x, d, longest)
    ]
    lower = [d for d in found if d.middle > y_h]
    upper = [d for d in found if d.middle < y_h]
    if not lower:
        return None
    pairs = [(abs(u.middle + d.middle - 2.0 * y_h), u, d) for d in lower for u in upper]
    pairs = [p for p in pairs if p[0] <= 0.5 * (p[1].length + p[2].length) + w_h]
    if not pairs:
        d = min(lower, key=lambda d: d.middle)  # the nearest the horizon
        return d.middle, max(d.spread, 0.5), STOP_SINGLE
    asym, u, d = min(pairs, key=lambda p: p[0])
    y = 0.5 * (d.middle + 2.0 * y_h - u.middle)
    w = max(0.5 * asym, math.hypot(d.spread, u.spread, 2.0 * w_h) / 2.0, 0.5)
    return y, w, 1.0


def _band(counts: np.ndarray, ok: np.ndarray, x: float, d: dips.Dip, longest: int) -> bool:
    """True if the columns max(length, 2 DIP_SIDE) to both sides of x are as dark at the
    middle of the interval d (at least half its depth below their closing): a band across
    the frame, not a stop."""
    off = max(d.length, 2.0 * dips.DIP_SIDE)
    row = round(d.middle)
    for side in (x - off, x + off):
        if not 0 <= side < counts.shape[1]:
            return False
        p = _column_profile(counts, ok, side)
        if not np.isfinite(p[row]):
            return False
        rows = np.flatnonzero(np.isfinite(p))
        dark = dips.depth(p[rows], longest)[np.searchsorted(rows, row)]
        if dark < 0.5 * d.depth:
            return False
    return True


def _half(
    counts: np.ndarray,
    ok: np.ndarray,
    level: _Level,
    x: float,
    rival: tuple[float, float] | None = None,
) -> horizon.Half | None:
    """The beam of the half pattern above the film's horizon about column x (frame px;
    :func:`horizon.cuts` from the rival's row + HALF_CLEAR down when a ``rival`` centre
    (x, y) is given, else over the whole column, the floor the 0.5th percentile of the
    level's valid block means), the one of largest isotropy (:func:`horizon.half_pattern`),
    or None."""
    floor = percentile(np.expm1(level.g[level.ok]), 0.5) if level.ok.any() else 0.0
    start = 0 if rival is None else max(math.ceil(rival[1] + HALF_CLEAR), 0)
    lit = (level.lit, level.b)
    halves = []
    for cut in horizon.cuts(counts, ok, lit, x, floor, start):
        if rival is not None and cut.y - rival[1] < max(HALF_CLEAR, 2.0 * cut.spread):
            continue
        half = horizon.half_pattern(counts, ok, lit, x, cut, rival)
        if half is not None:
            halves.append(half)
    return max(halves, key=lambda h: h.r2, default=None)


def _half_candidate(half: horizon.Half, rho: float) -> tuple[_Candidate, float]:
    """The ``grazing`` candidate of a half pattern and its confidence: 0.7 (one estimator)
    times clip((R^2 - 0.02) / 0.1, 0, 1) times P = 1 - exp(-t^2 / w^2), t = 2 px, w the
    spread of y."""
    evidence = float(np.clip((half.r2 - 0.02) / 0.1, 0.0, 1.0))
    conf = 0.7 * evidence * (1.0 - math.exp(-4.0 / half.spread**2))
    cand = _Candidate("grazing", half.x, half.y, half.spread, 0.0, half.r2, half.r2, rho=rho)
    return cand, conf


def _grazing(counts: np.ndarray, ok: np.ndarray, level: _Level) -> tuple[_Candidate, float] | None:
    """The direct beam of a grazing-incidence frame (method ``grazing``) and its
    confidence, or None when the frame shows no mirror line or nothing fixes y.

    x is the mirror column (:func:`_mirror_column`, at least GRAZING_RHO). y lies on that
    column: from the specular geometry (:func:`_specular`: 2 y_horizon - y_spot) when the
    column shows a spot above a horizon, else from the small stops over the direct beam
    and the spot (:func:`_column_stops`), else from the half pattern above the horizon
    (:func:`_half`: x and y both from its isotropy, y on or below the horizon).
    Confidence 0.7 (one estimator) times the evidence (1 for the specular geometry and a
    pair of stops, STOP_SINGLE for one stop, clip((R^2 - 0.02) / 0.1, 0, 1) for the half
    pattern) times P = 1 - exp(-t^2 / w^2), t = 2 px (the goal's tolerance), w the spread
    of y: a y the frame does not fix is "not found".
    """
    x, rho = _mirror_column(level)
    if not (math.isfinite(x) and rho >= GRAZING_RHO):
        return None
    fx = level.to_frame(x, 0.0)[0]
    spec = _specular(counts, ok, fx)
    found_y = (*spec, 1.0) if spec is not None else _column_stops(counts, ok, fx, level)
    if found_y is not None:
        fy, w, evidence = found_y
        iso = _isotropy(_pixels(level), x, level.from_frame(fx, fy)[1])
    else:
        half = _half(counts, ok, level, fx)
        return None if half is None else _half_candidate(half, rho)
    conf = 0.7 * evidence * (1.0 - math.exp(-4.0 / (w * w)))
    return _Candidate("grazing", fx, fy, w, 0.0, iso, iso, rho=rho), conf


def _below_horizon(
    counts: np.ndarray, ok: np.ndarray, level: _Level, best: _Candidate
) -> tuple[_Candidate, float] | None:
    """A found centre that a grazing beam cannot have, replaced: the ``grazing`` candidate
    of the half pattern (:func:`_half`) under a horizon that crosses the chosen centre's
    column at least HALF_CLEAR px below it, when the half pattern is isotropic about a
    point on or below that horizon and not about the chosen centre (the centroid of the
    half pattern, which point symmetry, gradient lines, the isotropy of the whole frame
    and arcs cut by the horizon find), with its confidence (:func:`_half_candidate`);
    None where no such horizon shows (frames without a film). The chosen centre must lie
    on the frame within HALF_NEAR of the width of the mirror column (:func:`_mirror_column`,
    at least GRAZING_RHO): a half pattern is mirror-symmetric about the beam's column.
    """
    if not on_frame(best.x, best.y, counts.shape):
        return None
    x, rho = _mirror_column(level)
    if not (math.isfinite(x) and rho >= GRAZING_RHO):
        return None
    if abs(level.to_frame(x, 0.0)[0] - best.x) > HALF_NEAR * counts.shape[1]:
        return None
    half = _half(counts, ok, level, best.x, (best.x, best.y))
    return None if half is None else _half_candidate(half, rho)


def _glow(counts: np.ndarray, ok: np.ndarray, ring: _Level) -> tuple[_Candidate, float] | None:
    """The direct beam behind a rod beamstop that crosses it, from the glow beside the rod
    (:func:`scattertag.beam.glow.glow_of`, method ``glow``), and its confidence; None when
    no long shadow shows a glow.

    Rows and columns of zeros across the frame (module gaps not marked invalid) are left
    out first, so that they neither join the rod's shadow nor pass for a rod. Confidence
    0.7 (one estimator) times the evidence clip((c - GLOW_CONTRAST) / GLOW_CONTRAST, 0, 1)
    of the glow's contrast c times P = 1 - exp(-t^2 / sigma^2), t = 2 px.
    """
    gaps = beam_glow.gap_lines(counts, ok)
    if gaps.any():
        ok = ok & ~gaps
        use = np.where(ok, counts, 0)
        ring = _level(_block_sums(use, ring.b), _block_sums(ok, ring.b), ring.b, ring.sigma)
    if np.count_nonzero(ring.ok) < 64:
        return None  # a frame of zeros (a dark frame): no light, no glow
    shadows = ring.shadows(max(counts.shape))
    glows = [g for rod in beam_glow.rods(shadows) if (g := beam_glow.glow_of(counts, ok, rod))]
    if not glows:
        return None
    glow = max(glows, key=lambda g: g.contrast)
    c = beam_glow.GLOW_CONTRAST
    evidence = float(np.clip((glow.contrast - c) / c, 0.0, 1.0))
    conf = 0.7 * evidence * (1.0 - math.exp(-4.0 / max(glow.sigma**2, 1e-12)))
    lx, ly = ring.from_frame(glow.x, glow.y)
    iso = _isotropy(_pixels(ring), lx, ly)
    return _Candidate("glow", glow.x, glow.y, glow.sigma, 0.0, iso, iso), conf


#: Dark valleys of the ring level (:func:`_valley_starts`): at least VALLEY_LENGTH level px
#: long, at most VALLEY_WIDTH level px (robust spread) off a straight line; the longest
#: VALLEY_MOST are fitted.
VALLEY_LENGTH, VALLEY_WIDTH, VALLEY_MOST = 8.0, 1.0, 3


def _valley_starts(
    ring: _Level, edge: np.ndarray
) -> list[tuple[tuple[float, float], float, float]]:
    """(start, angle, half) of the longest straight dark valleys of the ring level (the
    ridges of -g, :func:`_ridges`): a rod or bar too thin or too faint for the shadow mask.
    ``start`` (frame x, y) one block inside the end farther from the invalid blocks and the
    level's border (``edge``, (R, C) distances in blocks),
    ``angle`` (radians) along the valley from there, ``half`` one block (px)."""
    neg = replace(ring, g=-ring.g, lit=ring.ok, dark=np.zeros_like(ring.ok), _inner={})
    rd = _ridges(neg, int(VALLEY_LENGTH))
    found = []
    for k in range(rd.count):
        sel = rd.label == k
        x, y = rd.x[sel], rd.y[sel]
        if x.size < 3:
            continue
        dx, dy = x - x.mean(), y - y.mean()
        vals, vecs = np.linalg.eigh(np.cov(np.stack([dx, dy])))
        along = dx * vecs[0, 1] + dy * vecs[1, 1]
        length = float(along.max() - along.min())
        if length < VALLEY_LENGTH or math.sqrt(max(vals[0], 0.0)) > VALLEY_WIDTH:
            continue
        ends = [int(np.argmin(along)), int(np.argmax(along))]
        border = [edge[round(y[j]), round(x[j])] for j in ends]
        tip, other = ends if border[0] >= border[1] else ends[::-1]
        angle = math.atan2(y[other] - y[tip], x[other] - x[tip])
        fx, fy = ring.to_frame(float(x[tip]), float(y[tip]))
        b = float(ring.b)
        start = (fx + b * math.cos(angle), fy + b * math.sin(angle))
        found.append((x.size, (start, angle, b)))
    found.sort(key=lambda f: -f[0])
    return [f[1] for f in found[:VALLEY_MOST]]


def _outline(counts: np.ndarray, ok: np.ndarray, ring: _Level) -> tuple[_Candidate, float] | None:
    """The beam at the round end of a bar or rod fitted to the counts about it
    (:func:`scattertag.beam.outline.fit_tip`, method ``outline``) from the tips of the
    largest shadows (:func:`scattertag.beam.shadow.tip_starts`) and of the dark valleys
    (:func:`_valley_starts`), each the end farther from the invalid blocks and the border
    (a stop held from outside reaches the frame's edge or a mask), the most precise that
    pins the beam (:func:`outline.pins`); its confidence 0.7 (one estimator) times
    P = 1 - exp(-t^2 / sigma^2), t = 2 px."""
    if np.count_nonzero(ring.ok) < 64:
        return None
    side = max(counts.shape)
    edge = ndimage.distance_transform_edt(np.pad(ring.ok, 1))[1:-1, 1:-1]
    starts = [
        (start, angle, max(half, float(ring.b)))
        for start, angle, half in tip_starts(ring.shadows(side), side, edge=edge)
    ]
    best = None
    for start, angle, half in starts + _valley_starts(ring, edge):
        tip = outline.fit_tip(counts, ok, start, angle, half)
        if (
            tip is not None
            and on_frame(tip.x, tip.y, counts.shape)
            and outline.pins(tip, half)
            and (best is None or tip.sigma < best.sigma)
        ):
            best = tip
    if best is None:
        return None
    conf = 0.7 * (1.0 - math.exp(-4.0 / max(best.sigma**2, 1e-12)))
    lx, ly = ring.from_frame(best.x, best.y)
    iso = _isotropy(_pixels(ring), lx, ly)
    return _Candidate("outline", best.x, best.y, best.sigma, 0.0, iso, iso), conf


def _compact(
    counts: np.ndarray,
    ok: np.ndarray,
    levels: tuple[_Level, _Level, _Level],
    cands: list[_Candidate],
    best: _Candidate | None,
    conf: float,
) -> tuple[_Candidate | None, float]:
    """(best, conf), or a compact feature about the beam at full resolution
    (:mod:`scattertag.beam.compact`, method ``compact``) when it is found: the most
    confident (:func:`compact.confidence`, the fine-level isotropy about each feature
    against the most isotropic of ``cands``), if above ``conf``."""
    _, fine, ring = levels
    if np.count_nonzero(ring.ok) < 64:
        return best, conf
    floor = _dark_floor(np.expm1(ring.g[ring.ok]))
    feats = compact.find(counts, ok, ring.g, ring.lit, ring.b, floor)
    if not feats:
        return best, conf
    pf = _pixels(fine)
    top = max((c.fine_isotropy for c in cands), default=0.0)
    scored = []
    for f in feats:
        iso = _isotropy(pf, *fine.from_frame(f.x, f.y))
        cand = _Candidate("compact", f.x, f.y, f.sigma, 0.0, iso, iso, rho=f.rho, span=f.cover)
        scored.append((compact.confidence(f, iso, top), f.snr, cand))
    c, _, cand = max(scored, key=lambda s: s[:2])
    return (cand, c) if c > conf else (best, conf)


def _by_method(cands: list[_Candidate]) -> dict[str, _Candidate]:
    """Each method's candidate; of several (point-symmetry peaks), the most isotropic."""
    by: dict[str, _Candidate] = {}
    for c in cands:
        if c.method not in by or c.fine_isotropy > by[c.method].fine_isotropy:
            by[c.method] = c
    return by


def _choose_by_rules(cands: list[_Candidate], shape: tuple[int, int]) -> _Candidate | None:
    """The candidate to trust on a frame of ``shape`` (rows, cols).

    A beamstop's round edge (:mod:`scattertag.beam.shadow`) is trusted unless a tight
    ring fit (3 arcs, sigma at most 0.5 px) is there: on 350 simulated frames 69 of the 70
    kept shadow circles lay within 2.1 px of the true centre (the other, 378 px off, lost
    to a tight ring fit).

    Among point symmetry, gradient lines and the isotropy search, the one with the largest
    fine-level isotropy (point symmetry, the most precise on the frame, when within 0.01 of
    it). A ring fit with at least 2 arcs replaces it when its standard error is at most
    0.5 px, or at most RING_SIGMA_PX unless it explains the image clearly worse (fine
    isotropy and gradient coherence both lower by more than 0.02), or at most RING_SIGMA_PX
    through MANY_ARCS arcs when no second estimator backs the other choice (grazing
    incidence: arcs cut by the horizon in a frame that is isotropic about nothing). A loose
    fit through 2 arcs never replaces a choice that another estimator backs and that lies
    outside its 3 sigma. A centre so chosen that lies off the frame gives way to a ring fit
    off the frame, even through one arc, within OFF_ARC_REACH of the diagonal that explains
    the image about as well (:func:`_arc_off_frame`).
    """
    diag = math.hypot(*shape)
    by = _by_method(cands)
    stop = min((c for c in cands if c.method == "beamstop"), key=lambda c: c.sigma, default=None)
    rings = by.get("rings")
    if stop is not None and not (rings is not None and rings.arcs >= 3 and rings.sigma <= 0.5):
        return stop
    others = [by[m] for m in ("symmetry", "gradient", "isotropy") if m in by]
    best = max(others, key=lambda c: c.fine_isotropy) if others else None
    sym = by.get("symmetry")
    if sym is not None and best is not None and sym.fine_isotropy >= best.fine_isotropy - 0.01:
        best = sym
    rings = by.get("rings")
    if rings is None:
        return best
    if best is None:
        return rings if rings.arcs >= 2 and rings.sigma <= RING_SIGMA_PX else None
    if _contradicted(rings, best, cands, diag):
        return _arc_off_frame(best, rings, shape)
    if (
        rings.arcs >= 2
        and rings.sigma <= RING_SIGMA_PX
        and (
            rings.sigma <= 0.5
            or rings.fine_isotropy >= best.fine_isotropy - 0.02
            or rings.coherence >= best.coherence - 0.02
            or (rings.arcs >= MANY_ARCS and _backers(best, cands, diag) == 0)
        )
    ):
        return rings
    return _arc_off_frame(best, rings, shape)


def _arc_off_frame(best: _Candidate, rings: _Candidate, shape: tuple[int, int]) -> _Candidate:
    """``rings`` instead of ``best`` if both lie off the frame, within OFF_ARC_REACH of the
    diagonal of each other, and the ring fit's fine isotropy is at most OFF_ARC_ISOTROPY
    below best's. Off the frame the isotropy search and the gradient lines are weak along
    the radius (nearly straight arcs fit as well a little nearer or farther), while even one
    arc's curvature fixes the distance (tuned on 150 frames of seed 1: one gained, none
    lost; seed 0: two gained)."""
    off = not on_frame(best.x, best.y, shape) and not on_frame(rings.x, rings.y, shape)
    near = math.hypot(rings.x - best.x, rings.y - best.y) <= OFF_ARC_REACH * math.hypot(*shape)
    if off and near and rings.fine_isotropy >= best.fine_isotropy - OFF_ARC_ISOTROPY:
        return rings
    return best


def _arc_guess(
    best: _Candidate | None, cands: list[_Candidate], ring: _Level, shape: tuple[int, int]
) -> _Candidate | None:
    """A not-found choice from FALLOFF_FROM (or none) gives way to the most precise ring
    fit (not ``extra``) off the frame, within FALLOFF_INSIDE_REACH diagonals of its middle,
    whose standard error is at most the goal's tolerance (2 % of the diagonal) and about
    which the rings show (:func:`_crest` at least CREST_Z): one arc's curvature fixes the
    distance that the isotropy search and the gradient lines slide along, even where its
    isotropy is lower than theirs (seed 0, frame 137: 0.079 lower, beyond
    :func:`_arc_off_frame`'s reach). A not-found choice of ARC_GUESS_WEAK (a ring fit or
    a shadow-axis centre) about which no rings show gives way so too, and to the arcs' own
    shared centres besides (:func:`_arc_fits`). Only the position changes: the caller
    keeps its confidence."""
    if best is not None and best.method not in FALLOFF_FROM + ARC_GUESS_WEAK:
        return best
    weak = best is not None and best.method in ARC_GUESS_WEAK
    if weak and best is not None and _crest(ring, best.x, best.y) >= CREST_Z:
        return best
    rows, cols = shape
    diag = math.hypot(rows, cols)
    own = [c for c in cands if c.method == "rings" and not c.extra]
    fits = [
        c
        for c in (_arc_fits(own, ring) if weak else own)
        if not on_frame(c.x, c.y, shape)
        and c.sigma <= 0.02 * diag
        and math.hypot(c.x - (cols - 1) / 2, c.y - (rows - 1) / 2) <= FALLOFF_INSIDE_REACH * diag
    ]
    for fit in sorted(fits, key=lambda c: c.sigma):
        if _crest(ring, fit.x, fit.y) >= CREST_Z:
            return fit
    return best


def _arc_fits(fits: list[_Candidate], ring: _Level) -> list[_Candidate]:
    """The ring fits ``fits`` and the centres that the ring level's arcs share, each
    proposed by any clean arc whatever its angular span (:func:`_arc_consensus` with
    min_span 0, up to ARC_SEEDS of them, through any number of arcs): the arcs of a ring
    beside the frame may span a few degrees each, and the common fit through all arcs is
    pulled off by arcs about other points (seed 3, frame 30: a window's edge; one arc's
    own circle lies 0.0 % of the diagonal from the beam, the common fit 42 %)."""
    rd = ring.ridges
    shared = _arc_consensus(rd, 2.0 * math.hypot(*ring.g.shape), ARC_SEEDS, 1.0, 0.0, ARC_SEEDS)
    fits = list(fits)
    for x, y, s, n in shared:
        fx, fy = ring.to_frame(x, y)
        fits.append(_Candidate("rings", fx, fy, s * ring.b, 0.0, 0.0, 0.0, arcs=n))
    return fits


def _consensus_off_frame(
    best: _Candidate | None, cands: list[_Candidate], shape: tuple[int, int]
) -> _Candidate | None:
    """``best``, or, when it is no ring fit and lies off the frame, the most isotropic
    consensus ring fit (``extra``, TIGHT_ARCS arcs or more) that :func:`_arc_off_frame`
    prefers to it: off the frame the arcs' curvature fixes the distance that the isotropy
    search and the gradient lines slide along, and a consensus leaves out the arcs about
    other points that pull the common fit away (seed 0, frame 347: 9 px against the
    common fit's 165 and the isotropy search's 101)."""
    if best is None or best.method == "rings" or on_frame(best.x, best.y, shape):
        return best
    fits = [c for c in cands if c.extra and c.method == "rings" and c.arcs >= TIGHT_ARCS]
    for fit in sorted(fits, key=lambda c: -c.fine_isotropy):
        if _arc_off_frame(best, fit, shape) is fit:
            return fit
    return best


def _contradicted(
    rings: _Candidate, best: _Candidate, cands: list[_Candidate], diag: float
) -> bool:
    """True if an estimator other than the rings backs ``best``, none lies within
    max(2 px, 3 sigma) of the ring fit, and the fit is either loose (2 arcs, sigma > 0.5 px)
    and over 3 sigma from ``best``, or not tight (sigma > 0.5 px), over max(3 sigma, 2 px)
    from ``best`` and explaining the image no better (fine isotropy): the arcs of n-fold
    rings and the edges of rod and disk beamstops make ring fits a few pixels off with a
    small standard error."""
    if rings.sigma <= 0.5:
        return False
    gap = math.hypot(rings.x - best.x, rings.y - best.y)
    if rings.arcs >= 3 and (gap <= 2.0 or best.fine_isotropy < rings.fine_isotropy):
        return False
    others = [c for c in cands if c.method != "rings"]
    reach = max(2.0, 3.0 * rings.sigma)
    backed = any(
        c.method in INDEPENDENT and math.hypot(c.x - rings.x, c.y - rings.y) <= reach
        for c in others
    )
    return gap > 3.0 * rings.sigma and _backers(best, others, diag) >= 1 and not backed


def _backers(best: _Candidate, cands: list[_Candidate], diag: float) -> int:
    """How many independent estimators (rings, symmetry, gradient) other than ``best``'s
    lie within max(2 px, 0.5 % of the diagonal) of it; the isotropy search is not backed
    by the candidate it started from (it climbs a few pixels from it)."""
    tol = max(2.0, 0.005 * diag)
    return len(
        {
            c.method
            for c in cands
            if c.method in INDEPENDENT
            and c.method not in (best.method, best.seed)
            and math.hypot(c.x - best.x, c.y - best.y) <= tol
        }
    )


def _radial(
    ring: _Level, x: float, y: float, sectors: int = 1, reach: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The radial profile of g about frame point (x, y) on the ring level's lit pixels, per
    sector (``sectors`` about the point) and radius bin of one level pixel: (n, m, sd), each
    (sectors, bins): pixel count, mean m_k (NaN under 5 pixels) and the pixels' standard
    deviation. With ``reach`` only the pixels of the box reach + 1 level pixels about the
    point are read: bins up to ``reach`` are whole, farther ones partial."""
    lx, ly = ring.from_frame(x, y)
    r0 = c0 = 0
    lit = ring.lit
    if reach is not None:
        r0, c0 = max(int(ly) - reach - 1, 0), max(int(lx) - reach - 1, 0)
        lit = lit[r0 : max(int(ly) + reach + 3, 0), c0 : max(int(lx) + reach + 3, 0)]
    iy, ix = nonzero2d(lit)
    if iy.size == 0:
        empty = np.zeros((sectors, 0))
        return empty, empty, empty
    iy, ix = iy + r0, ix + c0
    dx, dy = ix - lx, iy - ly
    k = np.sqrt(dx * dx + dy * dy).astype(np.intp)
    bins = int(k.max()) + 1
    idx = k
    if sectors > 1:
        sector = ((np.arctan2(dy, dx) + math.pi) * (sectors / (2 * math.pi))).astype(np.intp)
        idx = np.minimum(sector, sectors - 1) * bins + k
    size = sectors * bins
    g = ring.g[iy, ix]
    n = np.bincount(idx, minlength=size).reshape(sectors, bins)
    s1 = np.bincount(idx, g, size).reshape(sectors, bins)
    s2 = np.bincount(idx, g * g, size).reshape(sectors, bins)
    use = n >= 5
    m = np.where(use, s1 / np.maximum(n, 1), np.nan)
    sd = np.sqrt(np.maximum(np.where(use, s2 / np.maximum(n, 1), 0) - np.nan_to_num(m) ** 2, 0))
    return n, m, sd


def _crest(ring: _Level, x: float, y: float) -> float:
    """The largest crest of the radial profile of g about frame point (x, y), in standard
    errors: per sector (CREST_SECTORS about the point) and radius bin (:func:`_radial`),
    a crest is a bin at least as high as its neighbours, its height the smaller of
    m_k - min m over the CREST_REACH bins inside and outside it, over its standard error
    (at least CREST_SE_FLOOR). A ring about the point is a crest of tens to hundreds of
    standard errors; a step (a window's edge, a shadow's) or arcs about another point give
    none."""
    n, m, sd = _radial(ring, x, y, CREST_SECTORS)
    if m.shape[1] == 0:
        return 0.0
    se = np.maximum(sd / np.sqrt(np.maximum(n, 1)), CREST_SE_FLOOR)
    r = CREST_REACH
    pad = np.full((CREST_SECTORS, r), np.nan)
    win = np.lib.stride_tricks.sliding_window_view(np.hstack([pad, m, pad]), 2 * r + 1, axis=1)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows: no crest there
        low = np.maximum(np.nanmin(win[..., :r], axis=2), np.nanmin(win[..., r + 1 :], axis=2))
        top = np.nanmax(win[..., r - 1 : r + 2], axis=2)
        z = np.where((n >= 5) & (m >= top), (m - low) / se, 0.0)
    return float(np.nan_to_num(z, nan=0.0).max())


def _local_isotropy(ring: _Level, x: float, y: float) -> float:
    """The share of the structure beyond the noise about frame point (x, y) that is radial,
    in [0, 1] (0 where noise explains all of it, NaN where too few ring-level pixels lie
    about it): the means m_sk of g per sector s (PIN_SECTORS) and radius bin k (one level
    pixel, out to PIN_REACH, at least 5 pixels; :func:`_radial`) split into a radial part,
    sum_k N_k (M_k - M)^2, and an azimuthal one, sum_sk n_sk (m_sk - M_k)^2 (M_k the bin's
    mean over its sectors), each in units of the bin's pixel variance (the lower median
    over its sectors) less its degrees of freedom (what noise alone gives):
    radial / (radial + azimuthal)."""
    n, m, sd = (a[:, : PIN_REACH + 1] for a in _radial(ring, x, y, PIN_SECTORS, PIN_REACH))
    use = (n >= 5) & np.isfinite(m)
    if np.count_nonzero(use) < 4:
        return math.nan
    w = np.where(use, n, 0).astype(np.float64)
    mm = np.where(use, m, 0.0)
    nk = w.sum(axis=0)
    k = nk > 0
    mk = (mm * w).sum(axis=0) / np.maximum(nk, 1.0)
    mid = np.maximum(np.count_nonzero(use, axis=0) - 1, 0) // 2  # the lower median's place
    var = np.sort(np.where(use, sd * sd, np.inf), axis=0)
    noise = np.where(k, np.maximum(np.take_along_axis(var, mid[None, :], 0)[0], 1e-12), 1.0)
    cells, bins = int(np.count_nonzero(use)), int(np.count_nonzero(k))
    across = max(float(((mm - mk) ** 2 * w / noise).sum()) - (cells - bins), 0.0)
    mean = float((mk * nk)[k].sum() / nk[k].sum())
    radial = max(float((nk * (mk - mean) ** 2 / noise)[k].sum()) - (bins - 1), 0.0)
    return radial / (radial + across) if radial + across > 0 else 0.0  # noise alone


def _pinned(counts: np.ndarray, ok: np.ndarray, ring: _Level, c: _Candidate) -> bool:
    """True if the image pins candidate c's centre: it lies off the frame (nothing there to
    read), or the pattern about it is radial at the ring level (:func:`_local_isotropy` at
    least PIN_ISOTROPY, or too few lit pixels to say), or a round spot at full resolution marks
    it (:func:`compact.spot`: the direct beam's, which block means wash out; a
    cosmic-ray track's middle is no such spot)."""
    if not on_frame(c.x, c.y, counts.shape):
        return True
    local = _local_isotropy(ring, c.x, c.y)
    if not local < PIN_ISOTROPY:
        return True
    floor = _dark_floor(np.expm1(ring.g[ring.ok]))
    top = float(np.max(counts[ok]))
    e, use, r0, c0 = compact.window(counts, ok, top, floor, c.x, c.y)
    return compact.spot(e, use, c.x - c0, c.y - r0)


def _flat_run(n: np.ndarray, m: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ks, v, out) of a radial profile (n, m: (bins,) counts and means of g of b x b blocks):
    the bins with a mean, their means, and the indices into ks where the profile from the
    centre out spans more than max(PLATEAU_FLAT, 6 counting-noise standard errors: a block's
    var g = c / (b (1 + c))^2 for c counts a pixel, Poisson)."""
    ks = np.flatnonzero(np.isfinite(m))
    v = m[ks]
    c = np.expm1(v)
    se = np.sqrt(c / n[ks]) / (b * (1.0 + c))
    tol = np.maximum(PLATEAU_FLAT, 6.0 * np.maximum.accumulate(se))
    span = np.maximum.accumulate(v) - np.minimum.accumulate(v)
    return ks, v, np.flatnonzero(span > tol)


def _plateau(ring: _Level, x: float, y: float) -> float:
    """The radius (ring-level px) of a bright flat top about frame point (x, y) bounded by a
    step down, 0 if there is none. From the centre out, the radial profile (one sector,
    :func:`_radial`) spans at most max(PLATEAU_FLAT, 6 counting-noise standard errors) over
    at least PLATEAU_MIN bins, the bin that ends the run lies below it, and within
    max(PLATEAU_EDGE of its radius, 3) bins the profile falls PLATEAU_STEP below the top's
    mean. A top at the frame's count limit (the highest g of the level, shared by 4 or more
    pixels, within PLATEAU_STEP) is clipping of the brightest scattering, not a plateau.
    Scattering about the beam falls from the centre or rises to rings: a falloff that is
    flat to radius R falls PLATEAU_STEP over more than R (Guinier, a sphere's form factor:
    1.45 R); a flat disk or square with a blurred edge (a window, an aperture: 0.02-0.1 R;
    a square's corners 0.07 R to half the step) is flat inside whatever its size, and its
    centre is its own, not the beam's."""
    n, m, _ = (a[0] for a in _radial(ring, x, y, reach=2 * PLATEAU_MIN))
    ks, v, out = _flat_run(n[: 2 * PLATEAU_MIN + 1], m[: 2 * PLATEAU_MIN + 1], ring.b)
    if out.size and out[0] < PLATEAU_MIN:
        return 0.0  # most profiles are not flat near the centre: decided on its bins alone
    n, m, _ = (a[0] for a in _radial(ring, x, y))
    ks, v, out = _flat_run(n, m, ring.b)
    if out.size == 0 or out[0] < PLATEAU_MIN or v[out[0]] > v[: out[0]].min():
        return 0.0  # flat to the last bin, too small, or rising: no step down
    top, end = float(v[: out[0]].mean()), int(ks[out[0]])
    edge = m[end : end + max(3, math.ceil(PLATEAU_EDGE * end)) + 1]
    if top - float(np.nanmin(edge)) < PLATEAU_STEP:
        return 0.0
    lit = ring.g[ring.lit]
    high = float(lit.max())
    if top >= high - PLATEAU_STEP and np.count_nonzero(lit == high) >= 4:
        return 0.0  # clipped at the count limit
    return float(end)


def _confidence(
    best: _Candidate, cands: list[_Candidate], diag: float, ring: _Level | None = None
) -> float:
    """Confidence in [0, 1] of the chosen centre: agreement times evidence.

    Agreement: how many independent estimators (rings, symmetry, gradient) other than the
    chosen one lie within max(2 px, 0.5 % of the diagonal) of it: none 0.25, one 0.7, two
    1; a ring fit with at least 3 arcs counts as one if the rings show about its centre
    (a crest of the radial profile, :func:`_crest` on the ``ring`` level, at least
    CREST_Z; not asked when ``ring`` is None or another estimator backs it). Evidence:
    clip((R^2 - 0.02) / 0.1, 0, 1) with R^2 the fine-level isotropy about the centre
    (noise gives |R^2| < 0.02), or 1 for a ring fit with at least 3 arcs (arcs are
    evidence themselves).
    """
    if ring is not None:  # a ring fit backs a centre only where its rings show
        tol = max(2.0, 0.005 * diag)
        cands = [
            c
            for c in cands
            if c.method != "rings"
            or c.method == best.method
            or math.hypot(c.x - best.x, c.y - best.y) > tol
            or _crest(ring, c.x, c.y) >= CREST_Z
        ]
    near = _backers(best, cands, diag)
    strong = _stands_alone(best)
    if (
        strong
        and best.method == "rings"
        and near == 0
        and ring is not None
        and _crest(ring, best.x, best.y) < CREST_Z
    ):
        return 0.25  # arcs that are not rings about this centre: one estimator alone
    if strong:
        near = max(near, 1)
    agree = (0.25, 0.7, 1.0)[min(near, 2)]
    return float(agree * _evidence(best))


def _stands_alone(c: _Candidate) -> bool:
    """True for a ring fit through at least 3 arcs and a beamstop circle: evidence in
    themselves, whatever the isotropy about them."""
    return (c.method == "rings" and c.arcs >= 3) or c.method == "beamstop"


def _evidence(c: _Candidate) -> float:
    """1 for a candidate that stands alone (:func:`_stands_alone`), else clip((R^2 - 0.02)
    / 0.1, 0, 1) with R^2 the fine-level isotropy about it (noise gives |R^2| < 0.02)."""
    if _stands_alone(c):
        return 1.0
    return float(np.clip((c.fine_isotropy - 0.02) / 0.1, 0.0, 1.0))


def _choose(
    cands: list[_Candidate], shape: tuple[int, int], ring: _Level | None = None
) -> tuple[_Candidate | None, float]:
    """The candidate to trust on a frame of ``shape`` (rows, cols) and its confidence.

    The rules (:func:`_choose_by_rules`, :func:`_confidence`) see the candidates of the
    original estimators; the ranker (:mod:`scattertag.beam.ranker`, a logistic
    model trained on simulated frames) sees them all, the ``extra`` ones too (the axes of
    long shadows, loose beamstop circles). The ranker's
    choice replaces the rules' when its P(hit) reaches RANK_OVERRIDE and exceeds the
    P(hit) it gives the rules' choice by RANK_MARGIN; its P times the rules' evidence
    (:func:`_evidence`: a centre about which the image is no more isotropic than noise is
    not found, whoever chose it) is then the confidence. When
    the rules find nothing (confidence under CONFIDENCE_THRESHOLD), the ranker's best
    candidate on the frame, if it scores higher than theirs, is the better guess of the
    position; the frame stays not found, with the rules' confidence. (Off the frame the
    ranker is weak: 34 % of off-frame benchmark frames have any candidate within the goal.)
    ``ring`` is the ring level, where :func:`_confidence` looks for the rings of a ring fit.
    Off the frame a consensus of arcs may replace the rules' choice
    (:func:`_consensus_off_frame`), and the choice gives way to a tight ring fit that agrees
    with it (:func:`_tight_rings`, the confidence kept).
    """
    diag = math.hypot(*shape)
    plain = [c for c in cands if not c.extra]
    best = _consensus_off_frame(_choose_by_rules(plain, shape), cands, shape)
    conf = _confidence(best, plain, diag, ring) if best is not None else 0.0
    p = ranker.probabilities(cands, shape)
    if p.size == 0:
        return best, conf
    k = int(np.argmax(p))
    mine = max((float(q) for c, q in zip(cands, p) if c is best), default=0.0)
    if p[k] >= RANK_OVERRIDE and p[k] - mine >= RANK_MARGIN:
        best, conf = cands[k], float(p[k]) * _evidence(cands[k])
        if _lone(best, plain, diag, ring):
            conf = min(conf, LONE)
    elif conf < CONFIDENCE_THRESHOLD and p[k] > mine and on_frame(cands[k].x, cands[k].y, shape):
        best = cands[k]  # a better guess; still not found
    return _tight_rings(best, cands, diag), conf


def _lone(c: _Candidate, cands: list[_Candidate], diag: float, ring: _Level | None) -> bool:
    """True for a pattern candidate (PATTERN) that no independent estimator among
    ``cands`` backs (:func:`_backers`) and about which no rings show (:func:`_crest`
    under CREST_Z on the ``ring`` level): one estimator alone, as the rules count it,
    whoever chose it."""
    if c.method not in PATTERN or _backers(c, cands, diag) > 0:
        return False
    return ring is None or _crest(ring, c.x, c.y) < CREST_Z


def _tight_rings(
    best: _Candidate | None, cands: list[_Candidate], diag: float
) -> _Candidate | None:
    """``best``, or the most precise tight ring fit (TIGHT_ARCS arcs, standard error at most
    TIGHT_SIGMA px; the consensus fits too) within max(2 px, 0.5 % of the diagonal) of it
    when best is neither such a fit nor a beamstop circle. Concentric arcs fix their centre
    to a fraction of a pixel; point symmetry and the gradient lines that back them read the
    whole pattern, whose anisotropy and ramps move them by pixels (seed 0: 2.0 px against
    the consensus fit's 0.84)."""
    if best is None or best.method == "beamstop" or _tight(best):
        return best
    tol = max(2.0, 0.005 * diag)
    near = [c for c in cands if _tight(c) and math.hypot(c.x - best.x, c.y - best.y) <= tol]
    return min(near, key=lambda c: c.sigma, default=best)


def _tight(c: _Candidate) -> bool:
    """True for a ring fit through TIGHT_ARCS arcs with a standard error of TIGHT_SIGMA px."""
    return c.method == "rings" and c.arcs >= TIGHT_ARCS and c.sigma <= TIGHT_SIGMA


def _choose_unwindowed(
    cands: list[_Candidate], shape: tuple[int, int], ring: _Level
) -> tuple[_Candidate | None, float]:
    """:func:`_choose`, but a found centre (not a beamstop circle) at the middle of a
    bright flat top bounded by a step (:func:`_plateau`: a window, an aperture) is no beam
    centre: the candidates within max(2 px, 0.5 % of the diagonal) of it (they read the
    same edge) are dropped and the rest chosen among, until the choice is no such centre.
    A choice that is not found (a guess of the position) on the frame is no window's middle
    either: the same, its confidence kept, while another candidate is left to guess."""
    best, conf = _choose(cands, shape, ring)
    tol = max(2.0, 0.005 * math.hypot(*shape))
    while (
        best is not None
        and (conf >= CONFIDENCE_THRESHOLD or on_frame(best.x, best.y, shape))
        and best.method != "beamstop"
        and _plateau(ring, best.x, best.y) > 0
    ):
        near = best
        cands = [c for c in cands if math.hypot(c.x - near.x, c.y - near.y) > tol]
        guess = conf < CONFIDENCE_THRESHOLD
        nxt, after = _choose(cands, shape, ring)
        if guess and nxt is None:
            break  # nothing else to guess
        best, conf = nxt, conf if guess else after  # a guess stays not found, as it was
    return best, conf


def _polish_symmetry(ring: _Level, best: _Candidate) -> _Candidate:
    """A chosen isotropy-search centre refined by the point symmetry of the pattern near it,
    at the ring level's resolution.

    The isotropy search has no precision of its own: it stops at a quarter of a fine block
    (1-2 px on 1000-2000 px frames). Near the beam I(q) = I(-q) holds best: a detector
    tilt tau moves the centre of a ring of radius R by about R^2 tan(tau) / d (d the
    distance in pixels), and anisotropy and a flat field's ramp grow with the distance
    too. So Gauss-Newton on g(p) - g(2c - p) (:func:`_refine_symmetry`, no ramp) over the
    lit pixels within POLISH_WINDOW of the ring level's longer side of the centre; kept if
    the pairs correlate at least POLISH_RHO and the centre moves at most one ring-level
    block (it refines, it does not jump). A shadow-axis centre is a point-symmetry
    refinement already: polishing it so changed 9 errors by 0.02-0.8 px, 5 for the worse,
    and no hit (seed 0 of the benchmark).
    """
    radius = POLISH_WINDOW * max(ring.g.shape)
    x, y, sigma, rho = _refine_symmetry(
        ring, ring.from_frame(best.x, best.y), ramp=False, radius=radius
    )
    if not (math.isfinite(x) and math.isfinite(y) and rho >= POLISH_RHO):
        return best
    fx, fy = ring.to_frame(x, y)
    if math.hypot(fx - best.x, fy - best.y) > ring.b:
        return best
    return replace(best, x=fx, y=fy, sigma=sigma * ring.b)


def _fine_level(ring: _Level, x: float, y: float) -> _Level:
    """The finest level the polish reads about the frame point (x, y): blocks of b / 2 (the
    ring level's kept sums) when the ring level's block b is even, built over the window
    that point symmetry within FINE_WINDOW of the level's side of (x, y) reads
    (:func:`_window_level`, :func:`_symmetry_reach`); else the ring level itself."""
    if ring.finer is None:
        return ring
    sums, n = ring.finer
    b = ring.b // 2
    reach = _symmetry_reach(FINE_WINDOW * max(sums.shape))
    at = (x - (b - 1) / 2) / b, (y - (b - 1) / 2) / b  # from_frame at b
    return _window_level(sums, n, b, 1.5, *at, reach)


def _unshadowed(level: _Level, ring: _Level, side: int) -> _Level:
    """``level`` (a block of the ring level or finer) without the ring level's beamstop
    shadows (:meth:`_Level.shadows`, local contrast; ``side`` the frame's longer side),
    widened by 2 of its blocks as :func:`_level` widens the dark blocks: a stop that lets
    through a few per cent stays above the frame-wide dark floor, and its outline is
    point-symmetric about its own middle, not about the beam."""
    label = ring.shadows(side).label
    if not label.any():
        return level
    k = ring.b // level.b
    rows, cols = level.g.shape
    i = np.minimum(np.arange(rows) // k, label.shape[0] - 1)
    j = np.minimum(np.arange(cols) // k, label.shape[1] - 1)
    stop = dilate_cross(label[i][:, j] > 0, 2)
    return _Level(
        level.g, level.ok, level.lit & ~stop, level.dark, level.b, level.sigma, window=level.window
    )


def _mirror_pairs(
    level: _Level, x: float, y: float, radius: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(px, py, g) (N,): the lit pixels p within ``radius`` (level px) of (x, y) whose mirror
    2 (x, y) - p is lit and inside the level (at most 12000, evenly strided), and the
    smoothed level there; None under 50 such pixels."""
    inner = level.interior(1)
    iy, ix = nonzero2d(inner)
    near = (ix - x) ** 2 + (iy - y) ** 2 <= radius * radius
    iy, ix, _, gp = _symmetry_sample(level, iy[near], ix[near], 12000)
    rows, cols = level.g.shape
    qx, qy = 2 * x - ix, 2 * y - iy
    inside = (qx >= 1) & (qx <= cols - 2) & (qy >= 1) & (qy <= rows - 2)
    qi, qj = np.rint(qy[inside]).astype(np.int64), np.rint(qx[inside]).astype(np.int64)
    use = np.flatnonzero(inside)[inner.ravel().take(qi * cols + qj)]
    if use.size < 50:
        return None
    return ix[use], iy[use], gp[use]


def _sharpness(level: _Level, x: float, y: float, radius: float, h: float = 1.0) -> float:
    """Standard error (level px) of the point-symmetry centre (x, y) from the curvature of its
    criterion, inf where it is not a sharp minimum.

    S(c) = sum of Huber(g(p) - g(2c - p)) over the lit pixels p within ``radius`` whose mirror
    through (x, y) is lit, on the smoothed level; its second differences at steps ``h`` along
    x and y give H_xx, H_yy and sigma^2 = s^2 (1 / H_xx + 1 / H_yy) (s the residuals' robust
    scale), times 4 pi sigma_s^2 (the smoothing makes the residuals of about that many
    pixels one). Gauss-Newton's own error reads the curvature off the local gradients, which
    noise has too; a finite difference sees that the criterion of noise is flat."""
    gs = level.smooth
    got = _mirror_pairs(level, x, y, radius)
    if got is None:
        return math.inf
    px, py, gp = got

    def residual(dx: float, dy: float) -> np.ndarray:
        return gp - _bilinear([gs], 2 * (x + dx) - px, 2 * (y + dy) - py)[0]

    r0 = residual(0.0, 0.0)
    s = 1.4826 * median(np.abs(r0 - median(r0))) + 1e-12
    k = 1.5 * s

    def cost(r: np.ndarray) -> float:
        a = np.abs(r)
        return float(np.sum(np.where(a <= k, 0.5 * a * a, k * a - 0.5 * k * k)))

    c0 = cost(r0)
    hxx = (cost(residual(h, 0.0)) + cost(residual(-h, 0.0)) - 2 * c0) / (h * h)
    hyy = (cost(residual(0.0, h)) + cost(residual(0.0, -h)) - 2 * c0) / (h * h)
    if hxx <= 0 or hyy <= 0:
        return math.inf
    return s * math.sqrt(1 / hxx + 1 / hyy) * math.sqrt(4 * math.pi) * level.sigma


def _ramp_bias(level: _Level, x: float, y: float, radius: float) -> float:
    """The largest shift (level px) of the point-symmetry centre (x, y) fitted without a ramp
    over the pixels within ``radius`` that a flat field's ramp of RAMP_MAX in g across the
    level's longer side could cause; inf where too few pixels have a lit mirror.

    A ramp adds a . p to g and 2 a . (p - c) to the residual g(p) - g(2c - p); a centre
    shift d adds about 2 grad g(p) . d (grad g(2c - p) = -grad g(p) about a symmetric
    centre). Least squares takes d = -H^-1 sum grad g (p - c)^T a, H = sum grad g grad g^T,
    so the bound is |a| times the spectral norm of that 2 x 2 matrix: small where the
    pattern falls steeply about c (a diffuse pattern near the beam), large over a flat top
    (d about r / |dg/dr| there)."""
    got = _mirror_pairs(level, x, y, radius)
    if got is None:
        return math.inf
    px, py, _ = got
    _, gx, gy = _bilinear(level.smooth_grad, px, py)
    grad = np.stack([gx, gy])
    h = grad @ grad.T
    if np.linalg.det(h) <= 1e-12 * max(np.trace(h) ** 2, 1e-300):
        return math.inf
    m = np.linalg.solve(h, grad @ np.stack([px - x, py - y]).T)
    return RAMP_MAX / max(level.g.shape) * float(np.linalg.norm(m, 2))


def _fine_symmetry(
    counts: np.ndarray, ok: np.ndarray, ring: _Level, best: _Candidate
) -> _Candidate:
    """A chosen gradient-lines, isotropy-search, point-symmetry or shadow-axis centre refined
    by the point symmetry of the pattern near it at the finest polish level
    (:func:`_fine_level`), kept where the optimum is sharp.

    Gauss-Newton on g(p) - g(2c - p) (:func:`_refine_symmetry`, no ramp) over the lit
    pixels within FINE_WINDOW of the level's longer side of the centre, the ring level's
    beamstop shadows left out (:func:`_unshadowed`); its standard error
    (:func:`_sharpness`, the criterion's curvature) must be at most FINE_SIGMA frame px, the
    pairs correlate positively, and the centre move at most FINE_MOVE frame px. A centre
    fitted with a ramp free (RAMPED) is refined with it free here too where a ramp could
    move the ramp-free fit by more than FINE_SIGMA (:func:`_ramp_bias`): a broad top."""
    level = _unshadowed(_fine_level(ring, best.x, best.y), ring, max(counts.shape))
    radius = FINE_WINDOW * max(level.g.shape)
    start = level.from_frame(best.x, best.y)
    x, y, _, rho = _refine_symmetry(level, start, ramp=False, radius=radius)
    if best.method in RAMPED and not (
        math.isfinite(x) and _ramp_bias(level, x, y, radius) * level.b <= FINE_SIGMA
    ):  # fitted with the ramp free: where a ramp could move the ramp-free fit, fit it here too
        x, y, _, rho = _refine_symmetry(level, start, ramp=True, radius=radius)
    if not (math.isfinite(x) and math.isfinite(y) and rho > 0):
        return best
    sigma = _sharpness(level, x, y, radius)
    fx, fy = level.to_frame(x, y)
    if sigma * level.b > FINE_SIGMA or math.hypot(fx - best.x, fy - best.y) > FINE_MOVE:
        return best
    return replace(best, x=fx, y=fy, sigma=sigma * level.b)


def _stop_midline(
    counts: np.ndarray, ok: np.ndarray, ring: _Level, best: _Candidate
) -> StopAxis | None:
    """The midline (:func:`scattertag.beam.shadow.stop_axis`) of the held stop's shadow
    whose axis (:func:`scattertag.beam.shadow.held_tips`) passes nearest the centre ``best``,
    traced from the foot of ``best`` on that axis."""
    tips = held_tips(ring.shadows(max(counts.shape)))
    if not tips:
        return None
    x, y, ux, uy = min(tips, key=lambda t: abs((best.x - t[0]) * t[3] - (best.y - t[1]) * t[2]))
    along = (best.x - x) * ux + (best.y - y) * uy
    return stop_axis(counts, ok, (x + along * ux, y + along * uy), math.atan2(uy, ux), ring.b)


def _axis_polish(counts: np.ndarray, ok: np.ndarray, ring: _Level, best: _Candidate) -> _Candidate:
    """A chosen shadow-axis centre moved across the axis onto its stop's midline.

    A stop is held with its axis through the beam and is mirror-symmetric about it, so its
    two sides, traced at the frame's resolution (:func:`_stop_midline`), fix the beam across
    the axis to a fraction of a pixel; point symmetry, which the shadow deprives of partners
    on one side, placed it 2-9 px off the axis on 2000 px frames. The centre moves to the
    foot of its perpendicular on the midline when that lies within AXIS_MOVE of the frame's
    longer side; otherwise it is left as it is."""
    line = _stop_midline(counts, ok, ring, best)
    if line is None:
        return best
    ux, uy = math.cos(line.angle), math.sin(line.angle)
    along = (best.x - line.x) * ux + (best.y - line.y) * uy
    x, y = line.x + along * ux, line.y + along * uy
    if math.hypot(x - best.x, y - best.y) > AXIS_MOVE * max(counts.shape):
        return best
    return replace(best, x=x, y=y)


def _near_ridges(
    rd: _Ridges, src: _Level, b: int, shape: tuple[int, int], reach: float
) -> np.ndarray:
    """``shape`` (R, C) bool on the level of b x b blocks: pixels within ``reach`` of them
    (a square) of the ridge test's pixels ``rd.rows``, ``rd.cols`` on level ``src``."""
    shift = ((src.b - 1) / 2 - (b - 1) / 2) / b  # as src.to_frame, then from_frame at b
    x, y = rd.cols * (src.b / b) + shift, rd.rows * (src.b / b) + shift
    rows, cols = shape
    i, j = np.rint(y).astype(np.int64), np.rint(x).astype(np.int64)
    inside = (i >= 0) & (i < rows) & (j >= 0) & (j < cols)
    hit = np.zeros((rows, cols), dtype=bool)
    hit[i[inside], j[inside]] = True
    return box_any(hit, math.ceil(reach))


def _retrace(sums: np.ndarray, n: np.ndarray, b: int, ring: _Level) -> tuple[_Level, _Ridges]:
    """The ring level's arcs traced again on the level of b x b blocks (``sums``, ``n``: its
    block sums of counts and of valid pixels), only within POLISH_BAND of the pixels that
    passed the ring level's ridge test: the level (built over the band's bounding box and
    POLISH_MARGIN about it, the shadow's floor of the whole level) and its ridges, in the
    whole level's pixels (its ``to_frame`` and ``from_frame`` depend on b alone). A ring
    level with under POLISH_FEW_ARCS arcs is traced again everywhere: rings narrower than
    its blocks show only at the finer level."""
    if ring.ridges.count < POLISH_FEW_ARCS:
        level = _level(sums, n, b, 1.5)
        return level, _ridges(level)
    band = _near_ridges(ring.ridges, ring, b, sums.shape, POLISH_BAND)
    rows, cols = np.flatnonzero(band.any(axis=1)), np.flatnonzero(band.any(axis=0))
    if rows.size == 0:
        rows, cols = np.array([0, sums.shape[0] - 1]), np.array([0, sums.shape[1] - 1])
    r0, c0 = max(int(rows[0]) - POLISH_MARGIN, 0), max(int(cols[0]) - POLISH_MARGIN, 0)
    box = (
        slice(r0, int(rows[-1]) + POLISH_MARGIN + 1),
        slice(c0, int(cols[-1]) + POLISH_MARGIN + 1),
    )
    level = _level(sums[box], n[box], b, 1.5, _sums_floor(sums, n, b))
    rd = _ridges(level, near=band[box])
    return level, replace(rd, x=rd.x + c0, y=rd.y + r0, rows=rd.rows + r0, cols=rd.cols + c0)


def _polish(
    counts: np.ndarray, ok: np.ndarray, best: _Candidate, ring: _Level, conf: float
) -> tuple[_Candidate, float]:
    """A chosen isotropy-search centre refined by local point symmetry
    (:func:`_polish_symmetry`), it, a gradient-lines and a point-symmetry centre then at the
    finest level (:func:`_fine_symmetry`), a shadow-axis centre too, then onto its stop's
    midline (:func:`_axis_polish`); a chosen ring fit repeated at twice the ring level's
    resolution, then tried as tilted cones through the arcs the circles keep
    (:func:`_tilted`, :func:`_ring_arcs`); the candidate and its confidence.

    Large frames are traced at blocks of b = side / RING_SIDE pixels (8 at 2000 px); the
    arcs traced again at blocks of b / 2 (near the ring level's ridge pixels only,
    :func:`_retrace`) and fitted from the chosen centre give it to a fraction of a pixel.
    The new centre is kept if at least 2 arcs fit and it moves at most b (it refines, it
    does not jump). Point symmetry, gradient lines and the isotropy
    search gained nothing from the same step (their own estimator at twice the resolution)
    on the benchmark's frames.
    """
    if best.method == "isotropy":
        best = _polish_symmetry(ring, best)
    if best.method in FINE_FROM:
        return _fine_symmetry(counts, ok, ring, best), conf
    if best.method == "axis":
        return _axis_polish(counts, ok, ring, _fine_symmetry(counts, ok, ring, best)), conf
    if best.method != "rings":
        return best, conf
    b_ring = ring.b
    b = b_ring // 2
    level, rd = _polish_arcs(counts, ok, ring)
    if b >= 1:
        x, y, sigma, arcs = _fit_arcs(rd, level.from_frame(best.x, best.y))
        fx, fy = level.to_frame(x, y)
        if arcs >= 2 and math.isfinite(fx + fy) and math.hypot(fx - best.x, fy - best.y) <= b_ring:
            best = replace(best, x=fx, y=fy, sigma=sigma * b)
    return _tilted(
        best, conf, level, _ring_arcs(rd, level.from_frame(best.x, best.y)), counts.shape
    )


def _ring_arcs(rd: _Ridges, start: tuple[float, float]) -> _Ridges:
    """The arcs of ``rd`` that circles about a common centre keep (:func:`_circles` from
    ``start``, level px, a radius per arc): those the cones are fitted through. An arc the
    circles drop (the bright rim about a stop's tip, a spot's curl) is no ring, and a cone's
    free tilt bends through it: on an untilted frame (seed 3's 282) such an arc made cones
    7.5 px off win over circles within 0.1 px."""
    if rd.count < 1:
        return rd
    alive = _circles(rd, start, np.arange(rd.count), np.ones(rd.count, bool), 15)[3]
    if alive.all() or not alive.any():
        return rd
    return rd.only(alive)


def _polish_arcs(counts: np.ndarray, ok: np.ndarray, ring: _Level) -> tuple[_Level, _Ridges]:
    """The ring level's arcs traced at twice its resolution (:func:`_retrace`; the ring
    level itself when its blocks are single pixels): the level and its ridges, traced once
    (kept by the ring level)."""
    if "polish" not in ring._inner:
        b = ring.b // 2
        if b < 1:
            ring._inner["polish"] = (ring, ring.ridges)
        else:
            if ring.finer is not None:
                sums, n = ring.finer
            else:
                sums, n = _block_sums(np.where(ok, counts, 0), b), _block_sums(ok, b)
            ring._inner["polish"] = _retrace(sums, n, b, ring)
    return ring._inner["polish"]


def _frame_arcs(ring: _Level, shape: tuple[int, int]) -> Arcs | None:
    """The frame's arcs for a refit with another frame's pose: those of the polish level
    when a ring fit was polished (:func:`_polish_arcs`) and it shows 2 arcs, else the ring
    level's (rings broad for the finer level's noise show only there)."""
    level, rd = ring._inner.get("polish", (ring, ring.ridges))
    arcs = Arcs.of(rd.x, rd.y, rd.w, rd.label, level.b, shape)
    if arcs is None and level is not ring:
        rd = ring.ridges
        arcs = Arcs.of(rd.x, rd.y, rd.w, rd.label, ring.b, shape)
    return arcs


def _tilted(
    best: _Candidate, conf: float, level: _Level, rd: _Ridges, shape: tuple[int, int]
) -> tuple[_Candidate, float]:
    """A chosen ring fit replaced by the direct-beam point of tilted cones through the same
    arcs (:func:`scattertag.beam.cones.fit_cones`), method ``cone``, when the cones
    explain the arcs clearly better and fix the point; else a found ring fit off the frame
    that does not fix the beam made not found; the candidate and its confidence.

    A tilted detector's rings are conics whose centres drift from the beam as R^2
    tan(tau) / d, so the common centre of circles through them misses the beam. The cones
    are kept when their robust rms is at most CONE_RMS of the circles' on the same points
    (a clearly better model), their standard error at most CONE_SIGMA of the goal's
    tolerance t (2 px on the frame, 2 % of the diagonal off it), their tilt in CONE_TILT,
    their distance d at least CONE_NEAR and under D_BOUNDS[1] of the outermost arc's
    radius (not at the end of its range), and their point within CONE_REACH of the
    diagonal of the circles' centre, on the same side of the frame's edge. On seed 0 of
    the benchmark (500 frames) untilted frames with fits of 1-1.4 degrees at d under 0.1
    radii, or an rms ratio of 0.61-0.71, lost hits; the tilted frames gained were at
    0.06-0.59. Confidence: the rules' (a ring model with its arcs) times 0.5 + 0.5 P,
    P = 1 - exp(-t^2 / sigma^2) the chance that an error of standard deviation sigma
    stays within t.

    A found ring fit off the frame whose cones are not kept gets at most RIVAL_CONFIDENCE
    (not found) when its own standard error exceeds t or the cones rival it
    (:func:`_rival`): short arcs of a tilted detector (b_tassone Run5 of real-dev, 8.9 %
    of the diagonal off at 0.7 before) fit circles about a point far from the beam nearly
    as well as cones about the beam. The cones then run to the end (no early give-up).
    """
    start = level.from_frame(best.x, best.y)
    diag = math.hypot(*shape)
    doubt = conf >= CONFIDENCE_THRESHOLD and not on_frame(best.x, best.y, shape)
    fit = fit_cones(rd.x, rd.y, rd.w, rd.label, start, worth=math.inf if doubt else CONE_WORTH)
    if fit is not None and fit.start_ratio <= CONE_WORTH:
        x, y = level.to_frame(fit.x, fit.y)
        sigma = fit.sigma * level.b
        on = on_frame(x, y, shape)
        tol = 2.0 if on else 0.02 * diag
        kept = (
            fit.rms <= CONE_RMS * fit.circle_rms
            and sigma <= CONE_SIGMA * tol
            and CONE_TILT[0] <= math.degrees(fit.tilt) <= CONE_TILT[1]
            and CONE_NEAR <= fit.distance / fit.radius < 0.95 * cones.D_BOUNDS[1]
            and math.hypot(x - best.x, y - best.y) <= CONE_REACH * diag
            and on == on_frame(best.x, best.y, shape)
        )
        if kept:
            p = 1.0 - math.exp(-(tol * tol) / max(sigma * sigma, 1e-12))
            pose = DetectorPose(x, y, fit.distance * level.b, fit.tilt, fit.axis)
            cone = replace(best, method="cone", x=x, y=y, sigma=sigma, pose=pose)
            return cone, conf * (0.5 + 0.5 * p)
    loose = best.sigma > 0.02 * diag or (fit is not None and _rival(fit, best, level, diag))
    return best, min(conf, RIVAL_CONFIDENCE) if doubt and loose else conf


def _rival(fit: cones.ConeFit, best: _Candidate, level: _Level, diag: float) -> bool:
    """True if cones through the arcs of the ring fit ``best`` (off the frame) explain them
    better (robust rms at most RIVAL_RMS of the circles'), with a tilt in
    CONE_TILT and a distance d of at least CONE_NEAR radii, and put the direct beam
    farther from the circles' centre than the goal's tolerance t (2 % of the diagonal
    ``diag``) plus RIVAL_Z of their own standard error sigma (beyond t even RIVAL_Z sigma
    nearer): a tilted detector with the beam elsewhere is a better answer, so the
    circles do not fix the beam."""
    x, y = level.to_frame(fit.x, fit.y)
    gap = math.hypot(x - best.x, y - best.y)
    return (
        fit.rms <= RIVAL_RMS * fit.circle_rms
        and CONE_TILT[0] <= math.degrees(fit.tilt) <= CONE_TILT[1]
        and fit.distance >= CONE_NEAR * fit.radius
        and gap > 0.02 * diag + RIVAL_Z * fit.sigma * level.b
    )


def _falloff(fine: _Level, best: _Candidate | None, shape: tuple[int, int]) -> _Candidate | None:
    """A centre off the frame or near its border moved to the fit of the falloff about it,
    a radial profile times the polarisation factor plus an offset
    (:mod:`scattertag.beam.falloff`), method ``falloff``; a centre farther inside (or
    none: the frame's middle) moved to the fit from the off-frame point where circles
    explain the frame best, if circles there explain it at least as well. ``best``
    unchanged when the fit is not clearly better than a circle model about it
    (FALLOFF_GAIN), puts the detector nearer than FALLOFF_NEAR, or lands on the frame or
    farther than FAR_DIAGONALS (from inside: FALLOFF_INSIDE_REACH) from its middle.

    Off the frame the circle models (isotropy, gradient lines) slide along the radius (or
    stop at the border), and the polarisation of a WAXS frame bends its contours across
    the azimuth; a falloff rising to the border puts point symmetry and the isotropy
    search inside it. Only the position changes: the frame stays not found (the caller's
    confidence).
    """
    rows, cols = shape
    diag = math.hypot(rows, cols)
    middle = ((cols - 1) / 2, (rows - 1) / 2)
    x0, y0 = middle if best is None else (best.x, best.y)
    edge = min(x0 + 0.5, cols - 0.5 - x0, y0 + 0.5, rows - 0.5 - y0)
    reach = FAR_DIAGONALS
    if edge <= FALLOFF_EDGE * diag:
        fit = falloff.fit(fine.g, fine.lit, fine.from_frame(x0, y0))
    else:
        reach = FALLOFF_INSIDE_REACH
        fit = falloff.off_frame(fine.g, fine.lit, fine.from_frame(x0, y0))
    if fit is None or fit.distance < FALLOFF_NEAR * math.hypot(*fine.g.shape):
        return best
    if (1.0 - fit.r2_start) < FALLOFF_GAIN * (1.0 - fit.r2):
        return best
    x, y = fine.to_frame(fit.x, fit.y)
    if on_frame(x, y, shape) or math.hypot(x - middle[0], y - middle[1]) > reach * diag:
        return best
    if best is None:
        return _Candidate("falloff", x, y, math.inf, 0.0, 0.0, 0.0)
    return replace(best, method="falloff", x=x, y=y, sigma=math.inf)


def estimate_beam_center(
    counts: np.ndarray,
    valid: np.ndarray | None = None,
    hint: tuple[float, float] | None = None,
    guess: bool = True,
    pose: DetectorPose | None = None,
) -> BeamCenterEstimate:
    """The beam centre (x, y) of a frame, in pixels, with a confidence in [0, 1].

    Parameters
    ----------
    counts : (rows, cols) array of counts, any real dtype; negative, non-finite and
        all-bits-set values are invalid.
    valid : (rows, cols) bool, True where a pixel may be used, or None.
    hint : (x, y) a centre from elsewhere (a header), in pixels, or None; it is scored
        with the image's own candidates and wins only if it explains the image better.
    guess : also refine the position of a centre that is not found (the off-frame falloff
        fit, ~100 ms where it runs); False for callers that discard such positions
        (``predict`` makes the frame an error row; a check accepts any given centre then).
    pose : the detector's pose from another frame of the same set-up (a cone fit's,
        ``BeamCenterEstimate.pose``), or None: a ring fit or a centre not found is then
        refitted as cones of that distance and tilt through the frame's arcs, the
        direct-beam point free, and replaced when that stands
        (:func:`scattertag.beam.pose.refit`, method ``pose``).

    Returns
    -------
    BeamCenterEstimate
        x along columns, y along rows, (0, 0) the centre of the first pixel; the centre
        may lie off the frame. Confidence below :data:`CONFIDENCE_THRESHOLD` means the
        centre could not be found.
    """
    counts = np.asarray(counts)
    ok, zeroed = _valid(counts, valid)
    levels = _pyramid(counts, ok, zeroed) if np.count_nonzero(ok) >= 256 else None
    est = _estimate(counts, ok, levels, hint, guess)
    posed = None if pose is None else refit(est, pose)
    return est if posed is None else posed


def _estimate(
    counts: np.ndarray,
    ok: np.ndarray,
    levels: tuple[_Level, _Level, _Level] | None,
    hint: tuple[float, float] | None = None,
    guess: bool = True,
) -> BeamCenterEstimate:
    """:func:`estimate_beam_center` of a frame's valid pixels ``ok`` and its pyramid
    ``levels`` (:func:`_pyramid`; None when under 256 pixels are valid)."""
    rows, cols = counts.shape
    middle = ((cols - 1) / 2, (rows - 1) / 2)
    if levels is None:
        return BeamCenterEstimate(*middle, 0.0, "none", True)
    cands = _candidates(counts, ok, hint, levels)
    best, conf = _choose_unwindowed(cands, (rows, cols), levels[2])
    if (
        conf >= CONFIDENCE_THRESHOLD
        and best is not None
        and best.method in PATTERN
        and not _pinned(counts, ok, levels[2], best)
    ):
        conf = min(conf, LONE)  # nothing in the image pins it there: its position a guess
    if conf < CONFIDENCE_THRESHOLD:
        graze = _grazing(counts, ok, levels[2])
        if graze is not None and (graze[1] > conf or graze[0].sigma <= GUESS_SPREAD):
            best, conf = graze[0], max(graze[1], conf)  # the better guess, found or not
    elif best is not None and (graze := _below_horizon(counts, ok, levels[2], best)):
        best, conf = graze
    if conf < CONFIDENCE_THRESHOLD:
        glow = _glow(counts, ok, levels[2])
        if glow is not None and glow[1] > conf:
            best, conf = glow
    if conf < CONFIDENCE_THRESHOLD:
        best, conf = _compact(counts, ok, levels, cands, best, conf)
    if conf < CONFIDENCE_THRESHOLD:
        tip = _outline(counts, ok, levels[2])
        if tip is not None and tip[1] > conf:
            best, conf = tip
    if best is not None:
        best, conf = _polish(counts, ok, best, levels[2], conf)
    if guess and conf < CONFIDENCE_THRESHOLD:
        best = _arc_guess(best, cands, levels[2], counts.shape)
    if guess and conf < CONFIDENCE_THRESHOLD and (best is None or best.method in FALLOFF_FROM):
        best = _falloff(levels[1], best, counts.shape)
    if best is None:
        return BeamCenterEstimate(*middle, 0.0, "none", True)
    on = on_frame(best.x, best.y, counts.shape)
    arcs = None
    if best.method == "rings" or conf < CONFIDENCE_THRESHOLD:
        arcs = _frame_arcs(levels[2], counts.shape)
    return BeamCenterEstimate(best.x, best.y, conf, best.method, on, best.sigma, best.pose, arcs)


def _glance_level(
    counts: np.ndarray, valid: np.ndarray | None
) -> tuple[_Level, np.ndarray, np.ndarray] | None:
    """The fine level of a frame (:func:`_pyramid`'s, b frame pixels a level pixel) and its
    (R, C) block sums of counts and of valid pixels; None under 256 valid pixels."""
    counts = np.asarray(counts)
    ok, zeroed = _valid(counts, valid)
    if np.count_nonzero(ok) < 256:
        return None
    side, short = max(counts.shape), min(counts.shape)
    b = _reduction(side, short, RING_SIDE, MIN_FINE_SIDE)
    b *= _reduction(side // b, short // b, FINE_SIDE, MIN_FINE_SIDE)
    every = ok.all()
    if zeroed is None:  # float counts (integer ones come zeroed from _valid)
        zeroed = counts if every else np.where(ok, counts, 0)
    sums = _block_sums(zeroed, b)
    n = np.full(sums.shape, float(b * b)) if every else _block_sums(ok, b)
    return _level(sums, n, b, 1.5), sums, n


def _agrees(level: _Level, center: tuple[float, float], settled: bool) -> bool:
    """:func:`agrees_at_a_glance` on the frame's fine ``level``."""
    px = _pixels(level)
    cx, cy = level.from_frame(float(center[0]), float(center[1]))
    mid = _isotropy(px, cx, cy)
    if not mid >= GLANCE_ISOTROPY:
        return False
    peak = GLANCE_SETTLED_PEAK if settled else 0.25  # level px: b / 2 or b / 4
    for dx, dy in ((1.0, 0.0), (0.0, 1.0)):
        lo, hi = _isotropy(px, cx - dx, cy - dy), _isotropy(px, cx + dx, cy + dy)
        curve = lo + hi - 2 * mid
        if curve >= 0 or abs(0.5 * (lo - hi) / curve) > peak:
            return False
    return not settled or _isotropy_peak(px, cx, cy, mid, GLANCE_RING)


def agrees_at_a_glance(
    counts: np.ndarray,
    valid: np.ndarray | None,
    center: tuple[float, float],
    settled: bool = False,
) -> bool:
    """True if the frame is plainly isotropic about the given centre (x, y), so that
    :func:`check_beam_center` need not look further; False says nothing either way.

    On the fine level (:func:`_pyramid`, b frame pixels a level pixel), the isotropy R^2
    (:func:`_isotropy`) about the centre must reach :data:`GLANCE_ISOTROPY` and peak within
    b / 4 of it along x and along y (parabola through offsets of +-b). Checked against the
    full check on 600 simulated frames and centres and on the 21 real ones of real-dev and
    the examples, shifted by 3-200 px: it never accepted a centre the full check refused,
    and accepted about 40 % of the true centres. ~12 ms at 1000 x 1000 against ~100 ms for
    the full check; frames with fewer than 256 valid pixels agree (no centre is found in
    them). ``settled`` (a set-up's centre offered to its later frames): the peak may lie
    within b / 2 (:data:`GLANCE_SETTLED_PEAK`) but R^2 about the centre must be at least
    that about the 8 points :data:`GLANCE_RING` level pixels away (a flat R^2 landscape,
    which any centre nearby would pass, confirms nothing).
    """
    fine = _glance_level(counts, valid)
    return fine is None or _agrees(fine[0], center, settled)


def settled_glance(
    counts: np.ndarray, valid: np.ndarray | None, center: tuple[float, float]
) -> str:
    """A set-up's settled centre (x, y) offered to a later frame of it: :data:`AGREES` (the
    settled glance of :func:`agrees_at_a_glance` accepts it), :data:`CONTRADICTED` (the
    frame shows another centre: :func:`_shadow_elsewhere`, :func:`_isotropic_elsewhere`;
    worth a full estimate) or :data:`UNINFORMATIVE` (neither: a flat, weak or dark frame,
    which a full estimate would not place either)."""
    fine = _glance_level(counts, valid)
    if fine is None or _agrees(fine[0], center, True):
        return AGREES
    level, sums, n = fine
    shape = np.shape(counts)
    x, y = float(center[0]), float(center[1])
    if _shadow_elsewhere(level, x, y, shape) or _isotropic_elsewhere(level, sums, n, x, y, shape):
        return CONTRADICTED
    return UNINFORMATIVE


def _shadow_elsewhere(level: _Level, x: float, y: float, shape: tuple[int, int]) -> bool:
    """True if the level shows a beamstop's shadow (:data:`GLANCE_SHADOW_BLOCKS` dark blocks)
    that cannot hide the beam at frame (x, y): on the frame, no dark block within
    :data:`GLANCE_SHADOW_REACH` level pixels of it; off the frame, a shadow (connected, that
    many blocks) that does not touch the level's border (a stop held on the frame)."""
    dark = level.dark
    if np.count_nonzero(dark) < GLANCE_SHADOW_BLOCKS:
        return False
    if on_frame(x, y, shape):
        cx, cy = level.from_frame(x, y)
        iy, ix = nonzero2d(dark)
        return float(np.min(np.hypot(ix - cx, iy - cy))) > GLANCE_SHADOW_REACH
    labels, count = ndimage.label(dark)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    inside = np.ones(count + 1, bool)
    inside[edge] = False
    return bool(np.any(inside[1:] & (sizes[1:] >= GLANCE_SHADOW_BLOCKS)))


def _isotropic_elsewhere(
    fine: _Level, sums: np.ndarray, n: np.ndarray, x: float, y: float, shape: tuple[int, int]
) -> bool:
    """True if the coarse level (:func:`_pyramid`'s, from the fine level's block ``sums`` and
    ``n``) is clearly more isotropic about another point than about frame (x, y): the
    isotropy search of :func:`_candidates` (a climb from the gradient lines' meeting point,
    both on :data:`GLANCE_SEARCH_PIXELS` samples) ends within FAR_DIAGONALS of the middle,
    farther than the goal's tolerance from (x, y), with R^2 at least :data:`GLANCE_MARGIN`
    (or half of 1 - R^2 about (x, y)) higher."""
    rows, cols = shape
    k = _reduction(max(sums.shape), min(sums.shape), COARSE_SIDE, MIN_COARSE_SIDE)
    coarse = _level(_block_sums(sums, k), _block_sums(n, k), fine.b * k, 1.0) if k > 1 else fine
    field = _gradient_field(coarse, GLANCE_SEARCH_PIXELS)
    sx, sy = _lines_meet(field)
    if not (math.isfinite(sx) and math.isfinite(sy)):
        return False
    cx, cy, _ = _climb(_pixels(coarse, GLANCE_SEARCH_PIXELS), (sx, sy), 4.0, 0.5)
    fx, fy = coarse.to_frame(cx, cy)
    far = FAR_DIAGONALS * math.hypot(rows, cols)
    if math.hypot(fx - (cols - 1) / 2, fy - (rows - 1) / 2) > far:
        return False  # never an estimate (:func:`_candidates`)
    if math.hypot(fx - x, fy - y) <= tolerance(x, y, shape):
        return False
    px = _pixels(coarse)
    best, mid = _isotropy(px, cx, cy), _isotropy(px, *coarse.from_frame(x, y))
    return best >= mid + min(GLANCE_MARGIN, 0.5 * (1.0 - mid))


def _isotropy_peak(px: _Pixels, cx: float, cy: float, mid: float, reach: float) -> bool:
    """True if no point ``reach`` level pixels from (cx, cy), at 8 angles 45 deg apart, has
    an isotropy R^2 above ``mid`` (that about (cx, cy))."""
    for a in np.arange(8) * (math.pi / 4):
        if _isotropy(px, cx + reach * math.cos(a), cy + reach * math.sin(a)) > mid:
            return False
    return True


def check_beam_center(
    counts: np.ndarray, valid: np.ndarray | None, center: tuple[float, float]
) -> BeamCenterCheck:
    """Compare a given centre (x, y) in pixels with the image's own best centre.

    The given centre agrees unless the image's centre is found (confidence at least
    :data:`CONFIDENCE_THRESHOLD`) and lies farther than max(AGREE_PX, 3 sigma, 2 % of
    the diagonal when off the frame) from it. ``score`` is the isotropy (adjusted R^2 of
    a radial profile, fine level) about the given centre over that about the best centre,
    clipped to [0, 1].
    """
    counts = np.asarray(counts)
    ok, zeroed = _valid(counts, valid)
    levels = _pyramid(counts, ok, zeroed) if np.count_nonzero(ok) >= 256 else None
    best = _estimate(counts, ok, levels, guess=False)  # a centre not found agrees anyway
    gx, gy = float(center[0]), float(center[1])
    distance = math.hypot(gx - best.x, gy - best.y)
    rows, cols = counts.shape
    tol = max(AGREE_PX, 3.0 * best.sigma if math.isfinite(best.sigma) else AGREE_PX)
    if not best.on_frame:
        tol = max(tol, 0.02 * math.hypot(rows, cols))
    score = 1.0
    if levels is not None:
        fine = levels[1]
        px = _pixels(fine)
        ref = _isotropy(px, *fine.from_frame(best.x, best.y))
        if ref > 0:
            score = float(np.clip(_isotropy(px, *fine.from_frame(gx, gy)) / ref, 0.0, 1.0))
    agrees = not best.found or distance <= tol
    return BeamCenterCheck(agrees, distance, score, best)

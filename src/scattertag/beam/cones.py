"""Rings of a tilted detector: cones about the beam cut by a tilted plane.

A ring of scattering angle 2 theta_j is the cone of half-angle 2 theta_j about the beam;
a flat detector normal to the beam cuts it in a circle about the direct-beam point, a
tilted one in a conic (an ellipse for 2 theta_j + tau < 90 degrees) whose centre lies
about R_j^2 tan(tau) / d away from that point. Circles fitted to such arcs find the
centres of the ellipses, not the beam.

Model (the simulator's, :mod:`scattertag.simulate.tilt`, which is pyFAI's Fit2D geometry
with ``tilt`` = tau, ``tiltPlanRotation`` = phi + 90 degrees): the detector point (x, y)
in pixels sits at P = (0, 0, d) + (x - cx) e_x + (y - cy) e_y in the lab (pixel units,
sample at the origin, beam along z), with (e_x, e_y, n) the columns of the rotation by
tau about (cos phi, sin phi, 0); (cx, cy) is the direct-beam point, d the distance from
the sample to it. Its angle from the beam is 2 theta(p) = atan2(|P_xy|, P_z).

Fit (:func:`fit_cones`): given ridge points p_k of arcs j(k) (the ring tracer's,
:func:`scattertag.beam.rings.ridges`), no calibrant: the parameters are (cx, cy, log d,
tau cos phi, tau sin phi) and one free 2 theta_j per arc, eliminated (variable
projection: for a geometry the best 2 theta_j is the weighted mean of 2 theta(p_k) over
the arc, weights 1 / |grad 2 theta|^2). The residual of a point is its distance to its
conic to first order, (2 theta(p_k) - 2 theta_j) / |grad 2 theta(p_k)| in pixels; robust
least squares (soft L1, :func:`scattertag.beam.least_squares.solve`) from the circle fit's
centre.
Untilted (tau = 0) the model is concentric circles and d is free; with tau > 0 d and tau
are fixed by how the rings' centres drift with their radius (first order) and by their
ellipticity (second order), so arcs that cover little of their rings fix them poorly.

Pieces of one ring (``tie``): a ring cut into arcs by detector gaps, a stop or the frame's
edge is one cone, so its arcs share one 2 theta; with a 2 theta each, a shift of the point
along a pair of arcs on opposite sides moves one arc's conic in and the other's out and
their angles absorb it, as the radii of circles did (:func:`scattertag.beam.rings.fit_arcs`
ties those). The arcs are tied at the fitted geometry: those whose own conic fits them
within TIE_KEEP, sorted by 2 theta, one ring while within TIE_GAP (as a distance across the
conic) of the ring's first; an arc that fits no conic of the geometry (a radial streak, a
stop's rim) is left out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from scattertag.beam import least_squares
from scattertag.beam.least_squares import Solution

#: Soft-L1 scale of the point residuals (pixels of the points' own grid).
F_SCALE = 1.0
#: Bound on each tilt component tau cos phi, tau sin phi (radians).
MAX_TILT = math.radians(60.0)
#: Starting distances d and the range d stays in, in units of the outermost arc's radius
#: about the start R: beyond 10 R (2 theta under 6 degrees) a tilt makes rings ellipses
#: about the beam, whose centre the circles find, and fits to short arcs trade that
#: ellipticity for the centre; d free runs away when the detector is not tilted.
D_STARTS = (1.0, 3.0)
D_BOUNDS = (0.05, 10.0)
#: Points the starts are tried on, and the best refined on (evenly strided).
MAX_POINTS = 300
MAX_REFINE = 1000
#: Residual evaluations allowed per least-squares run (each Jacobian costs 5 more), and
#: the relative change of cost and parameters at which the starts stop.
MAX_NFEV, START_TOL = 40, 1e-4
#: Tying pieces of one ring (:meth:`_Arcs.rings`): an arc whose rms distance to its own
#: conic exceeds TIE_KEEP pixels is left out, arcs whose 2 theta lie within TIE_GAP pixels
#: (across the conic) of a ring's first are that ring; regrouped TIE_ROUNDS times at most.
TIE_KEEP, TIE_GAP, TIE_ROUNDS = 0.5, 1.0, 3
#: The search over tilted starts (:func:`searched_cones`): a tilt of SEARCH_TILT degrees
#: about each of SEARCH_AXES evenly spread axes at the far distance D_STARTS[1]; d ranges up
#: to SEARCH_D_MAX radii there (small rings of a steep tilt lie beyond D_BOUNDS: 2 theta of
#: 6 degrees tilted 27 moves the ellipses' centre 5 % of their radius); a point of an arc
#: that the tied rings leave out counts as SEARCH_CAP pixels from its conic when the starts
#: are compared.
SEARCH_TILT, SEARCH_AXES, SEARCH_D_MAX, SEARCH_CAP = 25.0, 8, 30.0, 2.0
#: A ring (or an arc) shows when its points cover at least RING_SECTORS of the 36 sectors
#: of 10 degrees of azimuth about the fitted point (:func:`_shown`).
RING_SECTORS = 3


@dataclass(frozen=True)
class ConeFit:
    """Cones through the arcs: the direct-beam point (x, y), the distance d from the sample
    to it and the tilt (tau, phi) in radians; all lengths in the points' pixels.

    ``rms`` is the robust rms distance of the points to their conics (:func:`_robust_rms`),
    ``sigma`` the standard error of (x, y) (from the Jacobian and the residuals),
    ``circle_rms`` the same for the best untilted model (concentric circles) on the same
    points, ``two_theta`` each arc's (or tied ring's) angle (radians), ``arcs`` how many
    arcs the fit was given, ``radius`` the outermost point's distance from the start (d's
    range is D_BOUNDS times it) and ``start_ratio`` the best start's robust rms over the
    circles' on the start points (``worth`` of :func:`fit_cones` gives up above it);
    ``rings`` how many of the rings the arcs were tied into (of the arcs, when not tied)
    show at least RING_SECTORS sectors of azimuth about the point (:func:`_shown`),
    ``tilt_sigma`` the standard error of the tilt (radians, along its own direction) and
    ``log_d_sigma`` that of log d; ``d_max`` the upper end of d's range in radii.
    """

    x: float
    y: float
    distance: float
    tilt: float
    axis: float
    two_theta: np.ndarray
    rms: float
    sigma: float
    circle_rms: float
    arcs: int
    radius: float
    start_ratio: float
    rings: int
    tilt_sigma: float
    log_d_sigma: float
    d_max: float = D_BOUNDS[1]


@lru_cache(maxsize=16)
def _rotation(tx: float, ty: float) -> tuple[float, ...]:
    """The six entries (r00, r01, r10, r11, r20, r21) of the detector's rotation for the
    tilt vector tau (cos phi, sin phi) that the cones read (e_x, e_y); kept for the last few
    tilts (a finite-difference Jacobian moves the centre and the distance at the same tilt).

    Rodrigues' R = I + sin(tau) K + (1 - cos(tau)) K^2, K the cross-product matrix of the
    axis a = (cos phi, sin phi, 0) (:meth:`scattertag.simulate.tilt.Tilt.rotation`): each
    entry read is one product of a's components, so these are that matrix's floats (numpy's
    sin and cos, as it takes them) without its ~10 us of small-array calls."""
    tau, phi = math.hypot(tx, ty), math.atan2(ty, tx)
    a0, a1 = float(np.cos(phi)), float(np.sin(phi))
    s, t = float(np.sin(tau)), 1 - float(np.cos(tau))
    return (
        1.0 - t * (a1 * a1),
        t * (a1 * a0),
        t * (a0 * a1),
        1.0 - t * (a0 * a0),
        -s * a1,
        s * a0,
    )


def cone_angles(params: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2 theta (radians) of points (x, y) and |grad 2 theta| (radians per pixel), each (N,);
    for params of k geometries (k, 5), each (k, N), row i that of geometry i.

    ``params`` = (cx, cy, log d, tau cos phi, tau sin phi), lengths in pixels (module).
    With P the point in the lab and rho = |P_xy|: d(2 theta) = q . dP with q = (P_z P_x /
    rho, P_z P_y / rho, -rho) / |P|^2, and dP/dx = e_x, dP/dy = e_y.
    """
    if np.ndim(params) == 1:
        cx, cy, log_d, tx, ty = (float(v) for v in params)
        return _angles(x - cx, y - cy, math.exp(log_d), _rotation(tx, ty))
    rows = np.asarray(params, dtype=np.float64)
    # each geometry's distance and rotation from the same scalar calls as a single one's
    dist = np.array([[math.exp(v)] for v in rows[:, 2].tolist()])
    rot = np.array([_rotation(tx, ty) for tx, ty in rows[:, 3:].tolist()]).T[:, :, None]
    return _angles(x - rows[:, :1], y - rows[:, 1:2], dist, tuple(rot))


def _angles(
    u: np.ndarray, v: np.ndarray, dist: float | np.ndarray, rot: Sequence[float | np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`cone_angles` of points (u, v) from the beam point at ``dist``, ``rot`` the
    rotation's entries (:func:`_rotation`): floats, or (k, 1) columns for k geometries with
    u, v (k, N)."""
    r00, r01, r10, r11, r20, r21 = rot
    px = u * r00 + v * r01
    py = u * r10 + v * r11
    pz = dist + u * r20
    pz += v * r21
    rho = px * px
    rho += py * py
    np.sqrt(rho, out=rho)
    np.maximum(rho, 1e-12, out=rho)
    p2 = rho * rho
    p2 += pz * pz
    den = rho * p2
    qx, qy, qz = pz * px, pz * py, -rho
    qx /= den
    qy /= den
    qz /= p2
    gx = qx * r00 + qy * r10 + qz * r20
    gy = qx * r01 + qy * r11 + qz * r21
    return np.arctan2(rho, pz), np.maximum(np.hypot(gx, gy), 1e-15)


class _Arcs:
    """Ridge points (N,) and their arcs (labels 0..n-1) for the fit."""

    def __init__(self, x: np.ndarray, y: np.ndarray, sw: np.ndarray, label: np.ndarray, n: int):
        self.x, self.y, self.sw, self.label, self.n = x, y, sw, label, n

    def subset(self, idx: np.ndarray) -> _Arcs:
        """The points ``idx`` only."""
        return _Arcs(self.x[idx], self.y[idx], self.sw[idx], self.label[idx], self.n)

    def residuals(self, params: np.ndarray) -> np.ndarray:
        """(N,) sqrt(w)-weighted distances (pixels) of the points to their arcs' conics;
        (k, N) for params of k geometries (k, 5)."""
        return self.solve(params)[0]

    def solve(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(residuals (N,), the arcs' 2 theta (n,)) of a geometry; each arc's 2 theta is
        the weighted mean of its points' (variable projection, weights w / |grad|^2).
        Of k geometries (k, 5): (k, N) and (k, n), each row as the geometry's alone."""
        tt, grad = cone_angles(params, self.x, self.y)
        wk = (self.sw / grad) ** 2
        k = 1 if tt.ndim == 1 else tt.shape[0]
        # the k geometries' arcs as k n bins: each bin sums its points in the same order
        label = self.label if k == 1 else self.label + self.n * np.arange(k)[:, None]
        flat = label.ravel()
        tot = np.maximum(np.bincount(flat, wk.ravel(), k * self.n), 1e-300)
        two_theta = np.bincount(flat, (wk * tt).ravel(), k * self.n) / tot
        res = self.sw * (tt - two_theta[label]) / grad
        return res, two_theta.reshape(tt.shape[:-1] + (self.n,))

    def rings(self, params: np.ndarray) -> np.ndarray:
        """(n,) int: the ring of each arc at the geometry ``params``, -1 for an arc left out.

        An arc whose rms distance to its own conic exceeds TIE_KEEP (or that has no
        points) fits no cone of the geometry; the others, sorted by 2 theta, are one ring
        while their 2 theta lies within TIE_GAP of the ring's first, as a distance across
        the conic (the angle over the arc's mean |grad 2 theta|)."""
        res, two_theta = self.solve(params)
        grad = cone_angles(params, self.x, self.y)[1]
        count = np.bincount(self.label, None, self.n)
        per = np.maximum(count, 1)
        d = res / self.sw
        rms = np.sqrt(np.bincount(self.label, d * d, self.n) / per)
        step = np.bincount(self.label, grad, self.n) / per
        ring = np.full(self.n, -1, dtype=np.int64)
        k, first = -1, -math.inf
        for j in np.argsort(two_theta):
            if count[j] == 0 or not rms[j] <= TIE_KEEP:
                continue
            if (two_theta[j] - first) / step[j] > TIE_GAP:
                k, first = k + 1, two_theta[j]
            ring[j] = k
        return ring

    def tied(self, ring: np.ndarray) -> _Arcs:
        """The points of the arcs with ``ring`` (n,) >= 0, labelled by their ring."""
        keep = ring[self.label] >= 0
        lab = ring[self.label[keep]]
        return _Arcs(self.x[keep], self.y[keep], self.sw[keep], lab, int(ring.max()) + 1)


def _tie(
    arcs: _Arcs, params: np.ndarray, refit: Callable[[_Arcs, np.ndarray], Solution]
) -> tuple[_Arcs, Solution] | None:
    """The arcs tied into rings at ``params`` (:meth:`_Arcs.rings`) and ``refit`` of them from
    there, regrouped at each new geometry until the rings stay (TIE_ROUNDS at most); None
    when under 2 arcs fit a cone or no fit is finite."""
    out = None
    ring = arcs.rings(params)
    for _ in range(TIE_ROUNDS):
        if np.count_nonzero(ring >= 0) < 2:
            break
        on = arcs.tied(ring)
        sol = refit(on, params)
        if not np.all(np.isfinite(sol.x)):
            break
        out, params = (on, sol), sol.x
        again = arcs.rings(params)
        if np.array_equal(again, ring):
            break
        ring = again
    return out


def _stride(n: int, keep: int) -> np.ndarray:
    """At most ``keep`` indices of range(n), evenly strided."""
    return np.linspace(0, n - 1, min(n, keep)).astype(np.int64)


def _robust_rms(cost: float, n: int) -> float:
    """sqrt(mean rho(r^2)) of ``least_squares``' cost 0.5 sum rho (soft L1, F_SCALE):
    the rms distance (pixels) for distances under F_SCALE, growing as sqrt(r) beyond."""
    return math.sqrt(2.0 * cost / max(n, 1))


def _prepare(x: np.ndarray, y: np.ndarray, w: np.ndarray, label: np.ndarray) -> _Arcs | None:
    """The usable points as :class:`_Arcs`: finite, of positive weight, on arcs of at least
    6 of them (relabelled 0..n-1); None under 2 such arcs or 12 points, for arrays of
    different lengths or negative labels."""
    x, y, w = (np.asarray(a, dtype=np.float64).ravel() for a in (x, y, w))
    label = np.asarray(label, dtype=np.int64).ravel()
    if not (x.size == y.size == w.size == label.size) or x.size < 12 or label.min() < 0:
        return None
    keep = np.isfinite(x) & np.isfinite(y) & np.isfinite(w) & (w > 0)
    big = np.bincount(label[keep], minlength=int(label.max()) + 1) >= 6
    if big.sum() < 2:
        return None
    keep &= big[label]
    x, y, w, label = x[keep], y[keep], w[keep], (np.cumsum(big) - 1)[label[keep]]
    return _Arcs(x, y, np.sqrt(w / np.mean(w)), label, int(big.sum()))


def fit_cones(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    label: np.ndarray,
    start: tuple[float, float],
    max_points: int = MAX_POINTS,
    worth: float = math.inf,
    tie: bool = False,
) -> ConeFit | None:
    """Tilted cones through arcs of ridge points: the direct-beam point and the tilt.

    Parameters
    ----------
    x, y, w : (N,) the points (pixels) and their weights (ridge strength, > 0).
    label : (N,) int >= 0, the arc of each point; an arc is part of one ring.
    start : (x, y) the circle fit's common centre, where every search starts.
    max_points : the starts (untilted, at the distances D_STARTS) run on at most this
        many points (evenly strided); the one of least robust
        cost is refined on at most MAX_REFINE points (finite-difference Jacobians).
    worth : give up (None) when the best start's robust rms is over this fraction of the
        circles' on the same points: a caller that keeps only clearly better cones saves
        the refinement (most of the cost).
    tie : tie the pieces of one ring (module): after the starts and in the refinement,
        each arc fitting a cone of the geometry is given its ring's 2 theta (the circles
        compared with are tied alike); None when under 2 arcs fit a cone.

    Returns None when the points cannot fix a cone (under 2 arcs of 6 points, under 12
    points, arrays of different lengths, a non-finite start, negative labels) or no start
    converges.
    """
    return cone_fits(x, y, w, label, start, ((tie, worth),), max_points)[0]


def searched_cones(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, label: np.ndarray, start: tuple[float, float]
) -> ConeFit | None:
    """:func:`fit_cones` with the pieces of one ring tied, refined from the start whose tied
    rings fit best (:func:`_tied_score`) among the untilted starts' best and tilted starts
    (SEARCH_TILT about SEARCH_AXES axes), d up to SEARCH_D_MAX radii; no early give-up.

    From untilted starts a steep tilt's cones can slide into another minimum (a distance
    bound, the tilt mirrored) that ties fewer arcs: seed 1's 106 of the benchmark (27
    degrees, 2 theta under 6 degrees, 8 arcs at blocks of 2 px) ties none from them, and
    2 rings 0.05 px from the beam from a start tilted 25 degrees."""
    return cone_fits(x, y, w, label, start, ((True, math.inf),), search=True)[0]


def cone_fits(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    label: np.ndarray,
    start: tuple[float, float],
    modes: Sequence[tuple[bool, float]],
    max_points: int = MAX_POINTS,
    search: bool = False,
) -> list[ConeFit | None]:
    """:func:`fit_cones` of the same points once for each mode (``tie``, ``worth``) in
    ``modes``, the starts (the same in every mode) run once; ``search``: the tilted starts
    too, and d up to SEARCH_D_MAX radii (:func:`searched_cones`)."""
    arcs = _prepare(x, y, w, label)
    if arcs is None or not all(math.isfinite(v) for v in start):
        return [None] * len(modes)
    x, y = arcs.x, arcs.y
    few = arcs.subset(_stride(x.size, max_points))
    most = arcs.subset(_stride(x.size, MAX_REFINE))
    scale = float(np.sqrt(np.mean((x - start[0]) ** 2 + (y - start[1]) ** 2)))
    radius = float(np.max(np.hypot(x - start[0], y - start[1])))
    if not radius > 0:
        return [None] * len(modes)
    d_max = SEARCH_D_MAX if search else D_BOUNDS[1]
    bounds = (
        np.array([-np.inf, -np.inf, math.log(D_BOUNDS[0] * radius), -MAX_TILT, -MAX_TILT]),
        np.array([np.inf, np.inf, math.log(d_max * radius), MAX_TILT, MAX_TILT]),
    )
    x_scale = np.array([scale, scale, 1.0, 0.1, 0.1])
    free = (np.full(2, -np.inf), np.full(2, np.inf))

    def solve(on: _Arcs, p0: np.ndarray, tol: float, want_jac: bool = False) -> Solution:
        return least_squares.solve(
            on.residuals,
            p0,
            *bounds,
            x_scale,
            f_scale=F_SCALE,
            max_nfev=MAX_NFEV,
            ftol=tol,
            xtol=tol,
            want_jac=want_jac,
            many=on.residuals,
        )

    near, far = D_STARTS[0] * radius, D_STARTS[1] * radius
    log_far = math.log(far)

    def circles(on: _Arcs) -> Solution:
        """The untilted model (concentric circles) on ``on``: cx, cy fitted, d = far."""
        fun, many = _centre_only(on, [log_far, 0.0, 0.0])
        return least_squares.solve(
            fun,
            np.array(start, dtype=np.float64),
            *free,
            x_scale[:2],
            f_scale=F_SCALE,
            max_nfev=MAX_NFEV,
            ftol=1e-8,
            xtol=1e-8,
            many=many,
        )

    first = None
    for d in (near, far):
        sol = solve(few, np.array([start[0], start[1], math.log(d), 0.0, 0.0]), START_TOL)
        if np.all(np.isfinite(sol.x)) and (first is None or sol.cost < first.cost):
            first = sol
    if search:
        tau = math.radians(SEARCH_TILT)
        axes = np.arange(SEARCH_AXES) * (2.0 * math.pi / SEARCH_AXES)
        tilted = (
            solve(few, np.array([*start, log_far, tau * math.cos(a), tau * math.sin(a)]), START_TOL)
            for a in axes
        )
        sols = [s for s in (first, *tilted) if s is not None and np.all(np.isfinite(s.x))]
        scores = [_tied_score(few, s.x, lambda on, p: solve(on, p, START_TOL)) for s in sols]
        first = sols[int(np.argmin(scores))] if sols and min(scores) < math.inf else None

    def finish(tie: bool, worth: float) -> ConeFit | None:
        """The fit from the best start ``first`` in one mode (:func:`fit_cones`)."""
        if first is None:
            return None
        on_few, on_most, best = few, most, first
        if tie:
            got = _tie(few, best.x, lambda on, p: solve(on, p, START_TOL))
            if got is None:
                return None
            on_few, best = got
        start_ratio = math.sqrt(best.cost / max(circles(on_few).cost, 1e-300))
        if start_ratio > worth:
            return None
        if tie:
            got = _tie(most, best.x, lambda on, p: solve(on, p, 1e-8, want_jac=True))
            if got is None:
                return None
            on_most, best = got
        else:
            best = solve(most, best.x, 1e-8, want_jac=True)
        if not np.all(np.isfinite(best.x)):
            return None
        flat = circles(on_most)
        res, two_theta = on_most.solve(best.x)
        cov = _covariance(best, res, max(res.size - 5 - on_most.n, 1))
        cx, cy, log_d, tx, ty = (float(v) for v in best.x)
        tau = math.hypot(tx, ty)
        along = np.array([tx, ty]) / tau if tau > 0 else np.array([1.0, 0.0])
        return ConeFit(
            x=cx,
            y=cy,
            distance=math.exp(log_d),
            tilt=tau,
            axis=math.atan2(ty, tx),
            two_theta=two_theta,
            rms=_robust_rms(best.cost, res.size),
            sigma=float(np.sqrt(max(cov[0, 0] + cov[1, 1], 0.0))),
            circle_rms=_robust_rms(flat.cost, res.size),
            arcs=arcs.n,
            radius=radius,
            start_ratio=start_ratio,
            rings=_shown(on_most, cx, cy),
            tilt_sigma=math.sqrt(max(float(along @ cov[3:, 3:] @ along), 0.0)),
            log_d_sigma=math.sqrt(max(float(cov[2, 2]), 0.0)),
            d_max=d_max,
        )

    return [finish(tie, worth) for tie, worth in modes]


def _centre_only(
    arcs: _Arcs, tail: list[float]
) -> tuple[Callable[[np.ndarray], np.ndarray], least_squares.Many]:
    """The residuals of ``arcs`` as a function of the beam point (cx, cy) alone, the rest
    of the geometry fixed at ``tail`` (log d, tau cos phi, tau sin phi): of one point (2,)
    and of k points at once (k, 2) (:func:`scattertag.beam.least_squares.solve`)."""

    def one(c: np.ndarray) -> np.ndarray:
        return arcs.residuals(np.array([c[0], c[1], *tail]))

    def many(c: np.ndarray) -> np.ndarray:
        params = np.empty((len(c), 2 + len(tail)))
        params[:, :2], params[:, 2:] = c, tail
        return arcs.residuals(params)

    return one, many


def _tied_score(
    arcs: _Arcs, params: np.ndarray, refit: Callable[[_Arcs, np.ndarray], Solution]
) -> float:
    """Mean soft-L1 loss rho(r^2) = 2 (sqrt(1 + r^2) - 1) (F_SCALE 1, r in pixels) over every
    point of ``arcs`` once they are tied at ``params`` and refitted (:func:`_tie`), those of
    arcs left out at r = SEARCH_CAP: tied fits through different arcs made comparable (inf
    where nothing ties)."""
    got = _tie(arcs, params, refit)
    if got is None:
        return math.inf
    on, sol = got
    left = arcs.x.size - on.x.size
    return (2.0 * sol.cost + left * 2.0 * (math.sqrt(1.0 + SEARCH_CAP**2) - 1.0)) / arcs.x.size


def _shown(arcs: _Arcs, x: float, y: float) -> int:
    """How many of the labels of ``arcs`` (rings or arcs) cover at least RING_SECTORS of the
    36 sectors of 10 degrees of azimuth about (x, y): a short piece far out (2 degrees of a
    ring) bends a tilt as freely as a radial streak, and two rings that show fix how the
    conics drift with 2 theta."""
    sector = ((np.arctan2(arcs.y - y, arcs.x - x) + math.pi) / (2 * math.pi) * 36).astype(np.int64)
    hit = np.zeros((arcs.n, 37), dtype=bool)
    hit[arcs.label, sector] = True
    hit[:, 0] |= hit[:, 36]
    return int(np.count_nonzero(hit[:, :36].sum(axis=1) >= RING_SECTORS))


def _covariance(sol: Solution, res: np.ndarray, dof: int) -> np.ndarray:
    """(P, P) covariance of a soft-L1 fit's parameters: (J_s^T J_s)^+ sum(res^2) / dof, J_s the
    loss-scaled Jacobian (as scipy's ``least_squares`` returns it): the Jacobian at the
    solution times t^-3/4, t = 1 + (f / C)^2; ``res`` the plain residuals."""
    assert sol.jac is not None
    jac = sol.jac * ((1.0 + (sol.f / F_SCALE) ** 2) ** -0.75)[:, None]
    return np.linalg.pinv(jac.T @ jac) * float(np.sum(res * res)) / dof


@dataclass(frozen=True)
class CentreFit:
    """Cones of a known distance and tilt through the arcs, the direct-beam point (x, y)
    free: ``rms`` the robust rms distance of the points to their conics, ``sigma`` the
    standard error of (x, y), ``circle_rms`` that of concentric circles (the centre free
    too) on the same points, all in the points' pixels; ``arcs`` how many arcs were used."""

    x: float
    y: float
    rms: float
    sigma: float
    circle_rms: float
    arcs: int


def fit_centre(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    label: np.ndarray,
    starts: list[tuple[float, float]],
    distance: float,
    tilt: float,
    axis: float,
) -> CentreFit | None:
    """The direct-beam point of cones of a known ``distance`` (the points' pixels) and tilt
    (``tilt`` tau, ``axis`` phi, radians) through arcs of ridge points (as
    :func:`fit_cones`): least squares (soft L1) over (cx, cy) alone from each of
    ``starts``, the least cost kept; concentric circles are fitted from the same starts.

    With the tilt and distance known (another frame of the same set-up), arcs too short
    to fix a cone (:func:`fit_cones` runs along a flat valley) still fix its apex: the
    conics' curvature and their drift with 2 theta are then known. None when the points
    cannot fix a centre (as :func:`fit_cones`), no start is finite, or no fit converges.
    """
    arcs = _prepare(x, y, w, label)
    starts = [s for s in starts if all(math.isfinite(v) for v in s)]
    if arcs is None or not starts or not (distance > 0 and math.isfinite(tilt + axis)):
        return None
    arcs = arcs.subset(_stride(arcs.x.size, MAX_REFINE))
    fixed = [math.log(distance), tilt * math.cos(axis), tilt * math.sin(axis)]
    scale = float(np.sqrt(np.mean((arcs.x - starts[0][0]) ** 2 + (arcs.y - starts[0][1]) ** 2)))
    radius = float(np.max(np.hypot(arcs.x - starts[0][0], arcs.y - starts[0][1])))
    flat = [math.log(D_STARTS[1] * max(radius, 1.0)), 0.0, 0.0]

    x_scale = np.full(2, scale if scale > 0 else 1.0)
    free = (np.full(2, -np.inf), np.full(2, np.inf))

    def best(tail: list[float], want_jac: bool = False) -> Solution | None:
        """The least-cost fit of (cx, cy) with the other parameters ``tail``, or None."""
        out = None
        for start in starts:
            fun, many = _centre_only(arcs, tail)
            sol = least_squares.solve(
                fun,
                np.array(start, dtype=np.float64),
                *free,
                x_scale,
                f_scale=F_SCALE,
                max_nfev=4 * MAX_NFEV,
                ftol=1e-8,
                xtol=1e-8,
                want_jac=want_jac,
                many=many,
            )
            if np.all(np.isfinite(sol.x)) and (out is None or sol.cost < out.cost):
                out = sol
        return out

    cone, circles = best(fixed, want_jac=True), best(flat)
    if cone is None or circles is None:
        return None
    res = arcs.residuals(np.array([*cone.x, *fixed]))
    cov = _covariance(cone, res, max(res.size - 2 - arcs.n, 1))
    return CentreFit(
        x=float(cone.x[0]),
        y=float(cone.x[1]),
        rms=_robust_rms(cone.cost, res.size),
        sigma=float(np.sqrt(max(cov[0, 0] + cov[1, 1], 0.0))),
        circle_rms=_robust_rms(circles.cost, res.size),
        arcs=arcs.n,
    )

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
:func:`scattertag.beam_center._ridges`), no calibrant: the parameters are (cx, cy, log d,
tau cos phi, tau sin phi) and one free 2 theta_j per arc, eliminated (variable
projection: for a geometry the best 2 theta_j is the weighted mean of 2 theta(p_k) over
the arc, weights 1 / |grad 2 theta|^2). The residual of a point is its distance to its
conic to first order, (2 theta(p_k) - 2 theta_j) / |grad 2 theta(p_k)| in pixels; robust
least squares (``scipy.optimize.least_squares``, soft L1) from the circle fit's centre.
Untilted (tau = 0) the model is concentric circles and d is free; with tau > 0 d and tau
are fixed by how the rings' centres drift with their radius (first order) and by their
ellipticity (second order), so arcs that cover little of their rings fix them poorly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from scattertag.simulate.tilt import Tilt

#: Soft-L1 scale of the point residuals (pixels of the points' own grid).
F_SCALE = 1.0
#: Bound on each tilt component tau cos phi, tau sin phi (radians).
MAX_TILT = math.radians(60.0)
#: Tilt tau of the tilted starts (radians), about 4 axes 90 degrees apart.
START_TILT = 0.3
#: Starting distances d and the range d stays in, in units of the outermost arc's radius
#: about the start R: beyond 10 R (2 theta under 6 degrees) a tilt makes rings ellipses
#: about the beam, whose centre the circles find, and fits to short arcs trade that
#: ellipticity for the centre; d free runs away when the detector is not tilted.
D_STARTS = (1.0, 3.0)
D_BOUNDS = (0.05, 10.0)
#: Points the starts are tried on, and the best refined on (evenly strided).
MAX_POINTS = 300
MAX_REFINE = 1000
#: Residual evaluations allowed per least-squares run.
MAX_NFEV = 40


@dataclass(frozen=True)
class ConeFit:
    """Cones through the arcs: the direct-beam point (x, y), the distance d from the sample
    to it and the tilt (tau, phi) in radians; all lengths in the points' pixels.

    ``rms`` is the robust rms distance of the points to their conics (:func:`_robust_rms`),
    ``sigma`` the standard error of (x, y) (from the Jacobian and the residuals),
    ``circle_rms`` the same for the best untilted model (concentric circles) on the same
    points, ``two_theta`` (J,) each arc's angle (radians), ``arcs`` how many arcs the fit
    used and ``radius`` the outermost point's distance from the start (d's range is
    D_BOUNDS times it).
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


def _rotation(tx: float, ty: float) -> np.ndarray:
    """(3, 3) rotation of the detector for the tilt vector tau (cos phi, sin phi)."""
    tau = math.hypot(tx, ty)
    return Tilt(tau, math.atan2(ty, tx)).rotation()


def cone_angles(
    params: np.ndarray, x: np.ndarray, y: np.ndarray, derivatives: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """2 theta (radians) of points (x, y), |grad 2 theta| (radians per pixel), each (N,),
    and with ``derivatives`` d(2 theta)/d(params), (N, 5) (else None).

    ``params`` = (cx, cy, log d, tau cos phi, tau sin phi), lengths in pixels (module).
    With P the point in the lab and rho = |P_xy|: d(2 theta) = q . dP, q = (P_z P_x / rho,
    P_z P_y / rho, -rho) / |P|^2; dP/dx = e_x, dP/dy = e_y, dP/dcx = -e_x, dP/dcy = -e_y,
    dP/dlog d = (0, 0, d), dP/dt = (x - cx) de_x/dt + (y - cy) de_y/dt.
    """
    cx, cy, log_d, tx, ty = (float(v) for v in params)
    rot = _rotation(tx, ty)
    u, v = x - cx, y - cy
    d = math.exp(log_d)
    px = u * rot[0, 0] + v * rot[0, 1]
    py = u * rot[1, 0] + v * rot[1, 1]
    pz = d + u * rot[2, 0] + v * rot[2, 1]
    rho = np.maximum(np.sqrt(px * px + py * py), 1e-12)
    p2 = rho * rho + pz * pz
    two_theta = np.arctan2(rho, pz)
    qx, qy, qz = pz * px / (rho * p2), pz * py / (rho * p2), -rho / p2
    gx = qx * rot[0, 0] + qy * rot[1, 0] + qz * rot[2, 0]
    gy = qx * rot[0, 1] + qy * rot[1, 1] + qz * rot[2, 1]
    grad = np.maximum(np.hypot(gx, gy), 1e-15)
    if not derivatives:
        return two_theta, grad, None
    jac = np.empty((x.size, 5))
    jac[:, 0], jac[:, 1], jac[:, 2] = -gx, -gy, qz * d
    h = 1e-6
    for k, (ex, ey) in enumerate(((h, 0.0), (0.0, h))):
        dr = (_rotation(tx + ex, ty + ey) - _rotation(tx - ex, ty - ey)) / (2 * h)
        jac[:, 3 + k] = (
            qx * (u * dr[0, 0] + v * dr[0, 1])
            + qy * (u * dr[1, 0] + v * dr[1, 1])
            + qz * (u * dr[2, 0] + v * dr[2, 1])
        )
    return two_theta, grad, jac


class _Arcs:
    """Ridge points (N,) and their arcs for the fit; residuals and Jacobian of a geometry."""

    def __init__(self, x: np.ndarray, y: np.ndarray, sw: np.ndarray, label: np.ndarray, n: int):
        self.x, self.y, self.sw, self.label, self.n = x, y, sw, label, n

    def subset(self, idx: np.ndarray) -> _Arcs:
        """The points ``idx`` only."""
        return _Arcs(self.x[idx], self.y[idx], self.sw[idx], self.label[idx], self.n)

    def _means(self, values: np.ndarray, wk: np.ndarray) -> np.ndarray:
        """(n, ...) each arc's weighted mean of ``values`` (N, ...)."""
        tot = np.maximum(np.bincount(self.label, wk, self.n), 1e-300)
        if values.ndim == 1:
            return np.bincount(self.label, wk * values, self.n) / tot
        cols = [np.bincount(self.label, wk * c, self.n) for c in values.T]
        return np.stack(cols, axis=1) / tot[:, None]

    def residuals(self, params: np.ndarray) -> np.ndarray:
        """(N,) sqrt(w)-weighted distances (pixels) of the points to their arcs' conics, each
        arc's 2 theta the weighted mean of its points' (variable projection, weights
        w / |grad 2 theta|^2)."""
        return self.solve(params)[0]

    def solve(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(residuals (N,), the arcs' 2 theta (n,)) of a geometry."""
        tt, grad, _ = cone_angles(params, self.x, self.y)
        two_theta = self._means(tt, (self.sw / grad) ** 2)
        return self.sw * (tt - two_theta[self.label]) / grad, two_theta

    def jacobian(self, params: np.ndarray) -> np.ndarray:
        """(N, 5) d(residuals)/d(params), |grad 2 theta| and the weights held fixed (a
        Gauss-Newton approximation: they vary slowly along a conic)."""
        _, grad, dtt = cone_angles(params, self.x, self.y, derivatives=True)
        assert dtt is not None
        mean = self._means(dtt, (self.sw / grad) ** 2)
        return (self.sw / grad)[:, None] * (dtt - mean[self.label])


def _stride(n: int, keep: int) -> np.ndarray:
    """At most ``keep`` indices of range(n), evenly strided."""
    return np.linspace(0, n - 1, min(n, keep)).astype(np.int64)


def _robust_rms(cost: float, n: int) -> float:
    """sqrt(mean rho(r^2)) of ``least_squares``' cost 0.5 sum rho (soft L1, F_SCALE):
    the rms distance (pixels) for distances under F_SCALE, growing as sqrt(r) beyond."""
    return math.sqrt(2.0 * cost / max(n, 1))


def fit_cones(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    label: np.ndarray,
    start: tuple[float, float],
    max_points: int = MAX_POINTS,
) -> ConeFit | None:
    """Tilted cones through arcs of ridge points: the direct-beam point and the tilt.

    Parameters
    ----------
    x, y, w : (N,) the points (pixels) and their weights (ridge strength, > 0).
    label : (N,) int >= 0, the arc of each point; an arc is part of one ring.
    start : (x, y) the circle fit's common centre, where every search starts.
    max_points : the starts (D_STARTS untilted, the farther tilted by START_TILT about 4
        axes) run on at most this many points (evenly strided); the one of least robust
        cost is refined on at most MAX_REFINE points with a finite-difference Jacobian
        (the analytic one leaves out how |grad 2 theta| varies, which shifts the optimum
        along the flat valley of short arcs).

    Returns None when the points cannot fix a cone (under 2 arcs of 6 points, under 12
    points, arrays of different lengths, a non-finite start, negative labels) or no start
    converges.
    """
    x, y, w = (np.asarray(a, dtype=np.float64).ravel() for a in (x, y, w))
    label = np.asarray(label, dtype=np.int64).ravel()
    if not (x.size == y.size == w.size == label.size) or x.size < 12:
        return None
    if not all(math.isfinite(v) for v in start) or label.min() < 0:
        return None
    keep = np.isfinite(x) & np.isfinite(y) & np.isfinite(w) & (w > 0)
    big = np.bincount(label[keep], minlength=int(label.max()) + 1) >= 6
    if big.sum() < 2:
        return None
    keep &= big[label]
    x, y, w, label = x[keep], y[keep], w[keep], (np.cumsum(big) - 1)[label[keep]]
    arcs = _Arcs(x, y, np.sqrt(w / np.mean(w)), label, int(big.sum()))
    few = arcs.subset(_stride(x.size, max_points))
    most = arcs.subset(_stride(x.size, MAX_REFINE))
    scale = float(np.sqrt(np.mean((x - start[0]) ** 2 + (y - start[1]) ** 2)))
    radius = float(np.max(np.hypot(x - start[0], y - start[1])))
    if not radius > 0:
        return None
    bounds = (
        [-np.inf, -np.inf, math.log(D_BOUNDS[0] * radius), -MAX_TILT, -MAX_TILT],
        [np.inf, np.inf, math.log(D_BOUNDS[1] * radius), MAX_TILT, MAX_TILT],
    )

    def solve(on: _Arcs, p0: np.ndarray, exact: bool = False):
        return least_squares(
            on.residuals,
            p0,
            jac="2-point" if exact else on.jacobian,
            loss="soft_l1",
            f_scale=F_SCALE,
            x_scale=np.array([scale, scale, 1.0, 0.1, 0.1]),
            bounds=bounds,
            max_nfev=MAX_NFEV,
        )

    t = START_TILT
    near, far = D_STARTS[0] * radius, D_STARTS[1] * radius
    starts = [(near, 0.0, 0.0), (far, 0.0, 0.0)] + [
        (far, tx, ty) for tx, ty in ((t, 0.0), (-t, 0.0), (0.0, t), (0.0, -t))
    ]
    best = None
    for d, tx, ty in starts:
        sol = solve(few, np.array([start[0], start[1], math.log(d), tx, ty]))
        if np.all(np.isfinite(sol.x)) and (best is None or sol.cost < best.cost):
            best = sol
    if best is None:
        return None
    best = solve(most, best.x, exact=True)
    if not np.all(np.isfinite(best.x)):
        return None
    # the untilted model (concentric circles) on the same points, for comparison
    log_far = math.log(far)
    flat = least_squares(
        lambda c: most.residuals(np.array([c[0], c[1], log_far, 0.0, 0.0])),
        np.array(start, dtype=np.float64),
        jac=lambda c: most.jacobian(np.array([c[0], c[1], log_far, 0.0, 0.0]))[:, :2],
        loss="soft_l1",
        f_scale=F_SCALE,
        x_scale=np.array([scale, scale]),
        max_nfev=MAX_NFEV,
    )
    res, two_theta = most.solve(best.x)
    dof = max(res.size - 5 - arcs.n, 1)
    cov = np.linalg.pinv(best.jac.T @ best.jac) * float(np.sum(res * res)) / dof
    cx, cy, log_d, tx, ty = (float(v) for v in best.x)
    return ConeFit(
        x=cx,
        y=cy,
        distance=math.exp(log_d),
        tilt=math.hypot(tx, ty),
        axis=math.atan2(ty, tx),
        two_theta=two_theta,
        rms=_robust_rms(best.cost, res.size),
        sigma=float(np.sqrt(max(cov[0, 0] + cov[1, 1], 0.0))),
        circle_rms=_robust_rms(flat.cost, res.size),
        arcs=arcs.n,
        radius=radius,
    )

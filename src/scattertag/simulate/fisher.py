"""How precisely a simulated frame fixes its beam centre: a Cramer-Rao bound per frame.

The frame's expected counts mu(theta) are rendered by the simulator itself
(:func:`scattertag.simulate.image.expected_counts`) with the beam centre moved, so the
bound knows every term, parameter and draw of the frame (an optimistic bound: an
estimator knows none of them). theta = (x, y), or, where the simulator leaves the beam's
place along a stop free (a paddle's ``center`` along its length, a wedge's
``apex_offset``: drawn uniformly), (along, across) the stop's axis and that parameter,
the beam moved along the axis with the stop held where it is (so the stop tells nothing
of the beam along its axis; a difference of two renders, not the cancellation of two
sharp edges' differences).
Fisher information over the valid, unsaturated pixels,

    I_ij = sum (d mu / d theta_i) (d mu / d theta_j) / Var,

Var = mu for a photon counter, gain^2 mu_photons + read_noise^2 + 1/12 (ADU^2; the last
the rounding to whole ADU) for an integrating detector; d mu / d theta by central
differences. The bound on (x, y) is the xy block of I^-1 (the nuisances' Schur
complement). A step of 0.5 px (differences over one pixel) also stands for the pixel's
area where the simulator samples a sharp edge at pixel centres only (a stop's edge
blurred by under a pixel on small frames): a difference over one pixel of a step edge
is the slope of the same edge averaged over the pixel.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy.special import erf

from scattertag.simulate.experiment import Experiment
from scattertag.simulate.image import expected_counts, image_terms, render
from scattertag.simulate.terms import Term

#: Beamstop parameters that place the beam along the stop, drawn uniformly (beamstops.py),
#: and their change per pixel the beam moves along the stop's ``angle`` with the stop held
#: (a paddle's box lies at ``center`` beyond the beam, a wedge's apex ``apex_offset`` behind).
NUISANCES = {"paddle": ("center", -1.0), "wedge": ("apex_offset", 1.0)}
#: Central-difference step (pixels) of the centre and of the nuisances.
STEP = 0.5
#: Gauss-Legendre nodes of the hit probability's integral.
NODES = 256
#: Standard deviations of the broader axis beyond which the normal density is taken as 0.
SPAN = 9.0


def nuisance(exp: Experiment) -> tuple[str, float] | None:
    """The beamstop parameter left free on this experiment's frames and its change per pixel
    along the stop (NUISANCES), or None (where the stop is moved out, for the direct beam,
    its derivative vanishes and it drops out)."""
    return NUISANCES.get(exp.beamstop.kind or "")


def pixel_variance(exp: Experiment, mu: np.ndarray) -> np.ndarray:
    """Variance of each pixel's count (frame units^2) at expected counts ``mu`` (frame units)."""
    if exp.readout is None:
        return np.maximum(mu, 1e-12)
    gain = exp.readout["gain"]
    photons = np.maximum((mu - exp.readout["offset"]) / gain, 0.0)
    return gain * gain * photons + exp.readout["noise"] ** 2 + 1.0 / 12.0


def informative(exp: Experiment, mu: np.ndarray) -> np.ndarray:
    """(rows, cols) bool: valid pixels whose expected count lies under the count limit."""
    return exp.mask & (mu < exp.count_limit)


def fisher_information(derivatives: list[np.ndarray], variance: np.ndarray) -> np.ndarray:
    """(k, k) sum over pixels of d_i d_j / variance for k flat derivative arrays."""
    d = np.stack([x / np.sqrt(variance) for x in derivatives])
    return d @ d.T


def centre_covariance(information: np.ndarray) -> np.ndarray:
    """(2, 2) bound on the covariance of (x, y): the xy block of I^-1, i.e. the inverse of
    the Schur complement I_xx - I_xn I_nn^-1 I_nx (nuisances with no information drop out);
    inf along a direction the frame does not fix."""
    ixx = information[:2, :2]
    if len(information) > 2:
        inn, ixn = information[2:, 2:], information[:2, 2:]
        keep = np.diag(inn) > 0
        if keep.any():
            inn, ixn = inn[np.ix_(keep, keep)], ixn[:, keep]
            ixx = ixx - ixn @ np.linalg.pinv(inn) @ ixn.T
    values, vectors = np.linalg.eigh(0.5 * (ixx + ixx.T))
    if values[0] <= 1e-12 * max(float(values[-1]), 0.0) or values[0] <= 0.0:
        return np.full((2, 2), np.inf)  # a direction the frame does not fix
    return (vectors / values) @ vectors.T


def hit_probability(covariance: np.ndarray, tolerance: float) -> float:
    """P(|e| <= tolerance) for e ~ N(0, covariance) in 2-D: the integral over the broader
    axis u of phi(u) erf(sqrt(t^2 - s_a^2 u^2) / (sqrt(2) s_b)), s_a >= s_b the axes'
    standard deviations, over |u| <= t / s_a (as u = (t / s_a) sin(theta), smooth at the
    ends) or, where t / s_a > SPAN, over |u| <= SPAN (Gauss-Legendre either way)."""
    if not np.all(np.isfinite(covariance)):
        return 0.0
    values = np.clip(np.linalg.eigvalsh(covariance), 0.0, None)
    s_b, s_a = (math.sqrt(float(v)) for v in values)
    if s_a == 0.0:
        return 1.0
    if s_b == 0.0:  # all the error along one axis
        return float(erf(tolerance / (math.sqrt(2.0) * s_a)))
    x, weights = np.polynomial.legendre.leggauss(NODES)
    a = tolerance / s_a
    if a <= SPAN:
        theta = 0.5 * math.pi * x
        u, jacobian = a * np.sin(theta), 0.5 * math.pi * a * np.cos(theta)
    else:
        u, jacobian = SPAN * x, np.full(NODES, SPAN)
    inner = erf(np.sqrt(np.maximum(tolerance**2 - (s_a * u) ** 2, 0.0)) / (math.sqrt(2.0) * s_b))
    density = np.exp(-0.5 * u * u) / math.sqrt(2.0 * math.pi)
    return float(min(np.sum(weights * density * inner * jacobian), 1.0))


def sigma_max(covariance: np.ndarray) -> float:
    """Standard deviation (pixels) along a (2, 2) covariance's worst direction."""
    if not np.all(np.isfinite(covariance)):
        return math.inf
    return math.sqrt(max(float(np.linalg.eigvalsh(covariance)[-1]), 0.0))


@dataclass(frozen=True)
class CentreBound:
    """The Cramer-Rao bound of one frame's beam centre (:func:`centre_bound`): the bound
    with the model known (the first ``known`` parameters: the centre and the stop's free
    parameter) and, where more are given, with the model's amplitudes and distance free."""

    names: tuple[str, ...]  # ("x", "y") or ("along", "across", the stop's parameter), more
    information: np.ndarray  # (k, k) Fisher information of those (pixels, log amplitudes)
    known: int  # parameters of the known model's bound (2 or 3)
    to_xy: np.ndarray  # (2, 2) map of the first two parameters to the beam's (x, y)
    pixels: int  # valid, unsaturated pixels summed over

    def _xy(self, covariance: np.ndarray) -> np.ndarray:
        if not np.all(np.isfinite(covariance)):
            return covariance
        return self.to_xy @ covariance @ self.to_xy.T

    @property
    def covariance(self) -> np.ndarray:
        """(2, 2) bound on the covariance of (x, y), pixel^2, the model known (inf: unfixed)."""
        k = self.known
        return self._xy(centre_covariance(self.information[:k, :k]))

    @property
    def free_covariance(self) -> np.ndarray:
        """(2, 2) bound on the covariance of (x, y), every parameter given free."""
        return self._xy(centre_covariance(self.information))

    @property
    def sigma_max(self) -> float:
        """Standard deviation (pixels) along the known model's bound's worst direction."""
        return sigma_max(self.covariance)

    def hit_probability(self, tolerance: float, free: bool = False) -> float:
        """P(|error| <= tolerance pixels) of an efficient unbiased estimator (``free``: the
        bound with every parameter free)."""
        return hit_probability(self.free_covariance if free else self.covariance, tolerance)


#: Renders expected counts (rows, cols) in frame units with the beam centre moved by
#: ``shift`` (dx, dy) pixels and beamstop parameters replaced (keywords), as
#: :func:`scattertag.simulate.image.expected_counts` of one image.
Renderer = Callable[..., np.ndarray]


def _moves(
    exp: Experiment, free: tuple[str, float] | None, distance: bool
) -> tuple[list, np.ndarray]:
    """The parameters' moves (a function of the step t giving the renderer's keywords) and the
    (2, 2) map from the first two to the beam's (x, y): x and y, or along and across the
    stop's axis with the free parameter held so the stop stays, and that parameter; with
    ``distance`` last the log of the distance, t / (the frame's longer side) a step (the
    farthest radii move by about t pixels)."""
    moves: list = [lambda t: {"shift": (t, 0.0)}, lambda t: {"shift": (0.0, t)}]
    to_xy = np.eye(2)
    if free is not None:
        name, rate = free
        p = exp.beamstop.params
        c, s, value = math.cos(p["angle"]), math.sin(p["angle"]), float(p[name])
        moves = [
            lambda t: {"shift": (t * c, t * s), name: value + rate * t},
            lambda t: {"shift": (-t * s, t * c)},
            lambda t: {name: value + t},
        ]
        to_xy = np.array([[c, -s], [s, c]])
    if distance:
        side = max(exp.shape)
        moves.append(lambda t: {"distance": math.exp(t / side)})
    return moves, to_xy


def _source(term: Term) -> int:
    """One id for the terms of one amplitude: the shared parameters of a lattice's,
    calibrant's or crystal's peaks (a dict among the term's parameters), else its own."""
    shared = [v for v in term.params.values() if isinstance(v, dict)]
    return id(shared[0]) if shared else id(term.params)


def amplitude_derivatives(exp: Experiment, image_index: int = 0) -> list[np.ndarray]:
    """(rows*cols,) derivatives in frame units of the linear nuisances an estimator does not
    know: d mu / d log(amplitude) of each source of the image's sample, background and
    beam-made defect terms (the terms of one source rendered alone, :func:`_source`), a
    flat offset, and a flat field's ramp across the frame (their sum times x and times y,
    -1/2 to 1/2 over the frame, as ``detector.sensitivity_map``'s gradient)."""
    terms, settings = image_terms(exp, image_index)
    groups: dict[int, list[Term]] = {}
    for t in terms:
        if t.role in ("sample", "background", "defect"):
            groups.setdefault(_source(t), []).append(t)
    gain = 1.0 if exp.readout is None else exp.readout["gain"]
    alone = {**settings, "dark": 0.0}
    columns = [render(exp, group, **alone).lam * gain for group in groups.values()]
    columns = [c for c in columns if c.any()]
    rows, cols = exp.shape
    lit = np.sum(columns, axis=0).reshape(rows, cols) if columns else np.zeros((rows, cols))
    y = np.arange(rows) / max(rows - 1, 1) - 0.5
    x = np.arange(cols) / max(cols - 1, 1) - 0.5
    ramps = [(lit * x[None, :]).ravel(), (lit * y[:, None]).ravel()]
    return [*columns, np.full(exp.mask.size, gain), *(r for r in ramps if r.any())]


def bound_from_renders(
    exp: Experiment,
    draw: Renderer,
    free: tuple[str, float] | None = None,
    step: float = STEP,
    amplitudes: list[np.ndarray] | tuple = (),
    distance: bool = False,
) -> CentreBound:
    """The Cramer-Rao bound of the beam centre of the frame ``draw`` renders on ``exp``'s
    detector: expected counts at the centre and at +-``step`` along each parameter
    (:func:`_moves`; ``free`` a beamstop parameter and its rate, as NUISANCES; ``distance``
    the log distance); linear nuisances' derivatives ``amplitudes`` (flat, frame units)
    are the model-free bound's too."""
    mu = draw()
    use = informative(exp, mu).ravel()
    mean = mu.ravel()[use]
    moves, to_xy = _moves(exp, free, distance)
    names: tuple[str, ...] = ("x", "y") if free is None else ("along", "across", free[0])
    known = len(names)
    derivatives = []
    for k, move in enumerate(moves):
        up, down = draw(**move(step)).ravel()[use], draw(**move(-step)).ravel()[use]
        derivatives.append((up - down) / (2.0 * step))
        if k < known:
            mean = mean + up + down
    # the variance of the mean of the renders about the centre: the count averaged over the
    # pixel's area where an edge sharper than a pixel is sampled at pixel centres only
    # (else mu itself)
    variance = pixel_variance(exp, mean / (1 + 2 * known))
    derivatives += [a[use] for a in amplitudes]
    names += ("log distance",) * distance
    names += tuple(f"linear {k}" for k in range(len(amplitudes)))
    information = fisher_information(derivatives, variance)
    return CentreBound(names, information, known, to_xy, int(use.sum()))


def centre_bound(
    exp: Experiment, image_index: int = 0, step: float = STEP, free_model: bool = False
) -> CentreBound:
    """The Cramer-Rao bound of the beam centre of image ``image_index`` of ``exp``, rendered
    by the simulator (:func:`expected_counts`), the stop's free parameter (NUISANCES) too;
    with ``free_model`` also the information of the distance and of every source's
    amplitude (:func:`amplitude_derivatives`), for ``CentreBound.free_covariance``."""
    draw = partial(expected_counts, exp, image_index)
    amplitudes = amplitude_derivatives(exp, image_index) if free_model else ()
    return bound_from_renders(exp, draw, nuisance(exp), step, amplitudes, free_model)

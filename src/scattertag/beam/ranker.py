"""Which beam-centre candidate to trust: a logistic model trained on simulated frames.

The estimators of :mod:`scattertag.beam.center` each propose a centre with its evidence:
how isotropic the image is about it (adjusted R^2 of a radial profile, two levels), how
radial the gradient field is (coherence), its standard error, the point-symmetry
correlation, the arcs or the beamstop edge behind it, and how many other estimators land
near it. Hand-set rules over these weigh them badly: on the benchmark's simulated frames,
three in four misses scored a higher isotropy at the wrong centre than at the true one.
Here a logistic model, P(hit) = 1 / (1 + exp(-w . f)), learns the weights from simulated
frames that know their centre (a hit: within 2 px on the frame, 2 % of the diagonal off
it); the candidate with the largest P is chosen, and P is its confidence.

The weights (``pretrained/beam_center_ranker.json``: feature names, standardisation and
coefficients) come from ``benchmarks/train_beam_center_ranker.py`` on simulated frames,
never real ones: the shipped ones (30 Nov) on seeds 1 and 2, which the benchmark now
measures (2 the fair test); a retrain must use fresh seeds (the script refuses 0-5).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from typing import Protocol

import numpy as np

#: Methods a candidate may come from that can be chosen (the frame's middle and a hint are
#: only starting points of the isotropy search).
RANKED = ("rings", "gradient", "symmetry", "axis", "beamstop", "isotropy")
#: Estimators that look at different evidence; agreement among them is evidence.
INDEPENDENT = ("rings", "symmetry", "gradient", "beamstop")
#: Feature names, in order (``x_`` features are a method's own copy of a shared one).
BASE = (
    "isof",
    "iso",
    "isof_gap",
    "coh",
    "coh_gap",
    "rho",
    "log_sigma",
    "log_arcs",
    "span",
    "agree",
    "agree_wide",
    "on_frame",
    "off_distance",
)
SPECIFIC = ("isof_gap", "log_sigma", "agree", "coh")
FEATURES = (
    *(f"is_{m}" for m in RANKED),
    *BASE,
    *(f"{m}_x_{f}" for m in RANKED for f in SPECIFIC),
)


class Candidate(Protocol):
    """What the ranker reads of a candidate (:class:`scattertag.beam.candidates.Candidate`)."""

    @property
    def method(self) -> str: ...

    @property
    def x(self) -> float: ...

    @property
    def y(self) -> float: ...

    @property
    def sigma(self) -> float: ...

    @property
    def coherence(self) -> float: ...

    @property
    def isotropy(self) -> float: ...

    @property
    def fine_isotropy(self) -> float: ...

    @property
    def rho(self) -> float: ...

    @property
    def arcs(self) -> int: ...

    @property
    def span(self) -> float: ...

    @property
    def seed(self) -> str: ...


def features(cands: Sequence[Candidate], shape: tuple[int, int]) -> np.ndarray:
    """(len(cands), len(FEATURES)) features of each candidate on a frame of ``shape``.

    Gaps are to the best of the frame's ranked candidates (isotropy, coherence);
    ``agree`` counts the other independent estimators within max(2 px, 0.5 % of the
    diagonal), ``agree_wide`` within 5 times that (the isotropy search is not backed by
    its own start); ``off_distance`` is the distance past the frame's border in diagonals.
    """
    rows, cols = shape
    diag = math.hypot(rows, cols)
    tol = max(2.0, 0.005 * diag)
    ranked = [c for c in cands if c.method in RANKED]
    top_iso = max((c.fine_isotropy for c in ranked), default=0.0)
    top_coh = max((c.coherence for c in ranked), default=0.0)
    out = np.zeros((len(cands), len(FEATURES)))
    col = {name: k for k, name in enumerate(FEATURES)}
    for i, c in enumerate(cands):
        others = [
            d for d in cands if d.method in INDEPENDENT and d.method not in (c.method, c.seed)
        ]
        dist = [math.hypot(d.x - c.x, d.y - c.y) for d in others]
        methods_near = {d.method for d, r in zip(others, dist) if r <= tol}
        methods_wide = {d.method for d, r in zip(others, dist) if r <= 5 * tol}
        past = max(-0.5 - c.x, c.x - (cols - 0.5), -0.5 - c.y, c.y - (rows - 0.5), 0.0)
        f = {
            "isof": c.fine_isotropy,
            "iso": c.isotropy,
            "isof_gap": c.fine_isotropy - top_iso,
            "coh": c.coherence,
            "coh_gap": c.coherence - top_coh,
            "rho": c.rho,
            "log_sigma": math.log10(min(max(c.sigma, 1e-3), 1e3)),
            "log_arcs": math.log1p(c.arcs),
            "span": c.span,
            "agree": float(len(methods_near)),
            "agree_wide": float(len(methods_wide)),
            "on_frame": float(past == 0.0),
            "off_distance": past / diag,
        }
        if c.method in RANKED:
            out[i, col[f"is_{c.method}"]] = 1.0
            for name in SPECIFIC:
                out[i, col[f"{c.method}_x_{name}"]] = f[name]
        for name in BASE:
            out[i, col[name]] = f[name]
    return out


@lru_cache(maxsize=1)
def weights() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, scale, coefficients with the intercept last) from the packaged JSON."""
    text = resources.files("scattertag").joinpath("pretrained/beam_center_ranker.json")
    data = json.loads(text.read_text())
    if tuple(data["features"]) != FEATURES:
        raise ValueError("beam_center_ranker.json was trained on other features; retrain it")
    return (
        np.asarray(data["mean"], dtype=np.float64),
        np.asarray(data["scale"], dtype=np.float64),
        np.asarray(data["coef"], dtype=np.float64),
    )


def probabilities(cands: Sequence[Candidate], shape: tuple[int, int]) -> np.ndarray:
    """(len(cands),) P(hit) of each candidate; 0 for those that cannot be chosen."""
    if not cands:
        return np.zeros(0)
    mean, scale, coef = weights()
    z = (features(cands, shape) - mean) / scale
    p = 1.0 / (1.0 + np.exp(-(z @ coef[:-1] + coef[-1])))
    return np.where([c.method in RANKED for c in cands], p, 0.0)


def fit(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 50) -> dict:
    """Logistic regression by Newton's method (IRLS) with an L2 penalty ``l2`` on the
    standardised coefficients (not the intercept): x (N, F) features, y (N,) 0/1.

    Returns the JSON-ready weights: features, mean, scale, coef (intercept last).
    """
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((x.shape[0], 1))])
    w = np.zeros(z.shape[1])
    pen = np.full(z.shape[1], l2)
    pen[-1] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(z @ w)))
        grad = z.T @ (p - y) + pen * w
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(pen + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return {
        "features": list(FEATURES),
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "coef": w.tolist(),
    }

"""Ordered samples beyond the first version: crystalline powders with texture or coarse
grains, single crystals over an amorphous halo, and oriented fibres.

Drawn per image with their recipe probabilities from the image's own random stream, like
artefacts.py; q values scale with the experiment's ``q_scale`` (scattering.py).

* **powder**: the rings of a BCC, FCC, hexagonal or lamellar lattice
  (scattering.lattice_peaks), each ring smooth (40 %), textured (many grains, grain eta
  0.5-0.75: "Polycrystalline") or spotty (coarse grains, eta 0.75-0.95);
* **single crystal**: one zone of a crystal, Bragg spots on a 2-D reciprocal lattice
  a*, b* (gamma* 60-120 degrees), |F|^2 drawn from Wilson's exponential statistics and
  Debye-Waller damped, over an isotropic halo (glass, solvent, pressure medium);
* **fibre**: fibre axis at azimuth phi on the detector; equatorial arcs (at chi = phi +-
  90 degrees, lateral packing q_e), meridional arcs at q = n c* (chi = phi, phi + 180)
  and layer lines, streaks at q_z = n c* (q_z = q cos(chi - phi)) peaking at q_r = +- r_n.
"""

from __future__ import annotations

import numpy as np

from scattertag.simulate import profiles as pf
from scattertag.simulate.experiment import Experiment
from scattertag.simulate.scattering import (
    FWHM,
    annulus_term,
    blur_pixels,
    gaussian_spots,
    grain_params,
    grain_profile,
    halo_params,
    halo_terms,
    lattice_params,
    lattice_terms,
    loguniform,
    new_seed,
    q_limit,
    sigma_with_resolution,
)
from scattertag.simulate.terms import Term


# ---- powder ----------------------------------------------------------------------------
def powder_params(rng: np.random.Generator, s: float = 1.0) -> dict:
    """A lattice (scattering.lattice_params) with a ring style: isotropic, textured or spotty."""
    p = lattice_params(rng, s)
    p["style"] = ("isotropic", "polycrystalline", "large grains")[
        int(rng.choice(3, p=[0.4, 0.3, 0.3]))
    ]
    if p["style"] != "isotropic":
        p.update(grain_params(rng, p["style"], width_deg=(0.1, 1.5)))
    return p


def powder_terms(exp: Experiment, p: dict) -> list[Term]:
    """The lattice's rings; grainy ones on their annulus, each ring with its own grains."""
    terms = lattice_terms(exp, p)
    if p["style"] == "isotropic":
        return terms
    grainy = []
    for t in terms:
        q = t.params["q"]
        sigma = sigma_with_resolution(exp, q, p["dq_rel"] * p["q1"] / FWHM)
        grains = {**p, "seed": p["seed"] + t.params["order"]}
        params = {**t.params, "style": p["style"], "grain_eta": p["grain_eta"]}
        angular = grain_profile(exp.chi_grid, grains, fast=True)
        assert t.radial is not None
        grainy.append(
            annulus_term(exp, t.key, params, t.radial, angular, q - 5 * sigma, q + 5 * sigma)
        )
    return grainy


# ---- single crystal --------------------------------------------------------------------
def single_crystal_params(rng: np.random.Generator, s: float = 1.0) -> dict:
    """Reciprocal cell a* 0.03-0.3 1/A (x s), b*/a* 0.6-1.6, gamma* 60-120 deg; a halo under it."""
    a = loguniform(rng, 0.03, 0.3) * s
    return {
        "a_star": a,
        "b_star": a * float(rng.uniform(0.6, 1.6)),
        "gamma_deg": float(rng.uniform(60.0, 120.0)),
        "rotation": float(rng.uniform(0, 2 * np.pi)),
        "amplitude": loguniform(rng, 10.0, 1e5),
        "spot_sigma": float(rng.uniform(0.5, 2.0)),
        "debye_waller": float(rng.uniform(0.02, 0.1) * 2 * np.pi / a),
        "seed": new_seed(rng),
        "halo": halo_params(rng, s) | {"style": "isotropic"},
    }


def single_crystal_terms(exp: Experiment, p: dict) -> list[Term]:
    """Bragg spots of one zone, hk up to +-12 within the frame and the Ewald sphere, + halo."""
    g = exp.geometry
    hk = np.array([(h, k) for h in range(-12, 13) for k in range(-12, 13) if (h, k) != (0, 0)])
    h, k = hk[:, 0], hk[:, 1]
    gamma = np.radians(p["gamma_deg"])
    gx = h * p["a_star"] + k * p["b_star"] * np.cos(gamma)
    gy = k * p["b_star"] * np.sin(gamma)
    q = np.hypot(gx, gy)
    inside = (q < min(g.q_max, 0.99 * q_limit(exp))) & (q > 0)
    if not inside.any():
        return halo_terms(exp, p["halo"])
    q, angle = q[inside], np.arctan2(gy[inside], gx[inside]) + p["rotation"]
    f2 = np.random.default_rng(p["seed"]).exponential(1.0, len(q))  # Wilson statistics
    amp = p["amplitude"] * exp.intensity_scale * f2 * pf.debye_waller(q, p["debye_waller"])
    r = np.asarray(g.radius_of_q(q))
    index, values = gaussian_spots(
        exp,
        *exp.detector_xy(r * np.cos(angle), r * np.sin(angle)),
        blur_pixels(exp, p["spot_sigma"]),
        amp,
    )
    spots = Term(
        "features.crystal.structure factor: single crystal",
        "sample",
        {"order": 1, "spots": len(q), "crystal": p},
        index=index,
        values=values,
        unique=False,
        rule="spots",
    )
    return [spots, *halo_terms(exp, p["halo"])]


# ---- fibre -----------------------------------------------------------------------------
def fibre_params(rng: np.random.Generator, s: float = 1.0) -> dict:
    """Fibre axis azimuth, equatorial q_e, meridional repeat c*, arc widths, amplitudes."""
    c_star = loguniform(rng, 0.02, 0.3) * s
    return {
        "phi": float(rng.uniform(-np.pi, np.pi)),
        "q_equator": c_star * float(rng.uniform(0.7, 3.0)),
        "c_star": c_star,
        "arc_deg": float(rng.uniform(3.0, 20.0)),
        "dq_rel": float(rng.uniform(0.02, 0.1)),
        "amplitude": loguniform(rng, 3.0, 3e4),
        "meridian": float(rng.uniform(0.2, 1.0)),
        "layer_lines": int(rng.integers(0, 5)),
        "layer_r": float(rng.uniform(0.3, 1.5)),
    }


def _arcs(chi: np.ndarray, centres: list[float], width: float) -> np.ndarray:
    """Sum of periodic Gaussian arcs in chi (rad), peak 1."""
    d = np.angle(np.exp(1j * (chi[:, None] - np.array(centres)[None, :])))
    return np.exp(-0.5 * (d / width) ** 2).sum(axis=1)


def fibre_terms(exp: Experiment, p: dict) -> list[Term]:
    """Equatorial and meridional arcs on their annuli; layer lines on their bands."""
    g = exp.geometry
    width = np.radians(p["arc_deg"]) / FWHM
    terms = []
    arcs = (
        ("equator", p["q_equator"], [p["phi"] + np.pi / 2, p["phi"] - np.pi / 2], 1.0),
        ("meridian", p["c_star"], [p["phi"], p["phi"] + np.pi], p["meridian"]),
    )
    for name, q0, centres, weight in arcs:
        if q0 >= min(g.q_max, 0.99 * q_limit(exp)):
            continue
        sigma = sigma_with_resolution(exp, q0, p["dq_rel"] * q0 / FWHM)
        radial = (
            weight * p["amplitude"] * exp.intensity_scale * pf.gaussian_peak(exp.q_grid, q0, sigma)
        )
        angular = _arcs(exp.chi_grid, centres, width)
        terms.append(
            annulus_term(
                exp,
                f"features.fibre.ring: {name}",
                p,
                radial,
                angular,
                q0 - 5 * sigma,
                q0 + 5 * sigma,
            )
        )
    if p["layer_lines"]:
        q = exp.q_map.ravel().astype(np.float64)
        chi = exp.chi_map.ravel().astype(np.float64) - p["phi"]
        qz, qr = np.abs(q * np.cos(chi)), np.abs(q * np.sin(chi))
        sigma_z = max(p["dq_rel"] * p["c_star"], float(g.q_of_radius(blur_pixels(exp, 0.7))))
        for n in range(1, p["layer_lines"] + 1):
            band = np.flatnonzero(np.abs(qz - n * p["c_star"]) < 4 * sigma_z)
            if len(band) == 0:
                continue
            r_n = p["layer_r"] * p["c_star"] * n**0.5
            values = (
                0.5
                * p["amplitude"]
                * exp.intensity_scale
                * n**-1.0
                * pf.gaussian_peak(qz[band], n * p["c_star"], sigma_z)
                * pf.gaussian_peak(qr[band], r_n, 0.5 * r_n)
            )
            terms.append(
                Term(
                    "features.fibre.layer line: fibre",
                    "sample",
                    {"order": n, "fibre": p},
                    index=band,
                    values=values,
                )
            )
    return terms


#: Ordered samples drawn per image: name -> (params, build).
CRYSTAL_TERMS = {
    "powder": (powder_params, powder_terms),
    "single crystal": (single_crystal_params, single_crystal_terms),
    "fibre": (fibre_params, fibre_terms),
}


def draw_crystal_terms(exp: Experiment, rng: np.random.Generator) -> list[Term]:
    """The ordered-sample terms of one sample image, each with its recipe probability."""
    terms: list[Term] = []
    for name, (draw, build) in CRYSTAL_TERMS.items():
        if rng.random() < exp.recipe.terms[name]:
            terms += build(exp, draw(rng, exp.q_scale))
    return terms

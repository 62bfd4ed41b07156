"""What the sample scatters: the terms of one image.

Each term type has a pair of functions: ``*_params(rng)`` draws its parameters (a
JSON-friendly dict, the whole cause of the term; any further randomness, such as grain
positions, comes from a ``seed`` stored in it) and ``*_terms(exp, params)`` builds its
:class:`Term` list deterministically. Amplitudes are expected counts per *reference* pixel
(75 um at 0.594 m); the experiment's ``intensity_scale`` converts them to counts per
actual pixel (solid angle), so the physics in q and every term's visibility are the same
at every frame size.
"""

from __future__ import annotations

import numpy as np

from scattertag.simulate import gisaxs
from scattertag.simulate import profiles as pf
from scattertag.simulate.experiment import CHI_BINS, Experiment
from scattertag.simulate.lattices import AGBH_Q1, LATTICES, reflections
from scattertag.simulate.terms import Term

#: Instrumental resolution (beam size): Gaussian sigma in reference pixels.
RESOLUTION_PIXELS = 0.4
#: Sampling blur of a pixel (its box, 1/sqrt(12), as a Gaussian sigma) in actual pixels.
PIXEL_SIGMA = 0.3
#: q at which power laws are normalised (1/A), near the edge of a typical beamstop.
Q_REF = 0.02
#: FWHM / sigma of a Gaussian.
FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))


def loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A draw uniform in log between lo and hi."""
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def new_seed(rng: np.random.Generator) -> int:
    """A seed for a term's own generator (its size-dependent draws must not shift the others)."""
    return int(rng.integers(2**62))


# ---- building blocks -----------------------------------------------------------------
def q_limit(exp: Experiment) -> float:
    """4 pi / lambda (1/A): the largest q any pixel could see (back-scattering)."""
    return float(4 * np.pi / exp.geometry.wavelength)


def blur_pixels(exp: Experiment, sigma_ref: float) -> float:
    """Sigma (actual pixels) of a feature of sigma_ref reference pixels, with the pixel's blur."""
    return float(np.hypot(sigma_ref * exp.scale, PIXEL_SIGMA))


def sigma_with_resolution(exp: Experiment, q0: float, sigma_q: float) -> float:
    """Peak sigma (1/A) broadened in quadrature by the beam size and the pixel at q0."""
    g = exp.geometry
    r0 = float(g.radius_of_q(q0))
    dq = float(g.q_of_radius(r0 + blur_pixels(exp, RESOLUTION_PIXELS))) - q0
    return float(np.hypot(sigma_q, dq))


def peak_radial(exp: Experiment, q0: float, sigma_q: float, amplitude: float) -> np.ndarray:
    """(n_bins,) Gaussian ring profile, expected counts per pixel."""
    return amplitude * exp.intensity_scale * pf.gaussian_peak(exp.q_grid, q0, sigma_q)


def annulus_term(
    exp: Experiment,
    key: str,
    params: dict,
    radial: np.ndarray,
    angular: np.ndarray,
    q_lo: float,
    q_hi: float,
    rule: str = "peak",
) -> Term:
    """A term radial(q) x angular(chi) evaluated only on the annulus q_lo <= q <= q_hi."""
    g = exp.geometry
    q_top = 0.99 * q_limit(exp)
    index, rbins = exp.annulus(
        float(g.radius_of_q(min(max(q_lo, 0.0), q_top))), float(g.radius_of_q(min(q_hi, q_top)))
    )
    values = radial[np.minimum(rbins, len(radial) - 1)] * angular[exp.chibin[index]]
    return Term(key, "sample", params, index=index, values=values, rule=rule)


def gaussian_spots(
    exp: Experiment, xs: np.ndarray, ys: np.ndarray, sigma: float, amplitudes: np.ndarray
):
    """Flat indices and values of Gaussian spots (sigma in pixels) drawn on local patches;
    spots at non-finite positions (directions that miss a tilted detector) are left out."""
    rows, cols = exp.shape
    hit = np.isfinite(xs) & np.isfinite(ys)
    if not hit.all():
        xs, ys, amplitudes = xs[hit], ys[hit], amplitudes[hit]
    h = int(np.ceil(4 * sigma))
    off = np.arange(-h, h + 1)
    ix = np.rint(xs)[:, None, None].astype(np.int64) + off[None, None, :]
    iy = np.rint(ys)[:, None, None].astype(np.int64) + off[None, :, None]
    ix, iy = np.broadcast_arrays(ix, iy)
    d2 = (ix - xs[:, None, None]) ** 2 + (iy - ys[:, None, None]) ** 2
    values = amplitudes[:, None, None] * np.exp(-0.5 * d2 / sigma**2)
    inside = (ix >= 0) & (ix < cols) & (iy >= 0) & (iy < rows)
    return (iy * cols + ix)[inside], values[inside]


# ---- diffuse low-q ---------------------------------------------------------------------
LOW_Q_SHAPES = ("power law", "Ornstein-Zernike", "Debye-Bueche", "Guinier")


def low_q_profile(q: np.ndarray, p: dict) -> np.ndarray:
    """Normalised low-q shape: power laws are 1 at q_ref (Q_REF), the others 1 at q = 0."""
    shape = p["shape"]
    if shape == "power law":
        q_ref = p.get("q_ref", Q_REF)
        return pf.power_law(q, p["exponent"], q_ref, 0.1 * q_ref)
    if shape == "Ornstein-Zernike":
        return pf.ornstein_zernike(q, p["length"])
    if shape == "Debye-Bueche":
        return pf.debye_bueche(q, p["length"])
    if shape == "Guinier":
        return pf.guinier(q, p["length"])
    raise ValueError(f"unknown low-q shape {shape!r}; allowed: {', '.join(LOW_Q_SHAPES)}")


def low_q_params(rng: np.random.Generator, s: float = 1.0) -> dict:
    """Power law (p 1.8-4.5), Ornstein-Zernike, Debye-Bueche or Guinier; 35 % anisotropic.

    ``s`` (every ``*_params``): the experiment's q scale; q values are multiplied and
    lengths divided by it, so the pattern spans the same part of any frame.
    """
    p: dict = {"shape": LOW_Q_SHAPES[int(rng.integers(len(LOW_Q_SHAPES)))]}
    if p["shape"] == "power law":
        p.update(exponent=float(rng.uniform(1.8, 4.5)), amplitude=loguniform(rng, 3.0, 3e5))
        if s != 1.0:
            p["q_ref"] = Q_REF * s
    else:
        p.update(length=loguniform(rng, 15.0, 400.0) / s, amplitude=loguniform(rng, 10.0, 3e5))
    p["aspect"] = loguniform(rng, 1.3, 4.0) if rng.random() < 0.35 else 1.0
    p["angle"] = float(rng.uniform(0, np.pi))
    return p


def low_q_terms(exp: Experiment, p: dict) -> list[Term]:
    """Diffuse low-q term; anisotropic (aspect != 1) ones use q_eff = q g(chi) on the full frame."""
    key = f"features.main.diffuse low-q: {p['shape']}" + (
        ", anisotropic" if p["aspect"] != 1.0 else ""
    )
    amp = p["amplitude"] * exp.intensity_scale
    if p["aspect"] == 1.0:
        return [Term(key, "sample", p, radial=amp * low_q_profile(exp.q_grid, p), rule="diffuse")]
    stretch = pf.ellipse_stretch(exp.chi_grid, p["aspect"], p["angle"]).astype(np.float32)
    q_eff = exp.q_map.ravel() * stretch[exp.chibin]
    top = float(q_eff.max()) * 1.0001 + 1e-9
    table = amp * low_q_profile(np.linspace(0.0, top, 8192), p)  # tabulated, then looked up
    return [
        Term(
            key,
            "sample",
            p,
            values=table[(q_eff * (8191.0 / top)).astype(np.int32)],
            rule="diffuse",
        )
    ]


def form_factor_params(rng: np.random.Generator, s: float = 1.0) -> dict:
    """Sphere radius 20-200 A (/ s), polydispersity 3-15 %."""
    return {
        "radius": loguniform(rng, 20.0, 200.0) / s,
        "polydispersity": float(rng.uniform(0.03, 0.15)),
        "amplitude": loguniform(rng, 10.0, 3e5),
    }


def form_factor_terms(exp: Experiment, p: dict) -> list[Term]:
    """Polydisperse sphere form factor |F(qR)|^2 (a low-q diffuse term with fringes)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(9)  # Gaussian size distribution
    profile = (
        sum(
            w * pf.sphere_form_factor(exp.q_grid, p["radius"] * (1 + p["polydispersity"] * z))
            for z, w in zip(nodes, weights)
        )
        / weights.sum()
    )
    radial = p["amplitude"] * exp.intensity_scale * profile
    return [
        Term(
            "features.main.diffuse low-q: sphere form factor",
            "sample",
            p,
            radial=radial,
            rule="diffuse",
        )
    ]


def high_q_params(rng: np.random.Generator, s: float = 1.0) -> dict:
    """Disorder length 1.5-10 A (/ s), plateau 1-1000 counts."""
    return {"sigma": loguniform(rng, 1.5, 10.0) / s, "amplitude": loguniform(rng, 1.0, 1e3)}


def high_q_terms(exp: Experiment, p: dict) -> list[Term]:
    """Diffuse high-q scattering A (1 - exp(-sigma^2 q^2))."""
    radial = p["amplitude"] * exp.intensity_scale * pf.high_q_rise(exp.q_grid, p["sigma"])
    return [Term("features.main.diffuse high-q", "sample", p, radial=radial, rule="diffuse")]


# ---- rings and halos -------------------------------------------------------------------
RING_STYLES = ("isotropic", "anisotropic", "polycrystalline", "large grains")


def ring_params(rng: np.random.Generator, s: float = 1.0) -> dict:
    """q0 0.02-0.8 1/A (x s), FWHM dq/q0 0.01-0.2 (half sharp, below 0.025), one of RING_STYLES."""
    p: dict = {"q0": loguniform(rng, 0.02, 0.8) * s}
    p["dq_rel"] = (
        loguniform(rng, 0.01, 0.025) if rng.random() < 0.5 else loguniform(rng, 0.025, 0.2)
    )
    p["amplitude"] = loguniform(rng, 0.3, 3e4)
    p["style"] = RING_STYLES[int(rng.choice(4, p=[0.45, 0.25, 0.18, 0.12]))]
    if p["style"] == "anisotropic":
        p.update(
            symmetry=int(2 * rng.integers(1, 11)),
            eta=float(rng.uniform(0.4, 0.95)),
            chi0=float(rng.uniform(-np.pi, np.pi)),
        )
    elif p["style"] != "isotropic":
        p.update(grain_params(rng, p["style"]))
    return p


def grain_params(rng: np.random.Generator, style: str, width_deg=(0.3, 1.5)) -> dict:
    """Grains of a ring: eta 0.5-0.75 (many grains: textured, "polycrystalline") or
    0.75-0.95 (few large grains: spotty), grain width in degrees, the grains' own seed."""
    return {
        "grain_eta": float(
            rng.uniform(0.5, 0.75) if style == "polycrystalline" else rng.uniform(0.75, 0.95)
        ),
        "grain_width_deg": float(rng.uniform(*width_deg)),
        "seed": new_seed(rng),
    }


def grain_profile(chi: np.ndarray, p: dict, fast: bool = False) -> np.ndarray:
    """Angular profile of a grainy ring: 10^(5 (1 - eta) + 0.5) grains at random azimuths.

    ``fast``: on the experiment's chi grid by FFT (profiles.grains_on_grid); the first
    version's rings keep the direct sum.
    """
    rng = np.random.default_rng(p["seed"])
    count = round(10 ** (5.0 * (1.0 - p["grain_eta"]) + 0.5))
    centers, weights = rng.uniform(-np.pi, np.pi, count), rng.exponential(1.0, count)
    width = np.radians(p["grain_width_deg"])
    if fast:
        return pf.grains_on_grid(len(chi), centers, weights, width)
    return pf.grains(chi, centers, weights, width)


def ring_terms(exp: Experiment, p: dict) -> list[Term]:
    """A Gaussian ring at q0; anisotropic and grainy ones on their annulus only."""
    if p["q0"] >= 0.99 * q_limit(exp):
        return []  # beyond the Ewald sphere: never scattered
    sigma = sigma_with_resolution(exp, p["q0"], p["dq_rel"] * p["q0"] / FWHM)
    radial = peak_radial(exp, p["q0"], sigma, p["amplitude"])
    key = f"features.main.ring: {p['style']}"
    if p["style"] == "isotropic":
        return [Term(key, "sample", p, radial=radial)]
    if p["style"] == "anisotropic":
        angular = pf.nfold(exp.chi_grid, p["symmetry"], p["eta"], p["chi0"])
    else:
        angular = grain_profile(exp.chi_grid, p)
    return [annulus_term(exp, key, p, radial, angular, p["q0"] - 5 * sigma, p["q0"] + 5 * sigma)]


def halo_params(rng: np.random.Generator, s: float = 1.0) -> dict:
    """q0 0.05-0.8 1/A (x s), FWHM dq/q0 0.3-0.6, Debye-Waller 0.5-4 A (/ s); isotropic,
    anisotropic or speckled."""
    p: dict = {
        "q0": loguniform(rng, 0.05, 0.8) * s,
        "dq_rel": float(rng.uniform(0.3, 0.6)),
        "debye_waller": loguniform(rng, 0.5, 4.0) / s,
        "amplitude": loguniform(rng, 1.0, 1e4),
    }
    p["style"] = ("isotropic", "anisotropic", "speckle")[int(rng.choice(3, p=[0.65, 0.2, 0.15]))]
    if p["style"] == "anisotropic":
        p.update(
            symmetry=int(rng.choice([2, 4, 6])),
            eta=float(rng.uniform(0.3, 0.7)),
            chi0=float(rng.uniform(-np.pi, np.pi)),
        )
    elif p["style"] == "speckle":
        p.update(speckle_size=float(rng.uniform(2.0, 6.0)), seed=new_seed(rng))
    return p


def halo_terms(exp: Experiment, p: dict) -> list[Term]:
    """A halo: broad ring damped at high q; coherent ones carry exponential speckle."""
    sigma = p["dq_rel"] * p["q0"] / FWHM
    q = exp.q_grid
    damping = pf.debye_waller(q, p["debye_waller"]) / pf.debye_waller(
        np.array(p["q0"]), p["debye_waller"]
    )
    radial = p["amplitude"] * exp.intensity_scale * pf.gaussian_peak(q, p["q0"], sigma) * damping
    key = f"features.main.halo: {p['style']}"
    if p["style"] == "isotropic":
        return [Term(key, "sample", p, radial=radial, rule="diffuse")]
    angular = np.ones(CHI_BINS)
    if p["style"] == "anisotropic":
        angular = pf.nfold(exp.chi_grid, p["symmetry"], p["eta"], p["chi0"])
    term = annulus_term(
        exp, key, p, radial, angular, p["q0"] - 4 * sigma, p["q0"] + 4 * sigma, rule="diffuse"
    )
    if p["style"] == "speckle":
        # exponential intensity statistics on cells of the coherence length
        rows, cols = exp.shape
        cell = max(1, round(p["speckle_size"] * exp.scale))
        field = np.random.default_rng(p["seed"]).exponential(
            1.0, ((rows - 1) // cell + 1, (cols - 1) // cell + 1)
        )
        index, values = term.index, term.values
        assert index is not None and values is not None  # an annulus term is on its pixels
        values *= field[(index // cols) // cell, (index % cols) // cell]
    return [term]


# ---- ordered structures ----------------------------------------------------------------
def lattice_params(rng: np.random.Generator, s: float = 1.0) -> dict:
    """BCC, FCC, hexagonal or lamellar; q1 0.015-0.2 1/A (x s); width, disorder, particle radius."""
    p: dict = {
        "lattice": LATTICES[int(rng.choice(4, p=[0.35, 0.35, 0.15, 0.15]))],
        "q1": loguniform(rng, 0.015, 0.2) * s,
    }
    d = 2 * np.pi / p["q1"]
    # strong disorder (Debye-Waller up to d / 4) leaves only the first peak
    p.update(
        dq_rel=loguniform(rng, 0.004, 0.06),
        debye_waller=float(rng.uniform(0.03, 0.25) * d),
        amplitude=loguniform(rng, 1.0, 1e5),
        particle_radius=float(rng.uniform(0.2, 0.35) * d),
    )
    return p


def lattice_peaks(p: dict, count: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Peak positions q (1/A), ratios q/q1 and relative intensities (strongest = 1).

    Intensity = multiplicity x Lorentz q^-2 x Debye-Waller x sphere form factor (cubic
    lattices of particles).
    """
    ratios, mult = reflections(p["lattice"], count)
    qn = p["q1"] * ratios
    weight = mult * qn**-2.0 * pf.debye_waller(qn, p["debye_waller"])
    if p["lattice"] in ("BCC", "FCC"):
        weight = weight * pf.sphere_form_factor(qn, p["particle_radius"])
    return qn, ratios, weight / weight.max()


def lattice_terms(exp: Experiment, p: dict) -> list[Term]:
    """Powder rings of a nanoparticle lattice, one term per peak on the frame."""
    qn, ratios, weight = lattice_peaks(p)
    mult = reflections(p["lattice"], len(qn))[1]
    terms = []
    for n, (q, w) in enumerate(zip(qn, weight)):
        if q >= exp.geometry.q_max * 1.05:
            break
        sigma = sigma_with_resolution(exp, q, p["dq_rel"] * p["q1"] / FWHM)
        peak = {
            "order": n + 1,
            "q": float(q),
            "q_ratio": float(ratios[n]),
            "multiplicity": int(mult[n]),
            "lattice": p,
        }
        terms.append(
            Term(
                f"features.lattice.ring: {p['lattice']}",
                "sample",
                peak,
                radial=peak_radial(exp, q, sigma, p["amplitude"] * w),
            )
        )
    return terms


def mesostructure_params(rng: np.random.Generator, s: float = 1.0) -> dict:
    """2-D hexagonal or square crystal, q1 0.02-0.15 1/A (x s), one to three rotated grains."""
    p: dict = {
        "lattice": ("hexagonal", "square")[int(rng.integers(2))],
        "q1": loguniform(rng, 0.02, 0.15) * s,
        "amplitude": loguniform(rng, 10.0, 1e5),
        "spot_sigma": float(rng.uniform(0.6, 2.0)),
    }
    p["debye_waller"] = float(rng.uniform(0.05, 0.15) * 2 * np.pi / p["q1"])
    grains = int(rng.choice([1, 1, 2, 3]))
    p["grain_angles"] = [float(a) for a in rng.uniform(0, 2 * np.pi, grains)]
    p["grain_weights"] = [1.0] + [float(w) for w in rng.uniform(0.3, 1.0, grains - 1)]
    return p


def mesostructure_terms(exp: Experiment, p: dict) -> list[Term]:
    """Bragg spots of each grain, one term per shell of reciprocal-lattice vectors."""
    g = exp.geometry
    b = np.array([0.5, np.sqrt(3) / 2]) if p["lattice"] == "hexagonal" else np.array([0.0, 1.0])
    hk = np.array(
        [(h, k) for h in range(-8, 9) for k in range(-8, 9) if (h, k) != (0, 0)], dtype=float
    )
    vectors = hk[:, :1] * np.array([1.0, 0.0]) + hk[:, 1:] * b  # in units of q1
    lengths = np.round(np.hypot(vectors[:, 0], vectors[:, 1]), 6)
    sigma = blur_pixels(exp, p["spot_sigma"])
    terms = []
    for angle, weight in zip(p["grain_angles"], p["grain_weights"]):
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        for order, shell in enumerate(np.unique(lengths)[:8]):
            q = shell * p["q1"]
            if q >= g.q_max:
                break
            v = vectors[lengths == shell] @ rot.T
            r = float(g.radius_of_q(q)) / shell
            amp = (
                p["amplitude"]
                * exp.intensity_scale
                * weight
                * shell**-2
                * float(pf.debye_waller(np.array(q), p["debye_waller"]))
            )
            index, values = gaussian_spots(
                exp,
                *exp.detector_xy(v[:, 0] * r, v[:, 1] * r),
                sigma,
                np.full(len(v), amp),
            )
            if len(index):
                terms.append(
                    Term(
                        f"features.mesostructure.structure factor: {p['lattice']}",
                        "sample",
                        {"order": order + 1, "q": float(q), "mesostructure": p},
                        index=index,
                        values=values,
                        unique=False,
                        rule="spots",
                    )
                )
    return terms


# ---- whole-image kinds -----------------------------------------------------------------
def calibrant_params(rng: np.random.Generator) -> dict:
    """Silver behenate ring strength, width and decay of the orders."""
    return {
        "amplitude": loguniform(rng, 30.0, 3e4),
        "dq_rel": float(rng.uniform(0.004, 0.012)),
        "decay": float(rng.uniform(0.8, 2.0)),
    }


def calibrant_terms(exp: Experiment, p: dict) -> list[Term]:
    """Silver behenate: sharp lamellar rings at q = n x 0.1076 1/A, one term per order."""
    terms = []
    for n in range(1, 60):
        q = n * AGBH_Q1
        if q >= exp.geometry.q_max * 1.05:
            break
        sigma = sigma_with_resolution(exp, q, p["dq_rel"] * AGBH_Q1 / FWHM)
        terms.append(
            Term(
                "features.calibrant.ring: AgBH",
                "sample",
                {"order": n, "q": q, "calibrant": p},
                radial=peak_radial(exp, q, sigma, p["amplitude"] * n ** -p["decay"]),
            )
        )
    return terms


def direct_beam_params(rng: np.random.Generator) -> dict:
    """Spot size 1-3 reference pixels, peak 1e4-1e9 counts (often saturating)."""
    return {"sigma": float(rng.uniform(1.0, 3.0)), "peak": loguniform(rng, 1e4, 1e9)}


def direct_beam_terms(exp: Experiment, p: dict) -> list[Term]:
    """The attenuated direct beam with the beamstop moved out: a bright spot."""
    cx, cy = exp.geometry.beam_center
    index, values = gaussian_spots(
        exp,
        np.array([cx]),
        np.array([cy]),
        blur_pixels(exp, p["sigma"]),
        np.array([p["peak"] * exp.intensity_scale]),
    )
    return [
        Term(
            "beam.direct beam", "defect", p, index=index, values=values, unique=False, rule="spots"
        )
    ]


# ---- grazing incidence -----------------------------------------------------------------
def specular_rod_params(rng: np.random.Generator, s: float = 1.0) -> dict:
    """Rod strength, width (reference pixels), decay along alpha_f, specular reflection strength."""
    return {
        "amplitude": loguniform(rng, 10.0, 1e5),
        "sigma": float(rng.uniform(0.7, 1.5)),
        "decay_deg": float(rng.uniform(0.1, 0.5)),
        "reflection": loguniform(rng, 3.0, 30.0),
    }


def specular_rod_terms(exp: Experiment, p: dict) -> list[Term]:
    """The specular rod (qy = 0) above the horizon, specular reflection at alpha_f = alpha_i."""
    g, inc = exp.geometry, exp.incidence
    index, values = gisaxs.rod(
        g, g.beam_center[0], blur_pixels(exp, p["sigma"]), inc, p["decay_deg"]
    )
    spot_row = gisaxs.row_at_exit_angle(g, inc, inc["alpha_i_deg"])
    spot_index, spot_values = gaussian_spots(
        exp,
        np.array([g.beam_center[0]]),
        np.array([spot_row]),
        blur_pixels(exp, 1.5),
        np.array([p["reflection"]]),
    )
    return [
        Term(
            "features.gisaxs.specular rod",
            "sample",
            p,
            index=np.concatenate([index, spot_index]),
            values=p["amplitude"] * exp.intensity_scale * np.concatenate([values, spot_values]),
            unique=False,
        )
    ]


def bragg_rods_params(rng: np.random.Generator, s: float = 1.0) -> dict:
    """Lateral hexagonal or lamellar (grating) order, q1 0.02-0.15 1/A (x s)."""
    return {
        "lattice": ("hexagonal", "lamellar")[int(rng.integers(2))],
        "q1": loguniform(rng, 0.02, 0.15) * s,
        "amplitude": loguniform(rng, 10.0, 1e5),
        "sigma": float(rng.uniform(0.8, 3.0)),
        "decay_deg": float(rng.uniform(0.2, 1.5)),
    }


def bragg_rods_terms(exp: Experiment, p: dict) -> list[Term]:
    """Bragg rods at qy = q1 x ratio on both sides of the beam, weighted multiplicity / qy^2."""
    g, inc = exp.geometry, exp.incidence
    columns, mult = gisaxs.bragg_rod_columns(g, p["q1"], p["lattice"])
    if len(columns) == 0:
        return []
    offsets = np.abs(columns - g.beam_center[0])
    weight = mult / mult[0] * (offsets / offsets[0]) ** -2.0
    pieces = [gisaxs.rod(g, c, blur_pixels(exp, p["sigma"]), inc, p["decay_deg"]) for c in columns]
    index = np.concatenate([i for i, _ in pieces])
    values = np.concatenate([v * w for (_, v), w in zip(pieces, weight)])
    return [
        Term(
            f"features.gisaxs.bragg rods: {p['lattice']}",
            "sample",
            p,
            index=index,
            values=p["amplitude"] * exp.intensity_scale * values,
            unique=False,
        )
    ]


#: Sample terms in drawing order (the order fixes the random stream): name -> (params, build).
SAMPLE_TERMS = {
    "diffuse low-q": (low_q_params, low_q_terms),
    "form factor": (form_factor_params, form_factor_terms),
    "diffuse high-q": (high_q_params, high_q_terms),
    "ring": (ring_params, ring_terms),
    "halo": (halo_params, halo_terms),
    "lattice": (lattice_params, lattice_terms),
    "mesostructure": (mesostructure_params, mesostructure_terms),
}
GISAXS_TERMS = {
    "specular rod": (specular_rod_params, specular_rod_terms),
    "bragg rods": (bragg_rods_params, bragg_rods_terms),
}


def draw_sample_terms(exp: Experiment, rng: np.random.Generator) -> list[Term]:
    """The scattering terms of one sample image, each present with its recipe probability."""
    probability = exp.recipe.terms
    table = {**SAMPLE_TERMS, **(GISAXS_TERMS if exp.gisaxs is not None else {})}
    terms: list[Term] = []
    for name, (draw, build) in table.items():
        if rng.random() >= probability[name]:
            continue
        copies = int(rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1])) if name == "ring" else 1
        for _ in range(copies):
            terms += build(exp, draw(rng, exp.q_scale))
    return terms

"""What the sample scatters: the terms of one image, drawn from its random stream.

Amplitudes are expected counts per *reference* pixel (75 um at 0.594 m); the experiment's
``intensity_scale`` converts them to counts per actual pixel (solid angle), so the
physics in q and the visibility of every term are the same at every frame size.
Each drawing function returns a list of :class:`Term` with hierarchical keys.
"""

from __future__ import annotations

import numpy as np

from scattertag.simulate import gisaxs
from scattertag.simulate import profiles as pf
from scattertag.simulate.experiment import CHI_BINS, Experiment
from scattertag.simulate.lattices import AGBH_Q1, LATTICES, reflections
from scattertag.simulate.terms import Term

#: Instrumental resolution (beam size, pixel): Gaussian sigma in reference pixels.
RESOLUTION_PIXELS = 0.4
#: q at which power laws are normalised (1/A), near the edge of a typical beamstop.
Q_REF = 0.02


def loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A draw uniform in log between lo and hi."""
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


# ---- building blocks -----------------------------------------------------------------
def sigma_with_resolution(exp: Experiment, q0: float, sigma_q: float) -> float:
    """Peak sigma (1/A) broadened in quadrature by the instrumental resolution at q0."""
    g = exp.geometry
    r0 = float(g.radius_of_q(q0))
    dq = float(g.q_of_radius(r0 + RESOLUTION_PIXELS * exp.scale)) - q0
    return float(np.hypot(sigma_q, dq))


def peak_radial(exp: Experiment, q0: float, sigma_q: float, amplitude: float) -> np.ndarray:
    """(n_bins,) Gaussian ring profile, expected counts per pixel."""
    return amplitude * exp.intensity_scale * pf.gaussian_peak(exp.q_grid, q0, sigma_q)


def annulus_term(exp: Experiment, key: str, params: dict, radial: np.ndarray, angular: np.ndarray,
                 q_lo: float, q_hi: float, rule: str = "peak") -> Term:
    """A term radial(q) x angular(chi) evaluated only on the annulus q_lo <= q <= q_hi."""
    g = exp.geometry
    q_top = 0.99 * 4 * np.pi / g.wavelength
    index, rbins = exp.annulus(float(g.radius_of_q(max(q_lo, 0.0))), float(g.radius_of_q(min(q_hi, q_top))))
    rbins = np.minimum(rbins, len(radial) - 1)
    values = radial[rbins] * angular[exp.chibin[index]]
    return Term(key, "sample", params, index=index, values=values, rule=rule)


def gaussian_spots(exp: Experiment, xs: np.ndarray, ys: np.ndarray, sigma: float, amplitudes: np.ndarray):
    """Flat indices and values of Gaussian spots (sigma in pixels) drawn on local patches."""
    rows, cols = exp.shape
    h = int(np.ceil(4 * sigma))
    off = np.arange(-h, h + 1)
    ix = np.rint(xs)[:, None, None].astype(np.int64) + off[None, None, :]
    iy = np.rint(ys)[:, None, None].astype(np.int64) + off[None, :, None]
    ix, iy = np.broadcast_arrays(ix, iy)
    d2 = (ix - xs[:, None, None]) ** 2 + (iy - ys[:, None, None]) ** 2
    values = amplitudes[:, None, None] * np.exp(-0.5 * d2 / sigma**2)
    inside = (ix >= 0) & (ix < cols) & (iy >= 0) & (iy < rows)
    return (iy * cols + ix)[inside], values[inside]


def _normalised_grains(rng: np.random.Generator, grain_eta: float) -> tuple[np.ndarray, dict]:
    """Angular table of a grainy ring: grain_eta > 0.75 spotty (few large grains), else textured."""
    count = int(round(10 ** (5.0 * (1.0 - grain_eta) + 0.5)))
    width = np.radians(rng.uniform(0.3, 1.5))
    centers = rng.uniform(-np.pi, np.pi, count)
    weights = rng.exponential(1.0, count)
    chi = -np.pi + (np.arange(CHI_BINS) + 0.5) * (2 * np.pi / CHI_BINS)
    return pf.grains(chi, centers, weights, width), {"grains": count, "grain_width_deg": float(np.degrees(width))}


# ---- sample terms ----------------------------------------------------------------------
LOW_Q_SHAPES = ("power law", "Ornstein-Zernike", "Debye-Bueche", "Guinier")


def low_q_profile(shape: str, q: np.ndarray, p: dict) -> np.ndarray:
    """Normalised low-q shape: power laws are 1 at Q_REF, the others 1 at q = 0."""
    if shape == "power law":
        return pf.power_law(q, p["exponent"], Q_REF, 0.1 * Q_REF)
    if shape == "Ornstein-Zernike":
        return pf.ornstein_zernike(q, p["length"])
    if shape == "Debye-Bueche":
        return pf.debye_bueche(q, p["length"])
    return pf.guinier(q, p["length"])


def draw_low_q(exp: Experiment, rng: np.random.Generator) -> list[Term]:
    """Diffuse low-q scattering, isotropic or anisotropic (elliptical)."""
    shape = LOW_Q_SHAPES[int(rng.integers(len(LOW_Q_SHAPES)))]
    p: dict = {"shape": shape}
    if shape == "power law":
        p.update(exponent=float(rng.uniform(1.8, 4.5)), amplitude=loguniform(rng, 3.0, 3e5))
    else:
        p.update(length=loguniform(rng, 15.0, 400.0), amplitude=loguniform(rng, 10.0, 3e5))
    anisotropic = bool(rng.random() < 0.35)
    p["anisotropic"] = anisotropic
    key = f"features.main.diffuse low-q: {shape}" + (", anisotropic" if anisotropic else "")
    amp = p["amplitude"] * exp.intensity_scale
    if not anisotropic:
        return [Term(key, "sample", p, radial=amp * low_q_profile(shape, exp.q_grid, p), rule="diffuse")]
    p.update(aspect=loguniform(rng, 1.3, 4.0), angle=float(rng.uniform(0, np.pi)))
    stretch = pf.ellipse_stretch(exp.chi_grid, p["aspect"], p["angle"])
    # the profile is tabulated on a uniform q grid and looked up at q_eff = q g(chi)
    q_eff = exp.geometry.q_map.ravel() * stretch.astype(np.float32)[exp.chibin]
    top = float(q_eff.max()) * 1.0001 + 1e-9
    table = amp * low_q_profile(shape, np.linspace(0.0, top, 8192), p)
    values = table[(q_eff * (8191.0 / top)).astype(np.int32)]
    return [Term(key, "sample", p, values=values, rule="diffuse")]


def draw_form_factor(exp: Experiment, rng: np.random.Generator) -> list[Term]:
    """Polydisperse sphere form factor |F(qR)|^2 (a low-q diffuse term with fringes)."""
    p = {"radius": loguniform(rng, 20.0, 200.0), "polydispersity": float(rng.uniform(0.03, 0.15)),
         "amplitude": loguniform(rng, 10.0, 3e5)}
    nodes, weights = np.polynomial.hermite_e.hermegauss(9)
    profile = sum(w * pf.sphere_form_factor(exp.q_grid, p["radius"] * (1 + p["polydispersity"] * z))
                  for z, w in zip(nodes, weights)) / weights.sum()
    radial = p["amplitude"] * exp.intensity_scale * profile
    return [Term("features.main.diffuse low-q: sphere form factor", "sample", p, radial=radial, rule="diffuse")]


def draw_high_q(exp: Experiment, rng: np.random.Generator) -> list[Term]:
    """Diffuse high-q scattering A (1 - exp(-sigma^2 q^2))."""
    p = {"sigma": loguniform(rng, 1.5, 10.0), "amplitude": loguniform(rng, 1.0, 1e3)}
    radial = p["amplitude"] * exp.intensity_scale * pf.high_q_rise(exp.q_grid, p["sigma"])
    return [Term("features.main.diffuse high-q", "sample", p, radial=radial, rule="diffuse")]


def draw_ring(exp: Experiment, rng: np.random.Generator) -> list[Term]:
    """One ring: isotropic, n-fold anisotropic, textured (polycrystalline) or spotty (large grains)."""
    q0 = loguniform(rng, 0.02, 0.8)
    rel = loguniform(rng, 0.01, 0.025) if rng.random() < 0.5 else loguniform(rng, 0.025, 0.2)
    style = str(rng.choice(["isotropic", "anisotropic", "polycrystalline", "large grains"], p=[0.45, 0.25, 0.18, 0.12]))
    p: dict = {"q0": q0, "dq_rel": rel, "amplitude": loguniform(rng, 0.3, 3e4), "style": style}
    sigma = sigma_with_resolution(exp, q0, rel * q0 / 2.3548)  # dq is the FWHM
    radial = peak_radial(exp, q0, sigma, p["amplitude"])
    key = f"features.main.ring: {style}"
    if style == "isotropic":
        return [Term(key, "sample", p, radial=radial)]
    if style == "anisotropic":
        p.update(symmetry=int(2 * rng.integers(1, 11)), eta=float(rng.uniform(0.4, 0.95)),
                 chi0=float(rng.uniform(-np.pi, np.pi)))
        angular = pf.nfold(exp.chi_grid, p["symmetry"], p["eta"], p["chi0"])
    else:
        grain_eta = float(rng.uniform(0.5, 0.75) if style == "polycrystalline" else rng.uniform(0.75, 0.95))
        angular, grain_params = _normalised_grains(rng, grain_eta)
        p.update(grain_eta=grain_eta, **grain_params)
    return [annulus_term(exp, key, p, radial, angular, q0 - 5 * sigma, q0 + 5 * sigma)]


def draw_halo(exp: Experiment, rng: np.random.Generator) -> list[Term]:
    """A halo: a broad ring (dq/q 0.3-0.6) damped at high q; sometimes anisotropic or speckled."""
    q0 = loguniform(rng, 0.05, 0.8)
    p: dict = {"q0": q0, "dq_rel": float(rng.uniform(0.3, 0.6)), "debye_waller": loguniform(rng, 0.5, 4.0),
               "amplitude": loguniform(rng, 1.0, 1e4)}
    sigma = p["dq_rel"] * q0 / 2.3548
    q = exp.q_grid
    radial = p["amplitude"] * exp.intensity_scale * pf.gaussian_peak(q, q0, sigma) * pf.debye_waller(q, p["debye_waller"]) \
        / pf.debye_waller(np.array(q0), p["debye_waller"])
    style = str(rng.choice(["isotropic", "anisotropic", "speckle"], p=[0.65, 0.2, 0.15]))
    p["style"] = style
    key = f"features.main.halo: {style}"
    if style == "isotropic":
        return [Term(key, "sample", p, radial=radial, rule="diffuse")]
    angular = np.ones(CHI_BINS)
    if style == "anisotropic":
        p.update(symmetry=int(rng.choice([2, 4, 6])), eta=float(rng.uniform(0.3, 0.7)), chi0=float(rng.uniform(-np.pi, np.pi)))
        angular = pf.nfold(exp.chi_grid, p["symmetry"], p["eta"], p["chi0"])
    term = annulus_term(exp, key, p, radial, angular, q0 - 4 * sigma, q0 + 4 * sigma, rule="diffuse")
    if style == "speckle":
        # coherent speckle: exponential intensity statistics on grains ~ the coherence length
        cell = max(1, int(round(rng.uniform(2, 6) * exp.scale)))
        rows, cols = exp.shape
        # its own generator: the field's size depends on the frame, the other draws must not
        field = np.random.default_rng(rng.integers(2**63)).exponential(1.0, ((rows - 1) // cell + 1, (cols - 1) // cell + 1))
        term.values *= field[(term.index // cols) // cell, (term.index % cols) // cell]
        p["speckle_pixels"] = cell
    return [term]


def draw_lattice(exp: Experiment, rng: np.random.Generator) -> list[Term]:
    """Powder rings of a nanoparticle lattice (one term per peak; group 'lattice')."""
    lattice = LATTICES[int(rng.choice(4, p=[0.32, 0.32, 0.18, 0.18]))]
    q1 = loguniform(rng, 0.015, 0.2)
    ratios, mult = reflections(lattice, 16)
    d = 2 * np.pi / q1
    p: dict = {"lattice": lattice, "q1": q1, "dq": q1 * loguniform(rng, 0.004, 0.04),
               "debye_waller": float(rng.uniform(0.03, 0.12) * d), "amplitude": loguniform(rng, 1.0, 1e5)}
    qn = q1 * ratios
    weight = mult * qn**-2.0 * pf.debye_waller(qn, p["debye_waller"])  # multiplicity, Lorentz, disorder
    if lattice in ("BCC", "FCC"):
        p["particle_radius"] = float(rng.uniform(0.2, 0.35) * d)
        weight = weight * pf.sphere_form_factor(qn, p["particle_radius"])
    weight = weight / weight.max()
    terms = []
    for n, (q, w) in enumerate(zip(qn, weight)):
        if q >= exp.geometry.q_max * 1.05:
            break
        sigma = sigma_with_resolution(exp, q, p["dq"])
        peak = {"lattice": lattice, "order": n + 1, "q": float(q), "q_ratio": float(ratios[n]), "multiplicity": int(mult[n])}
        terms.append(Term(f"features.lattice.ring: {lattice}", "sample", peak, radial=peak_radial(exp, q, sigma, p["amplitude"] * w)))
    for t in terms:
        t.params["lattice_params"] = p
    return terms


def draw_mesostructure(exp: Experiment, rng: np.random.Generator) -> list[Term]:
    """Bragg spots of a 2-D single crystal or a few rotated grains; one term per shell."""
    g = exp.geometry
    kind = str(rng.choice(["hexagonal", "square"]))
    q1 = loguniform(rng, 0.02, 0.15)
    grains = int(rng.choice([1, 1, 2, 3]))
    p: dict = {"lattice": kind, "q1": q1, "grains": grains, "amplitude": loguniform(rng, 10.0, 1e5),
               "debye_waller": float(rng.uniform(0.05, 0.15) * 2 * np.pi / q1), "spot_sigma": float(rng.uniform(0.6, 2.0))}
    if kind == "hexagonal":
        a, b = np.array([1.0, 0.0]), np.array([0.5, np.sqrt(3) / 2])
    else:
        a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    hk = np.array([(h, k) for h in range(-12, 13) for k in range(-12, 13) if (h, k) != (0, 0)])
    vectors = hk[:, :1] * a + hk[:, 1:] * b  # in units of q1
    lengths = np.round(np.hypot(vectors[:, 0], vectors[:, 1]), 6)
    shells = np.unique(lengths)
    sigma = p["spot_sigma"] * exp.scale
    terms = []
    for grain in range(grains):
        angle = rng.uniform(0, 2 * np.pi)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        weight = rng.uniform(0.3, 1.0) if grain else 1.0
        for order, shell in enumerate(shells[:8]):
            q = shell * q1
            if q >= g.q_max:
                break
            v = vectors[lengths == shell] @ rot.T
            r = float(g.radius_of_q(q)) / shell
            xs, ys = g.beam_center[0] + v[:, 0] * r, g.beam_center[1] + v[:, 1] * r
            amp = p["amplitude"] * exp.intensity_scale * weight * shell**-2 * pf.debye_waller(np.array(q), p["debye_waller"])
            index, values = gaussian_spots(exp, xs, ys, sigma, np.full(len(xs), amp))
            if len(index):
                terms.append(Term(f"features.mesostructure.structure factor: {kind}", "sample",
                                  {"order": order + 1, "q": float(q), "grain": grain, "lattice_params": p},
                                  index=index, values=values, unique=False, rule="spots"))
    return terms


def draw_calibrant(exp: Experiment, rng: np.random.Generator) -> list[Term]:
    """Silver behenate: sharp lamellar rings at q = n x 0.1076 1/A."""
    p = {"amplitude": loguniform(rng, 30.0, 3e4), "dq_rel": float(rng.uniform(0.004, 0.012)), "decay": float(rng.uniform(0.8, 2.0))}
    terms = []
    for n in range(1, 40):
        q = n * AGBH_Q1
        if q >= exp.geometry.q_max * 1.05:
            break
        sigma = sigma_with_resolution(exp, q, p["dq_rel"] * AGBH_Q1 / 2.3548)
        terms.append(Term("features.calibrant.ring: AgBH", "sample", {"order": n, "q": q, "calibrant": p},
                          radial=peak_radial(exp, q, sigma, p["amplitude"] * n ** -p["decay"])))
    return terms


def draw_direct_beam(exp: Experiment, rng: np.random.Generator) -> list[Term]:
    """The attenuated direct beam (beamstop out): a bright, often saturating spot."""
    cx, cy = exp.geometry.beam_center
    p = {"sigma": float(rng.uniform(1.0, 3.0)), "peak": loguniform(rng, 1e4, 1e9)}
    index, values = gaussian_spots(exp, np.array([cx]), np.array([cy]), p["sigma"] * exp.scale,
                                   np.array([p["peak"] * exp.intensity_scale]))
    return [Term("beam.direct beam", "defect", p, index=index, values=values, unique=False, rule="spots")]


#: Sample-term drawers in the order they are drawn (the order fixes the random stream).
SAMPLE_TERMS = {
    "diffuse low-q": draw_low_q,
    "form factor": draw_form_factor,
    "diffuse high-q": draw_high_q,
    "ring": draw_ring,
    "halo": draw_halo,
    "lattice": draw_lattice,
    "mesostructure": draw_mesostructure,
}


def draw_sample_terms(exp: Experiment, rng: np.random.Generator) -> list[Term]:
    """The scattering terms of one sample image, each present with its recipe probability."""
    probability = exp.recipe.terms
    terms: list[Term] = []
    for name, draw in SAMPLE_TERMS.items():
        present = rng.random() < probability[name]
        if name == "ring" and present:
            for _ in range(int(rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1]))):
                terms += draw(exp, rng)
        elif present:
            terms += draw(exp, rng)
    return terms


def draw_gisaxs_terms(exp: Experiment, rng: np.random.Generator) -> list[Term]:
    """Specular rod (with the specular reflection) and Bragg rods of a film (GISAXS only)."""
    g, inc = exp.geometry, exp.gisaxs
    probability = exp.recipe.terms
    terms = []
    if rng.random() < probability["specular rod"]:
        p = {"amplitude": loguniform(rng, 10.0, 1e5), "sigma": float(rng.uniform(0.7, 1.5)),
             "decay_deg": float(rng.uniform(0.1, 0.5)), "reflection": loguniform(rng, 3.0, 30.0)}
        index, values = gisaxs.rod(g, g.beam_center[0], p["sigma"] * exp.scale, inc, p["decay_deg"])
        spot_index, spot_values = gaussian_spots(exp, np.array([g.beam_center[0]]),
                                                 np.array([gisaxs.row_at_exit_angle(g, inc, inc["alpha_i_deg"])]),
                                                 1.5 * exp.scale, np.array([p["reflection"]]))
        terms.append(Term("features.gisaxs.specular rod", "sample", p, index=np.concatenate([index, spot_index]),
                          values=p["amplitude"] * exp.intensity_scale * np.concatenate([values, spot_values]),
                          unique=False))
    if rng.random() < probability["bragg rods"]:
        lattice = str(rng.choice(["hexagonal", "lamellar"]))
        p = {"lattice": lattice, "q1": loguniform(rng, 0.02, 0.15), "amplitude": loguniform(rng, 10.0, 1e5),
             "sigma": float(rng.uniform(0.8, 3.0)), "decay_deg": float(rng.uniform(0.2, 1.5))}
        columns, mult = gisaxs.bragg_rod_columns(g, p["q1"], lattice)
        weight = mult / mult[0] * (np.abs(columns - g.beam_center[0]) / abs(columns[0] - g.beam_center[0])) ** -2.0
        pieces = [gisaxs.rod(g, c, p["sigma"] * exp.scale, inc, p["decay_deg"]) for c in columns]
        index = np.concatenate([i for i, _ in pieces])
        values = np.concatenate([v * w for (_, v), w in zip(pieces, weight)])
        terms.append(Term(f"features.gisaxs.bragg rods: {lattice}", "sample", p, index=index,
                          values=p["amplitude"] * exp.intensity_scale * values, unique=False))
    return terms

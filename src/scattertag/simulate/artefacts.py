"""What real frames carry besides the sample: air and Kapton-window scattering, fluorescence,
cosmic rays, and very weak or very long exposures.

Each is drawn per image with its recipe probability from the image's own random stream
(``seed_sequence(seed, 1, experiment, image, 2)``), so the first version's draws are
untouched. Air, Kapton and fluorescence are backgrounds (role "background": they count
toward "High background", never toward a sample tag); cosmic rays are detector events;
an exposure factor scales everything the beam makes. Amplitudes are counts per reference
pixel, as in scattering.py; the Kapton peaks sit at their physical q (not scaled with
the experiment's q range).
"""

from __future__ import annotations

import numpy as np

from scattertag.simulate import profiles as pf
from scattertag.simulate.experiment import Experiment
from scattertag.simulate.scattering import loguniform
from scattertag.simulate.terms import Term

#: Kapton (polyimide) window: a peak at q = 0.40 1/A (d = 15.7 A, the chain repeat) and
#: a broad amorphous halo at 1.2 1/A; relative FWHM and relative height.
KAPTON_PEAKS = ((0.40, 0.15, 1.0), (1.2, 0.35, 0.6))


def _scattering_angle(exp: Experiment) -> np.ndarray:
    """(n_bins,) scattering angle 2 theta (rad) of each radial bin."""
    s = np.clip(exp.q_grid * exp.geometry.wavelength / (4 * np.pi), 0.0, 1.0)
    return 2.0 * np.arcsin(s)


def air_terms(exp: Experiment, p: dict) -> list[Term]:
    """Air along the beam path: A / (1 + (q xi)^2)^2, centred on the beam, xi = length / s."""
    radial = p["amplitude"] * exp.intensity_scale * pf.debye_bueche(exp.q_grid, p["length"])
    return [Term("background.air", "background", p, radial=radial, rule="diffuse")]


def kapton_terms(exp: Experiment, p: dict) -> list[Term]:
    """Kapton window scattering: Gaussian peaks at q 0.40 and 1.2 1/A (physical q)."""
    radial = sum(
        height * pf.gaussian_peak(exp.q_grid, q0, width * q0 / 2.3548)
        for q0, width, height in KAPTON_PEAKS
    )
    radial = p["amplitude"] * exp.intensity_scale * np.asarray(radial)
    return [Term("background.kapton", "background", p, radial=radial, rule="diffuse")]


def fluorescence_terms(exp: Experiment, p: dict) -> list[Term]:
    """Isotropic fluorescence, flat per solid angle: level x cos^3(2 theta) per pixel."""
    radial = p["level"] * exp.intensity_scale * np.cos(_scattering_angle(exp)) ** 3
    return [Term("background.fluorescence", "background", p, radial=radial, rule="diffuse")]


def cosmic_terms(exp: Experiment, p: dict) -> list[Term]:
    """Cosmic rays: straight tracks 2-40 pixels long (integrating detectors), else single hits.

    Counts per pixel, not scaled with the pixel area (a muon deposits per pixel crossed).
    """
    rows, cols = exp.shape
    rng = np.random.default_rng(p["seed"])
    index, values = [], []
    for amplitude in p["amplitudes"]:
        length = int(rng.integers(2, 41)) if p["tracks"] else 1
        angle = rng.uniform(0, 2 * np.pi)
        x0, y0 = rng.uniform(0, cols - 1), rng.uniform(0, rows - 1)
        t = np.arange(length)
        xs = np.clip(np.rint(x0 + t * np.cos(angle)), 0, cols - 1).astype(np.int64)
        ys = np.clip(np.rint(y0 + t * np.sin(angle)), 0, rows - 1).astype(np.int64)
        index.append(ys * cols + xs)
        values.append(amplitude * rng.uniform(0.3, 1.0, length))
    return [
        Term(
            f"defects.cosmic rays: {len(p['amplitudes'])}",
            "detector",
            p,
            index=np.concatenate(index),
            values=np.concatenate(values),
            unique=False,
            rule="spots",
        )
    ]


def exposure_params(rng: np.random.Generator) -> dict:
    """Very weak (x 1e-3 - 0.1) or very long (x 10 - 1000) exposure, one in two."""
    if rng.random() < 0.5:
        return {"style": "weak", "factor": loguniform(rng, 1e-3, 0.1)}
    return {"style": "long", "factor": loguniform(rng, 10.0, 1e3)}


def scale_terms(terms: list[Term], factor: float) -> None:
    """Multiply the sample and background terms by an exposure ``factor``, in place."""
    for t in terms:
        if t.role not in ("sample", "background"):
            continue
        if t.radial is not None:
            t.radial = t.radial * factor
        if t.values is not None:
            t.values = t.values * factor


def draw_artefacts(exp: Experiment, rng: np.random.Generator, kind: str) -> tuple[list[Term], dict]:
    """Backgrounds and detector events of one image of ``kind``, and its exposure (or {})."""
    probability = exp.recipe.terms
    terms: list[Term] = []
    lit = kind != "dark"  # no beam, no scattering from air, windows or fluorescence
    if lit and rng.random() < probability["air"]:
        amplitude = loguniform(rng, 0.1, 100.0)
        length = loguniform(rng, 30, 300) / exp.q_scale
        terms += air_terms(exp, {"amplitude": amplitude, "length": length})
    if lit and rng.random() < probability["kapton"]:
        terms += kapton_terms(exp, {"amplitude": loguniform(rng, 0.1, 50.0)})
    if lit and rng.random() < probability["fluorescence"]:
        terms += fluorescence_terms(exp, {"level": loguniform(rng, 0.3, 300.0)})
    if rng.random() < probability["cosmic rays"]:
        n = int(rng.integers(1, 12))
        p = {
            "amplitudes": [loguniform(rng, 50.0, 2e4) for _ in range(n)],
            "tracks": exp.readout is not None,  # integrating detectors record the whole track
            "seed": int(rng.integers(2**62)),
        }
        terms += cosmic_terms(exp, p)
    exposure = exposure_params(rng) if lit and rng.random() < probability["exposure"] else {}
    return terms, exposure

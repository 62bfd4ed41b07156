"""Simulator physics: ring positions, lattice ratios, anisotropy, Poisson counts, GISAXS, masks."""

import numpy as np
import pytest
from scipy.signal import find_peaks

from conftest import make_experiment, ring
from scattertag.simulate import Recipe, draw_experiment
from scattertag.simulate.experiment import COUNT_LIMIT
from scattertag.simulate.image import expose
from scattertag.simulate.lattices import reflections
from scattertag.simulate.scattering import lattice_terms, ring_terms
from scattertag.simulate.terms import Term


def flat_image(exp, terms):
    """(rows, cols) expected counts of sample terms (no noise)."""
    flat = np.zeros(exp.rbin.size)
    for t in terms:
        if t.radial is not None:
            flat += t.radial[exp.rbin]
        t.add_to(flat)
    return flat.reshape(exp.shape)


def radial_average(exp, image, q_edges):
    """Mean of ``image`` in q bins (through the geometry's cached q map)."""
    q = exp.geometry.q_map.ravel()
    idx = np.digitize(q, q_edges) - 1
    ok = (idx >= 0) & (idx < len(q_edges) - 1)
    sums = np.bincount(idx[ok], weights=image.ravel()[ok], minlength=len(q_edges) - 1)
    counts = np.bincount(idx[ok], minlength=len(q_edges) - 1)
    return sums / np.maximum(counts, 1)


@pytest.mark.parametrize("q0", [0.05, 0.12, 0.25])
def test_ring_lands_at_requested_q_in_counts(q0):
    exp = make_experiment(size=256, center=(100.3, 140.7))
    s = expose(exp, ring_terms(exp, ring(q0, amplitude=2000.0)), np.random.default_rng(1))
    edges = np.linspace(0.01, 0.4, 400)
    profile = radial_average(exp, s.counts.astype(float), edges)
    peak_q = 0.5 * (edges[:-1] + edges[1:])[np.argmax(profile)]
    dq_pixel = float(exp.geometry.q_of_radius(1.0))
    assert abs(peak_q - q0) < max(0.01 * q0, dq_pixel)
    assert "Ring" in s.tags


@pytest.mark.parametrize(
    "lattice, squares",
    [
        ("BCC", [2, 4, 6, 8, 10, 12]),
        ("FCC", [3, 4, 8, 11, 12, 16]),
        ("hexagonal", [1, 3, 4, 7, 9, 12]),
        ("lamellar", [1, 4, 9, 16, 25, 36]),
    ],
)
def test_lattice_peak_ratios(lattice, squares):
    ratios, _ = reflections(lattice, 6)
    np.testing.assert_allclose(ratios, np.sqrt(np.array(squares) / squares[0]), rtol=1e-12)


def test_cubic_multiplicities():
    assert reflections("BCC", 6)[1].tolist() == [
        12,
        6,
        24,
        12,
        24,
        8,
    ]  # 110, 200, 211, 220, 310, 222
    assert reflections("FCC", 5)[1].tolist() == [8, 6, 12, 24, 8]  # 111, 200, 220, 311, 222
    assert reflections("hexagonal", 4)[1].tolist() == [6, 6, 6, 12]


@pytest.mark.parametrize("lattice", ["BCC", "FCC", "hexagonal", "lamellar"])
def test_rendered_lattice_peaks_follow_ratios(lattice):
    exp = make_experiment(size=512, center=(20.0, 30.0))
    p = {
        "lattice": lattice,
        "q1": 0.06,
        "dq_rel": 0.004,
        "debye_waller": 0.0,
        "amplitude": 1e3,
        "particle_radius": 1e-3,
    }
    image = flat_image(exp, lattice_terms(exp, p))
    edges = np.linspace(0.02, 0.3, 2000)
    centres = 0.5 * (edges[:-1] + edges[1:])
    profile = radial_average(exp, image, edges)
    peaks, _ = find_peaks(profile, prominence=0.02 * profile.max())
    expected = 0.06 * reflections(lattice, 4)[0]
    np.testing.assert_allclose(centres[peaks][:4], expected, rtol=0.01)


@pytest.mark.parametrize("symmetry, chi0", [(2, 0.3), (6, -1.0), (12, 2.0)])
def test_anisotropic_ring_peaks_at_requested_angles(symmetry, chi0):
    exp = make_experiment(size=256, center=(128.0, 128.0))
    (term,) = ring_terms(
        exp, ring(0.04, style="anisotropic", symmetry=symmetry, eta=0.8, chi0=chi0)
    )
    chi = exp.geometry.chi_map.ravel()[term.index]
    bins = np.digitize(chi, np.linspace(-np.pi, np.pi, 361)) - 1  # 1-degree bins
    profile = np.bincount(bins, weights=term.values, minlength=361)[:360] / np.maximum(
        np.bincount(bins, minlength=361)[:360], 1
    )
    centres = np.radians(np.arange(360) + 0.5) - np.pi
    for m in range(symmetry):
        wanted = chi0 + 2 * np.pi * m / symmetry
        offset = np.angle(np.exp(1j * (centres - wanted)))
        window = np.abs(offset) < np.pi / symmetry  # one period around the wanted peak
        best = offset[window][np.argmax(profile[window])]
        assert abs(best) < np.radians(3.0)
        trough = profile[
            np.argmin(np.abs(np.angle(np.exp(1j * (centres - wanted - np.pi / symmetry)))))
        ]
        assert trough < 0.2 * profile[window].max()  # (1 - eta)^2 / (1 + eta)^2 = 0.012 in theory


def test_poisson_mean_equals_variance_on_flat_field():
    exp = make_experiment(size=256)
    level = 20.0
    flat = Term("background.constant", "background", {}, radial=np.full(len(exp.r_grid), level))
    s = expose(exp, [flat], np.random.default_rng(3), dark=0.0)
    c = s.counts.astype(float)
    assert c.mean() == pytest.approx(level, rel=0.01)
    assert c.var() == pytest.approx(level, rel=0.03)
    assert s.counts.dtype == np.uint32


def test_counts_clip_at_24_bits_and_flag_saturation():
    exp = make_experiment(size=64, center=(32.0, 32.0))
    huge = Term("defects.saturation: spot", "defect", {}, values=np.full(64 * 64, 1e9))
    s = expose(exp, [huge], np.random.default_rng(0))
    assert s.counts.dtype == np.uint32 and int(s.counts.max()) == COUNT_LIMIT == 2**24 - 1
    assert "defects.saturation: clipped" in s.keys


def test_module_gaps_are_masked_and_zero():
    mask = np.ones((128, 128), bool)
    mask[:, 60:64] = False
    exp = make_experiment(size=128, center=(64.0, 64.0), mask=mask)
    flat = Term("background.constant", "background", {}, radial=np.full(len(exp.r_grid), 50.0))
    s = expose(exp, [flat], np.random.default_rng(0))
    assert (s.counts[:, 60:64] == 0).all() and (s.counts[:, :60] > 0).mean() > 0.99
    assert not s.mask[:, 60:64].any()


def test_reference_experiments_have_pilatus_gaps_sometimes():
    recipe = Recipe(size=256, detectors="reference", module_gap_fraction=1.0)
    exp = draw_experiment(recipe, 0, 0)
    bad_columns = (~exp.mask).all(axis=0).sum()
    bad_rows = (~exp.mask).all(axis=1).sum()
    assert bad_columns >= 1 and bad_rows >= 1 and exp.mask.mean() > 0.85


def test_gisaxs_film_shadows_below_horizon():
    exp = make_experiment(
        size=256, center=(128.0, 230.0), gisaxs={"alpha_i_deg": 0.3, "alpha_c_deg": 0.15}
    )
    p = {"shape": "power law", "exponent": 2.0, "amplitude": 1e3, "aspect": 1.0, "angle": 0.0}
    from scattertag.simulate.scattering import low_q_terms

    s = expose(exp, low_q_terms(exp, p), np.random.default_rng(0), dark=0.0, yoneda=2.0)
    horizon = 230.0 - exp.geometry.distance * np.tan(np.radians(0.3)) / exp.geometry.pixel_size
    below = s.counts[int(horizon) + 3 :].astype(float)
    above = s.counts[int(horizon) - 20 : int(horizon) - 3].astype(float)
    assert below.mean() < 0.01 * above.mean()
    assert "Horizon" in s.tags and "Yoneda" in s.tags

"""Beamstop zoo, environment shadows, flat fields, artefacts and ordered samples: their tags."""

import numpy as np
import pytest

from scattertag.simulate import Recipe, draw_experiment, simulate_image
from scattertag.simulate import profiles as pf
from scattertag.simulate.artefacts import air_terms, fluorescence_terms, kapton_terms, scale_terms
from scattertag.simulate.beamstops import draw_beamstop, draw_shadow
from scattertag.simulate.crystals import fibre_terms, powder_terms, single_crystal_terms
from scattertag.simulate.detector import sensitivity_params
from scattertag.simulate.experiment import catalogue_experiment
from scattertag.simulate.image import expose
from scattertag.simulate.scattering import low_q_terms, ring_terms
from scattertag.tags import DEFAULT_VOCABULARY

STRUCTURAL = {"Ring", "Halo", "Structure factor", "BCC", "FCC", "Higher orders", "Many rings"}
STRUCTURAL |= {"Polycrystalline", "Diffuse low-q", "Diffuse high-q"}


def saxs(name="Pilatus 1M", distance=2.0, beam=(0.5, 0.5), size=256):
    """A SAXS experiment on a catalogue detector, no beamstop."""
    recipe = Recipe(size=size, gisaxs_fraction=0.0)
    return catalogue_experiment(recipe, name, distance, 12.0, beam)


def tags(exp, terms, seed=0, **kwargs):
    return set(expose(exp, terms, np.random.default_rng(seed), dark=0.0, **kwargs).tags)


def diffuse(exp, amplitude=1e3):
    p = {"shape": "power law", "exponent": 3.0, "amplitude": amplitude, "aspect": 1.0, "angle": 0}
    return low_q_terms(exp, p)


@pytest.mark.parametrize(
    "kind, tag",
    [("rod", "Linear beamstop"), ("paddle", "Linear beamstop"), ("disk", "Circular Beamstop")],
)
def test_new_beamstops_from_any_direction_are_tagged_by_their_shape(kind, tag):
    angles = []
    for seed in range(6):
        exp = saxs()
        exp.beamstop = draw_beamstop(exp.geometry, kind, np.random.default_rng(seed), exp.scale)
        angles.append(exp.beamstop.params["angle"])
        found = tags(exp, diffuse(exp))
        assert tag in found and len(found & {"Linear beamstop", "Circular Beamstop"}) == 1
    # directions are not limited to the four frame edges
    off_axis = [abs(np.sin(2 * a)) for a in angles]
    assert max(off_axis) > 0.3


def test_semi_transparent_disk_passes_its_fraction():
    exp = saxs()
    rng = next(
        np.random.default_rng(s)
        for s in range(200)
        if draw_beamstop(exp.geometry, "disk", np.random.default_rng(s), 1).params["leak"] > 0.05
    )
    exp.beamstop = draw_beamstop(exp.geometry, "disk", rng, exp.scale)
    leak = exp.beamstop.params["leak"]
    flat = [air_terms(exp, {"amplitude": 1e3, "length": 1e-3})[0]]  # flat at these q
    s = expose(exp, flat, np.random.default_rng(0), dark=0.0)
    core = exp.beamstop.index[exp.beamstop.transmission < leak * 1.01]
    core = core[exp.mask.ravel()[core]]  # not on a module gap
    behind = s.counts.ravel()[core].mean() / (1e3 * exp.intensity_scale)
    assert behind == pytest.approx(leak, rel=0.1)


def test_environment_shadow_hides_but_is_not_a_beamstop():
    exp = saxs(beam=(0.5, 0.5))
    rng = np.random.default_rng(1)
    exp.shadow = draw_shadow(exp.geometry, rng, exp.scale)
    found = tags(exp, diffuse(exp))
    assert not found & {"Linear beamstop", "Circular Beamstop", "Wedge beamstop"}
    shaded = exp.shadow.index[exp.shadow.transmission < 0.5]
    assert len(shaded) > 0 and not exp.observed[shaded].any()


def test_flat_field_and_backgrounds_make_no_structural_tags():
    exp = saxs("Eiger 4M")
    exp.sensitivity = sensitivity_params(np.random.default_rng(0))
    gain = exp.gain_map
    assert gain.mean() == pytest.approx(1.0, abs=0.05) and gain.std() > 0.005
    for level in (5.0, 500.0):
        terms = (
            air_terms(exp, {"amplitude": level, "length": 100.0})
            + kapton_terms(exp, {"amplitude": level})
            + fluorescence_terms(exp, {"level": level})
        )
        assert not tags(exp, terms) & STRUCTURAL


def test_kapton_peak_sits_at_its_physical_q():
    exp = saxs("Pilatus 1M", distance=0.3)
    (term,) = kapton_terms(exp, {"amplitude": 1.0})
    assert exp.q_grid[np.argmax(term.radial)] == pytest.approx(0.40, rel=0.02)


def test_exposure_factor_makes_weak_and_saturated_frames():
    exp = saxs()
    ring = {"q0": 0.08, "dq_rel": 0.02, "amplitude": 300.0, "style": "isotropic"}
    terms = ring_terms(exp, ring)
    assert "Ring" in tags(exp, terms)
    weak = ring_terms(exp, ring)
    scale_terms(weak, 1e-3)
    assert "Weak scattering" in tags(exp, weak)
    strong = ring_terms(exp, ring)
    scale_terms(strong, 1e4)
    s = expose(exp, strong, np.random.default_rng(0), dark=0.0)
    assert "defects.saturation: clipped" in s.keys and int(s.counts.max()) == exp.count_limit


def test_textured_fcc_powder_is_a_polycrystalline_fcc_ring_pattern():
    exp = saxs("Pilatus 1M", distance=0.2)
    p = {
        "lattice": "FCC",
        "q1": 2 * np.pi / 5.411 * np.sqrt(3),  # CeO2 (111)
        "dq_rel": 0.005,
        "debye_waller": 0.05,
        "amplitude": 300.0,
        "particle_radius": 1e-3,
        "style": "polycrystalline",
        "grain_eta": 0.6,
        "grain_width_deg": 0.5,
        "seed": 4,
    }
    found = tags(exp, powder_terms(exp, p))
    assert {"Ring", "FCC", "Polycrystalline", "Higher orders"} <= found and "BCC" not in found


def test_single_crystal_spots_over_a_halo():
    exp = saxs("Pilatus 1M", distance=0.3)
    halo = {"q0": 1.5, "dq_rel": 0.4, "debye_waller": 0.1, "amplitude": 50.0, "style": "isotropic"}
    p = {
        "a_star": 0.4,
        "b_star": 0.5,
        "gamma_deg": 80.0,
        "rotation": 0.3,
        "amplitude": 3e3,
        "spot_sigma": 1.0,
        "debye_waller": 0.2,
        "seed": 1,
        "halo": halo,
    }
    found = tags(exp, single_crystal_terms(exp, p))
    assert {"Structure factor", "Halo"} <= found and "Ring" not in found


def test_fibre_arcs_and_layer_lines():
    exp = saxs("Eiger 1M", distance=1.0)
    p = {
        "phi": 0.4,
        "q_equator": 0.12,
        "c_star": 0.06,
        "arc_deg": 8.0,
        "dq_rel": 0.04,
        "amplitude": 500.0,
        "meridian": 0.5,
        "layer_lines": 3,
        "layer_r": 0.8,
    }
    s = expose(exp, fibre_terms(exp, p), np.random.default_rng(0), dark=0.0)
    assert "Ring" in s.tags and "Higher orders" in s.tags
    assert "features.fibre.ring: equator" in s.keys


def test_grains_on_grid_matches_the_direct_sum():
    n = 2048
    chi = -np.pi + (np.arange(n) + 0.5) * 2 * np.pi / n
    rng = np.random.default_rng(0)
    centers, weights = rng.uniform(-np.pi, np.pi, 300), rng.exponential(1.0, 300)
    exact = pf.grains(chi, centers, weights, np.radians(0.5))
    fast = pf.grains_on_grid(n, centers, weights, np.radians(0.5))
    assert np.abs(fast - exact).max() < 0.03 * exact.max()


def test_default_mix_covers_every_tag_and_the_new_effects():
    recipe = Recipe(size=128)
    keys, found = set(), set()
    for e in range(60):
        exp = draw_experiment(recipe, 2, e)
        for i in range(3):
            s = simulate_image(exp, i)
            keys |= {k.split(":")[0] for k in s.keys} | {f"stop.{exp.beamstop.kind}"}
            keys |= {k for k in ("shadow", "sensitivity") if k in exp.params}
            found |= set(s.tags)
    assert found == set(DEFAULT_VOCABULARY)
    for key in (
        "stop.rod",
        "stop.paddle",
        "stop.disk",
        "shadow",
        "sensitivity",
        "defects.cosmic rays",
        "defects.exposure",
        "features.fibre.ring",
        "features.crystal.structure factor",
        "features.variations.polycrystalline",
    ):
        assert key in keys, key


def test_wide_angles_carry_solid_angle_and_polarisation():
    exp = saxs("Pilatus 1M", distance=0.1, beam=(0.5, 0.5))
    exp.params["polarization"] = 0.95
    flat = air_terms(exp, {"amplitude": 1e4, "length": 1e-4})  # flat in q
    s = expose(exp, flat, np.random.default_rng(0), dark=0.0)
    g = exp.geometry
    cos2 = g.distance / np.hypot(g.r_map * g.pixel_size, g.distance)
    ring = (np.abs(cos2 - 0.8) < 0.01) & s.mask  # 2 theta about 37 degrees
    chi = g.chi_map[ring]
    counts = s.counts[ring].astype(float)
    horizontal = counts[np.abs(np.cos(chi)) > 0.95].mean()
    vertical = counts[np.abs(np.sin(chi)) > 0.95].mean()
    # [1 + cos^2 - p sin^2 cos(2 chi)] / 2 at chi = 0 and 90 degrees, cos(2 theta) = 0.8
    expected = (1 + 0.64 - 0.95 * 0.36) / (1 + 0.64 + 0.95 * 0.36)
    assert horizontal / vertical == pytest.approx(expected, rel=0.03)
    near = s.counts[(cos2 > 0.9995) & s.mask].astype(float).mean()  # about the beam
    # solid angle cos^3(2 theta) times the polarisation at chi = 90 degrees
    assert vertical / near == pytest.approx(0.8**3 * (1 + 0.64 + 0.95 * 0.36) / 2, rel=0.05)

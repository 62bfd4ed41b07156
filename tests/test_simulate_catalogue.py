"""Detector catalogue: shapes, gaps and invalid marking against pyFAI; geometry invariance."""

import numpy as np
import pytest

from scattertag.simulate import Recipe, draw_experiment, simulate_image
from scattertag.simulate.catalogue import CATALOGUE
from scattertag.simulate.experiment import catalogue_experiment
from scattertag.simulate.image import expose
from scattertag.simulate.scattering import halo_terms, ring_terms
from scattertag.simulate.terms import Term

PHYSICS_TAGS = {"Ring", "Halo", "Diffuse low-q", "Diffuse high-q", "Structure factor"}
STRUCTURAL = PHYSICS_TAGS | {"BCC", "FCC", "Higher orders", "Many rings", "Polycrystalline"}


@pytest.mark.parametrize("name", [n for n, m in CATALOGUE.items() if m.pyfai])
def test_catalogue_matches_pyfai(name):
    """Shape, pixel size and gap mask are pyFAI's (its calc_mask: nonzero = masked)."""
    pyFAI = pytest.importorskip("pyFAI")
    model = CATALOGUE[name]
    detector = pyFAI.detector_factory(model.pyfai)
    assert tuple(detector.max_shape) == model.shape
    assert detector.pixel1 == pytest.approx(model.pixel_size) == detector.pixel2
    reference = detector.calc_mask()
    mine = model.native_mask()
    if reference is None:
        assert not mine.any()
    else:
        np.testing.assert_array_equal(mine, reference.astype(bool))


def _frame_of(name, longest=240):
    """A frame with the detector's aspect (longer side ``longest``), the detector filling it."""
    rows, cols = CATALOGUE[name].shape
    f = max(rows, cols) / longest
    return (max(round(rows / f), 16), max(round(cols / f), 16))


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_each_detector_gives_frames_of_its_shape_and_marking(name):
    model = CATALOGUE[name]
    recipe = Recipe(size=_frame_of(name), detectors={name: 1.0}, gisaxs_fraction=0.0)
    exp = draw_experiment(recipe, 3, 0)
    assert exp.params["detector"]["name"] == name and exp.shape == recipe.shape
    s = simulate_image(exp, 0)
    raw = s.raw()
    assert raw.shape == s.counts.shape == recipe.shape and raw.dtype == np.dtype(model.dtype)
    assert s.counts.dtype == np.uint32 and int(s.counts.max()) <= exp.count_limit <= 2**24 - 1
    invalid = ~s.mask
    if model.invalid == "negative":
        assert set(np.unique(raw[invalid])) <= {-1, -2} and (raw[s.mask] >= 0).all()
    elif model.invalid == "all bits":
        assert (raw[invalid] == 2**32 - 1).all() and (raw[s.mask] < 2**32 - 1).all()
    else:
        assert (raw[invalid] == 0).all()
    if model.gap != (0, 0) and min(model.shape) > model.module[0]:
        assert invalid.any(axis=1).sum() > 0  # module gaps show at this size
    if model.active == "circle":
        assert invalid[0, 0] and invalid[-1, -1] and s.mask[exp.shape[0] // 2, exp.shape[1] // 2]


def test_every_detector_fits_tiny_frames_cropping_past_the_largest_pixel():
    for name, model in CATALOGUE.items():
        exp = draw_experiment(Recipe(size=24, detectors={name: 1.0}), 0, 0)
        assert exp.shape == (24, 24) and exp.geometry.pixel_size <= 5e-3 + 1e-12
        fit = exp.params["detector"]
        cropped = max(fit["extent"]) > 24
        assert cropped == (max(model.shape) * model.pixel_size / 24 > 5e-3), name


def test_pilatus_1m_at_native_size_has_pyfai_gaps_and_bad_pixels_marked_minus_two():
    pyFAI = pytest.importorskip("pyFAI")
    recipe = Recipe(size=(1043, 981), detectors={"Pilatus 1M": 1.0}, gisaxs_fraction=0.0)
    exp = next(e for e in (draw_experiment(recipe, 0, i) for i in range(20)) if len(e.bad_index))
    assert exp.geometry.pixel_size == pytest.approx(172e-6)
    gaps = pyFAI.detector_factory("Pilatus1M").calc_mask().astype(bool)
    s = simulate_image(exp, 0)
    raw = s.raw()
    assert (raw[gaps] == -1).all()
    assert (raw.ravel()[exp.bad_index] == -2).all()
    assert ((raw == -2) | (raw == -1)).sum() == (~s.mask).sum()


def _tags_of(exp, terms, seed=0):
    return set(expose(exp, terms, np.random.default_rng(seed), dark=0.0).tags)


def _sample(exp):
    """A ring and a halo given in q, the same for every experiment (no q scaling)."""
    ring = {"q0": 0.08, "dq_rel": 0.02, "amplitude": 300.0, "style": "isotropic"}
    halo = {"q0": 0.15, "dq_rel": 0.4, "debye_waller": 1.0, "amplitude": 200.0}
    return ring_terms(exp, ring) + halo_terms(exp, {**halo, "style": "isotropic"})


@pytest.mark.parametrize(
    "detector_a, distance_a, detector_b, distance_b",
    [("Pilatus 1M", 2.0, "Pilatus 1M", 3.0), ("Pilatus 1M", 2.0, "Eiger 4M", 2.5)],
)
def test_same_sample_at_two_distances_and_detectors_gets_the_same_physics_tags(
    detector_a, distance_a, detector_b, distance_b
):
    recipe = Recipe(size=256, gisaxs_fraction=0.0)
    tags = []
    for name, distance in ((detector_a, distance_a), (detector_b, distance_b)):
        exp = catalogue_experiment(recipe, name, distance, 12.0, (0.5, 0.5))
        q_lo, q_hi = float(exp.geometry.q_of_radius(3.0)), exp.geometry.q_max
        assert q_lo < 0.05 and q_hi > 0.25  # both terms fall on both frames
        tags.append(_tags_of(exp, _sample(exp)) & PHYSICS_TAGS)
    assert tags[0] == tags[1] == {"Ring", "Halo"}


def test_ring_beyond_a_short_saxs_frame_is_not_tagged_but_on_a_waxs_one_it_is():
    recipe = Recipe(size=256, gisaxs_fraction=0.0)
    ring = {"q0": 1.5, "dq_rel": 0.02, "amplitude": 300.0, "style": "isotropic"}
    saxs = catalogue_experiment(recipe, "Pilatus 1M", 5.0, 12.0, (0.5, 0.5))
    waxs = catalogue_experiment(recipe, "Pilatus 1M", 0.15, 12.0, (0.5, 0.5))
    assert "Ring" not in _tags_of(saxs, ring_terms(saxs, ring))
    assert "Ring" in _tags_of(waxs, ring_terms(waxs, ring))


@pytest.mark.parametrize("name", ["Eiger 4M", "Pilatus 2M", "Rayonix MX225 2x2", "GE 41RT"])
def test_zeros_flat_fields_and_masked_gaps_get_no_structural_tag(name):
    recipe = Recipe(size=256, gisaxs_fraction=0.0)
    exp = catalogue_experiment(recipe, name, 1.5, 12.0, (0.4, 0.6))
    exp.readout = {"gain": 2.0, "offset": 100.0, "noise": 5.0} if name[0] in "RG" else None
    assert not _tags_of(exp, []) & STRUCTURAL  # zeros (and for CCDs: offset + read noise)
    flat = Term("background.constant", "background", {}, radial=np.full(len(exp.r_grid), 300.0))
    tags = _tags_of(exp, [flat])
    assert not tags & STRUCTURAL and "Weak scattering" in tags

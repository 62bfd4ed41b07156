"""The shipped tagger on frames with no sample and on one sample seen two ways: no structural
tag on zeros, a blank Eiger frame with its gaps marked or a flat field; the same tags for
one simulated sample at two distances and on two detectors."""

import numpy as np
import pytest

import scattertag
from scattertag.prediction.pipeline import Predictor
from scattertag.simulate import Recipe
from scattertag.simulate.catalogue import CATALOGUE
from scattertag.simulate.experiment import catalogue_experiment
from scattertag.simulate.image import expose
from scattertag.simulate.scattering import halo_terms, ring_terms
from scattertag.tags import STRUCTURAL_TAGS


@pytest.fixture(scope="module")
def shipped():
    return Predictor()


def tags_of(predictor, counts, centre):
    """The shipped tagger's tags of one frame (which must be tagged) as a set."""
    row = scattertag.predict(counts, beam_center=centre, model=predictor)[0]
    assert not row["error"], row["error"]
    return {t for t in row["tags"].split(";") if t}


def blank_eiger():
    """An Eiger 1M frame (1065 x 1030) of zero counts, module gaps 2^32 - 1 as the detector
    writes them."""
    gaps = CATALOGUE["Eiger 1M"].native_mask()
    return np.where(gaps, np.uint32(2**32 - 1), np.uint32(0))


@pytest.mark.parametrize(
    ("name", "counts"),
    [
        ("zeros", np.zeros((512, 512), np.uint32)),
        ("blank Eiger 1M, gaps marked", blank_eiger()),
        ("flat field, 300 counts", np.random.default_rng(0).poisson(300, (512, 512))),
    ],
)
def test_frames_without_a_sample_get_no_structural_tag(shipped, name, counts):
    rows, cols = counts.shape
    tags = tags_of(shipped, counts, ((cols - 1) / 2, (rows - 1) / 2))
    assert not tags & STRUCTURAL_TAGS, (name, tags)


def ring_and_halo(exp):
    """A ring and a halo given in q, the same sample for every experiment."""
    ring = {"q0": 0.08, "dq_rel": 0.02, "amplitude": 300.0, "style": "isotropic"}
    halo = {"q0": 0.15, "dq_rel": 0.4, "debye_waller": 1.0, "amplitude": 200.0}
    return ring_terms(exp, ring) + halo_terms(exp, {**halo, "style": "isotropic"})


#: Measured with the shipped tagger (frame-unit cake views with the texture channel, trained
#: on the catalogue and the reference recipe; calibrated card): probabilities at Pilatus 1M
#: 2.0 m / 3.0 m / Eiger 4M 2.5 m of this test's frames.
SHIPPED_DISAGREES = (
    "shipped tagger: Linear beamstop 0.79 / 0.33 / 0.15 (threshold 0.47) on a frame with no "
    "beamstop; Higher orders 0.89 / 0.59 / 0.48 (0.40) and Structure factor 0.97 / 0.56 / 0.63 "
    "(0.46) are tagged at all three (wrongly: one ring and a halo); Ring, Halo and Strong "
    "scattering agree; needs a model trained on q views (issue 12)"
)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(
            ("Pilatus 1M", 2.0),
            ("Pilatus 1M", 3.0),
            marks=pytest.mark.xfail(strict=True, reason=SHIPPED_DISAGREES),
        ),
        pytest.param(
            ("Pilatus 1M", 2.0),
            ("Eiger 4M", 2.5),
            marks=pytest.mark.xfail(strict=True, reason=SHIPPED_DISAGREES),
        ),
    ],
)
def test_one_sample_at_two_distances_and_on_two_detectors_gets_the_same_tags(
    shipped, first, second
):
    recipe = Recipe(size=512, gisaxs_fraction=0.0)
    seen = []
    for detector, distance in (first, second):
        exp = catalogue_experiment(recipe, detector, distance, 12.0, (0.5, 0.5))
        sample = expose(exp, ring_and_halo(exp), np.random.default_rng(0), dark=0.0)
        assert set(sample.tags) == {"Ring", "Halo", "Strong scattering"}  # the simulator's
        seen.append(tags_of(shipped, sample.raw(), exp.geometry.beam_center))
    assert seen[0] == seen[1]

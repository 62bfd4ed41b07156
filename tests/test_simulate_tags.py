"""Simulator tags: visibility rule, tag coverage of the default recipe, determinism, bad recipes."""

import hashlib
from collections import Counter
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from conftest import make_experiment, ring
from scattertag.simulate import Recipe, draw_experiment, simulate_image
from scattertag.simulate.image import expose
from scattertag.simulate.recipe import DEFAULT_BEAMSTOPS
from scattertag.simulate.scattering import ring_terms
from scattertag.simulate.terms import Term
from scattertag.tags import DEFAULT_VOCABULARY, GISAXS_TAGS

BEAMSTOP_TAGS = {"Linear beamstop", "Circular Beamstop", "Wedge beamstop"}


def background(exp, level):
    return Term("background.constant", "background", {}, radial=np.full(len(exp.r_grid), level))


@pytest.fixture(scope="module")
def default_run():
    """320 default images at 128 x 128: 40 experiments of 8 images."""
    recipe = Recipe(size=128)
    return [
        simulate_image(exp, i)
        for exp in (draw_experiment(recipe, 7, e) for e in range(40))
        for i in range(8)
    ]


def test_every_tag_occurs_in_a_default_run(default_run):
    counts = Counter(t for s in default_run for t in s.tags)
    missing = [t for t in DEFAULT_VOCABULARY if counts[t] == 0]
    assert not missing, f"tags never set: {missing}; counts {dict(counts)}"


def test_tags_are_reduced_from_keys_and_labels_match(default_run):
    for s in default_run[:60]:
        assert s.tags == DEFAULT_VOCABULARY.tags_from_keys(s.keys)
        assert (
            s.labels.dtype == np.uint8
            and s.labels.tolist() == DEFAULT_VOCABULARY.encode(s.tags).tolist()
        )
        assert s.counts.dtype == np.uint32 and s.counts.shape == (128, 128) and s.mask.dtype == bool
        assert not ("Strong scattering" in s.tags and "Weak scattering" in s.tags)


def test_each_visible_term_caused_its_tag(default_run):
    """A sample term's key is among the image's keys exactly when the term was visible."""
    for s in default_run:
        for term in s.params["terms"]:
            if term["role"] == "sample" and term["key"].startswith("features.main."):
                assert (term["key"] in s.keys) == any(
                    t["key"] == term["key"] and t["visibility"].get("visible")
                    for t in s.params["terms"]
                )


def test_zero_amplitude_ring_is_not_tagged():
    exp = make_experiment()
    s = expose(
        exp,
        ring_terms(exp, ring(0.1, amplitude=0.0)) + [background(exp, 5.0)],
        np.random.default_rng(0),
    )
    assert "Ring" not in s.tags


def test_ring_behind_beamstop_is_not_tagged_but_outside_it_is():
    exp = make_experiment(size=256, beamstop="circular", seed=3)
    radius = exp.beamstop.params["radius"]
    hidden_q = float(exp.geometry.q_of_radius(0.4 * radius))
    seen_q = float(exp.geometry.q_of_radius(3.0 * radius))
    for q0, expected in ((hidden_q, False), (seen_q, True)):
        s = expose(
            exp,
            ring_terms(exp, ring(q0, amplitude=500.0)) + [background(exp, 5.0)],
            np.random.default_rng(0),
        )
        assert ("Ring" in s.tags) is expected
        assert "Circular Beamstop" in s.tags


def test_ring_beyond_the_frame_or_lost_in_background_is_not_tagged():
    exp = make_experiment(size=256, center=(128.0, 128.0))
    beyond = exp.geometry.q_max * 1.2
    s = expose(
        exp,
        ring_terms(exp, ring(beyond, amplitude=1e4)) + [background(exp, 5.0)],
        np.random.default_rng(0),
    )
    assert "Ring" not in s.tags
    s = expose(
        exp,
        ring_terms(exp, ring(0.1, amplitude=20.0)) + [background(exp, 1e4)],
        np.random.default_rng(0),
    )
    assert "Ring" not in s.tags
    s = expose(
        exp,
        ring_terms(exp, ring(0.1, amplitude=20.0)) + [background(exp, 1.0)],
        np.random.default_rng(0),
    )
    assert "Ring" in s.tags


def test_beamstop_in_the_dark_is_not_tagged():
    exp = make_experiment(size=256, beamstop="linear")
    s = expose(exp, [], np.random.default_rng(0), kind="dark", dark=0.01)
    assert not BEAMSTOP_TAGS & set(s.tags)
    assert "Weak scattering" in s.tags


@pytest.mark.parametrize("detectors", ["reference", "catalogue"])
def test_beam_off_frame_gives_beam_off_image_and_no_beamstop(detectors):
    placements = {"corner": 0, "center": 0, "edge": 0, "off": 1, "far": 1}
    recipe = Recipe(size=128, detectors=detectors, placements=placements, gisaxs_fraction=0.0)
    for e in range(6):
        exp = draw_experiment(recipe, 1, e)
        assert not exp.geometry.beam_on_frame and exp.beamstop.kind is None
        s = simulate_image(exp, 0)
        assert "Beam Off Image" in s.tags and not BEAMSTOP_TAGS & set(s.tags)


def _fingerprint(job):
    seed, e, i = job
    s = simulate_image(draw_experiment(Recipe(size=96), seed, e), i)
    return job, hashlib.sha256(s.counts.tobytes()).hexdigest(), tuple(s.tags)


def test_images_are_identical_across_worker_counts_and_order():
    jobs = [(5, e, i) for e in range(3) for i in range(3)]
    with ProcessPoolExecutor(1) as pool:
        one = {j: rest for j, *rest in pool.map(_fingerprint, jobs)}
    with ProcessPoolExecutor(2) as pool:
        two = {j: rest for j, *rest in pool.map(_fingerprint, jobs[::-1])}
    here = {j: rest for j, *rest in map(_fingerprint, jobs[4:] + jobs[:4])}
    assert one == two == here
    assert len({v[0] for v in one.values()}) == len(jobs)  # different images


@pytest.mark.parametrize("detectors", ["reference", "catalogue"])
@pytest.mark.parametrize("experiment", [4, 5, 6])
def test_experiment_is_the_same_in_q_at_every_size(detectors, experiment):
    a, b = (
        draw_experiment(Recipe(size=size, detectors=detectors), 11, experiment)
        for size in (256, 512)
    )
    assert a.params["placement"] == b.params["placement"] and a.beamstop.kind == b.beamstop.kind
    name = lambda e: e.params.get("detector", {}).get("name")  # noqa: E731
    assert name(a) == name(b) and a.geometry.distance == b.geometry.distance
    ca, cb = (
        (np.array(a.geometry.beam_center) + 0.5) / 256,
        (np.array(b.geometry.beam_center) + 0.5) / 512,
    )
    # catalogue detectors sit in the frame at a whole-pixel offset: one pixel at 256
    np.testing.assert_allclose(ca, cb, atol=0 if detectors == "reference" else 1.5 / 256)
    assert a.geometry.q_max == pytest.approx(b.geometry.q_max, rel=1e-2)


def test_gisaxs_recipe_uses_gisaxs_tags():
    recipe = Recipe(size=128, gisaxs_fraction=1.0)
    assert all(t in recipe.vocabulary for t in GISAXS_TAGS)
    counts = Counter(
        t
        for e in range(12)
        for i in range(3)
        for t in simulate_image(draw_experiment(recipe, 2, e), i).tags
    )
    assert counts["Horizon"] > 0 and sum(counts[t] for t in GISAXS_TAGS) > counts["Horizon"]
    assert Recipe(size=128).to_dict()["vocabulary"] == list(DEFAULT_VOCABULARY)


def test_recipe_round_trip():
    recipe = Recipe(size=(200, 300), gisaxs_fraction=0.2, terms={"ring": 0.9})
    assert Recipe.from_dict(recipe.to_dict()) == recipe
    assert hash(Recipe.from_dict(recipe.to_dict())) == hash(recipe)
    assert recipe.shape == (200, 300)


def test_non_square_frames_keep_the_longer_side_on_the_reference_area():
    recipe = Recipe(size=(96, 160))
    assert recipe.pixel_size_at_shape == pytest.approx(75e-6 * 1000 / 160)
    exp = draw_experiment(recipe, 0, 1)
    s = simulate_image(exp, 0)
    assert s.counts.shape == s.mask.shape == (96, 160) and s.geometry.shape == (96, 160)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"size": -5}, r"Recipe.size .*\[16, 8192\]"),
        ({"size": (100, "a")}, r"Recipe.size"),
        ({"gisaxs_fraction": 1.5}, r"Recipe.gisaxs_fraction must be in \[0, 1\]"),
        ({"distance": 0.0}, r"Recipe.distance must be in"),
        ({"terms": {"ring": 2.0}}, r"Recipe.terms\['ring'\] must be a probability in \[0, 1\]"),
        ({"terms": {"unicorn": 0.5}}, r"Recipe.terms: unknown entries \['unicorn'\]"),
        (
            {"beamstops": dict.fromkeys(DEFAULT_BEAMSTOPS, 0)},
            r"Recipe.beamstops: .*all be zero",
        ),
        ({"vocabulary": ["Ring", "Halo", "Ring"]}, r"duplicate"),
        ({"detectors": "Pilatus 3M"}, r"Recipe.detectors must be"),
        ({"detectors": {"Pilatus 3M": 1.0}}, r"Recipe.detectors: unknown entries \['Pilatus 3M'\]"),
    ],
)
def test_invalid_recipe_fails_naming_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Recipe(**kwargs)


#: sha256 (first 16 hex digits) of images of the first version's simulator (commit d0d69a6):
#: Recipe.legacy must keep drawing them bit for bit.
LEGACY_IMAGES = {
    (0, 0): "6200992f5c6055bd",
    (1, 2): "6bc886acceec79f2",
    (3, 1): "dbc709e2edb120f3",
    (5, 0): "c659f97df6cc768b",
}


def test_legacy_recipe_reproduces_the_first_version_bit_for_bit():
    recipe = Recipe.legacy(96)
    for (e, i), digest in LEGACY_IMAGES.items():
        s = simulate_image(draw_experiment(recipe, 5, e), i)
        assert hashlib.sha256(s.counts.tobytes()).hexdigest()[:16] == digest, (e, i)

"""The q cake: the same sample at two distances gives the same view; unknown geometry falls
back to frame units; pixel size, distance and energy change a q-view model's tags only."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest

import scattertag
from conftest import BEAM, build_small, frame, tiny_model
from scattertag.data import ShardDataset
from scattertag.data.inspect import inspect_dataset
from scattertag.features.views import ViewMaker, ViewSpec, geometry_withheld
from scattertag.geometry import DetectorValues, Geometry, GeometryOptions
from scattertag.prediction.pipeline import Predictor
from scattertag.simulate import Recipe, draw_experiment, simulate_image
from scattertag.tags import DEFAULT_VOCABULARY

QSPEC = ViewSpec(image_space="qcake", orders=4, zeros=6, fb_size=64, cake_angles=32)


def powder(geometry: Geometry, seed: int) -> np.ndarray:
    """Poisson counts of rings at q = 0.03 and sqrt(3) 0.03 1/A over a flat 20 counts."""
    q = geometry.q_map
    rate = 20 + sum(
        a * np.exp(-0.5 * ((q - q0) / 0.0015) ** 2)
        for a, q0 in ((2000, 0.03), (1000, 0.03 * math.sqrt(3)))
    )
    return np.random.default_rng(seed).poisson(rate)


def overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cells fully covered in both q cakes (valid fraction > 0.9)."""
    return (a[2] > 0.9) & (b[2] > 0.9)


def ring_columns(cake: np.ndarray, columns: np.ndarray) -> list[int]:
    """The two brightest columns of the azimuth-averaged mean channel, among ``columns``."""
    profile = cake[0].mean(0)[columns]
    return sorted(columns[np.argsort(profile)[-2:]].tolist())


def q_column(spec: ViewSpec, q: float) -> int:
    """The q cake column holding ``q`` (1/A)."""
    return int(math.log(q / spec.q_min) / math.log(spec.q_max / spec.q_min) * spec.cake_radii)


def peak_near(cake: np.ndarray, covered: np.ndarray, column: int) -> int:
    """Column of the largest covered-cell mean of channel 0 within 5 columns of ``column``."""
    window = np.arange(column - 5, column + 6)
    sums, counts = (cake[0] * covered).sum(0)[window], covered.sum(0)[window]
    return int(window[np.argmax(np.where(counts > 0, sums / np.maximum(counts, 1), -1))])


def test_same_powder_at_two_distances_gives_the_same_q_cake():
    """At 1.0 and 1.6 m the rings sit in the same q columns (not in the same frame columns)."""
    views = {}
    for distance in (1.0, 1.6):
        g = Geometry((200, 200), (99.6, 100.3), pixel_size=172e-6, distance=distance, energy=12.0)
        counts = powder(g, seed=int(distance * 10))
        frame_spec = dataclasses.replace(QSPEC, image_space="cake")
        views[distance] = (ViewMaker(QSPEC, g)(counts)[0], ViewMaker(frame_spec, g)(counts)[0])
    (qa, fa), (qb, fb) = views[1.0], views[1.6]
    both = overlap(qa, qb)
    columns = np.flatnonzero(both.all(0))
    assert len(columns) > 30  # q 0.005 to about 0.09 1/A seen by both
    assert np.median(np.abs(qa[0] - qb[0])[both]) < 0.01  # log-scaled means; rings ~0.4
    for q0 in (0.03, 0.03 * math.sqrt(3)):  # each ring in its own q column at both distances
        expected = q_column(QSPEC, q0)
        assert abs(peak_near(qa, both, expected) - expected) <= 1
        assert peak_near(qa, both, expected) == peak_near(qb, both, expected)
    assert np.all(qa[4] == 1) and np.all(qb[4] == 1)  # in q
    # in frame units the same rings move by log(1.6) / (log(375) / 256) ~ 20 columns
    cols = np.arange(fa.shape[2])
    shift = np.subtract(ring_columns(fb, cols), ring_columns(fa, cols))
    assert np.all(np.abs(shift - 20.3) <= 2)


def test_same_simulated_sample_at_two_distances():
    """One simulated SAXS sample, its detector 1.3 times farther: nearly the same q cake."""
    exp = draw_experiment(Recipe(size=128), 0, 3)
    cakes = []
    for factor in (1.0, 1.3):
        moved = dataclasses.replace(
            exp, geometry=dataclasses.replace(exp.geometry, distance=exp.geometry.distance * factor)
        )
        s = simulate_image(moved, 1)
        cakes.append(ViewMaker(QSPEC, moved.geometry, moved.mask)(s.counts, s.mask)[0])
    both = overlap(*cakes)
    assert both.sum() > 200
    assert np.median(np.abs(cakes[0][0] - cakes[1][0])[both]) < 0.01


def test_unknown_geometry_is_the_frame_cake_with_a_zero_channel():
    g = Geometry((120, 100), (30.4, 70.2), pixel_size=100e-6, distance=0.3, energy=15.0)
    counts = powder(g, seed=1)
    frame_cake = ViewMaker(dataclasses.replace(QSPEC, image_space="cake"), g)(counts)[0]
    unknown = ViewMaker(QSPEC, g, geometry_known=False)(counts)[0]
    assert unknown.shape == QSPEC.image_shape == (5, 32, 256)
    np.testing.assert_array_equal(unknown[:4], frame_cake)
    assert np.all(unknown[4] == 0)
    known = ViewMaker(QSPEC, g)
    np.testing.assert_array_equal(known(counts, geometry_known=False)[0], unknown)  # per frame
    assert np.all(known(counts)[0][4] == 1)


def test_geometry_withheld_is_a_seeded_fraction():
    q = QSPEC.to_dict()
    draws = [geometry_withheld(q, 0, e, i) for e in range(40) for i in range(50)]
    assert abs(np.mean(draws) - QSPEC.unknown_geometry_fraction) < 0.03
    assert draws == [geometry_withheld(q, 0, e, i) for e in range(40) for i in range(50)]
    cake = dataclasses.replace(QSPEC, image_space="cake")
    assert not any(geometry_withheld(cake.to_dict(), 0, e, 0) for e in range(100))
    assert "q_min" in QSPEC.fields_for("image") and "input_size" not in QSPEC.fields_for("image")
    assert "q_min" not in cake.fields_for("image")
    assert "unknown_geometry_fraction" not in QSPEC.fields_for("joint")


def test_a_qcake_dataset_mixes_q_and_frame_units(tmp_path):
    spec = ViewSpec(
        image_space="qcake", fb_size=32, orders=4, zeros=6, cake_angles=8, cake_radii=16
    )
    build_small(tmp_path / "d", spec=spec)
    flags = [float(ShardDataset(tmp_path / "d", range(10))[i]["image"][4, 0, 0]) for i in range(50)]
    assert set(flags) == {0.0, 1.0} and 0 < flags.count(0.0) < 25
    inspect_dataset(tmp_path / "d", montage=tmp_path / "m.png", per_tag=1)  # draws q cakes
    assert (tmp_path / "m.png").stat().st_size > 0


def test_knows_scale_only_when_all_three_are_given(tmp_path):
    assert not GeometryOptions(beam_center=(1, 2)).knows_scale()
    assert not GeometryOptions(beam_center=(1, 2), pixel_size=1e-4, distance=1.0).knows_scale()
    given = GeometryOptions(beam_center=(1, 2), pixel_size=1e-4, distance=1.0, energy=12.0)
    assert given.knows_scale()
    header = ("header", DetectorValues(energy=12.0))
    assert GeometryOptions(pixel_size=1e-4, distance=1.0).knows_scale(header)
    poni = Geometry((10, 10), (3.0, 4.0), 172e-6, 2.0, 10.0).to_poni(tmp_path / "g.poni")
    assert GeometryOptions(poni=str(poni)).knows_scale()


def probabilities(table) -> np.ndarray:
    return np.array([[row[t] for t in DEFAULT_VOCABULARY.tags] for row in table])


def test_pixel_size_and_distance_change_a_q_model_only(tmp_path):
    """A q-view model's probabilities follow the geometry; a frame-unit model's do not, and
    it says so."""
    q_model = Predictor(tiny_model(tmp_path / "q", image_space="qcake"))
    counts = frame(1)

    def tag(model, **scale):
        table = scattertag.predict(counts, beam_center=BEAM, model=model, workers=0, **scale)
        return probabilities(table)

    near = tag(q_model, pixel_size_um=75, distance_m=0.3, energy_kev=10)
    far = tag(q_model, pixel_size_um=172, distance_m=2.0, energy_kev=10)
    unknown = tag(q_model)
    # an untrained tiny model moves little, but a frame-unit model does not move at all
    assert np.abs(near - far).max() > 1e-5 and np.abs(near - unknown).max() > 1e-5
    np.testing.assert_array_equal(tag(q_model, distance_m=2.0), unknown)  # partial: frame units
    frame_model = Predictor(tiny_model(tmp_path / "f"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        given = tag(frame_model, pixel_size_um=172, distance_m=2.0)
    assert any("frame units" in str(w.message) for w in caught)
    np.testing.assert_array_equal(given, tag(frame_model))
    with pytest.warns(UserWarning, match="pixel_size, distance given"):
        tag(frame_model, pixel_size_um=172, distance_m=2.0)

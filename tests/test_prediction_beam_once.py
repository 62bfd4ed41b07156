"""The image is looked at once per geometry group, never again per frame (prediction.beam)."""

from __future__ import annotations

import numpy as np
import pytest

from scattertag.beam import center as beam_center
from scattertag.geometry import DetectorValues, GeometryOptions
from scattertag.prediction.beam import BeamCentres


def _rings(shape: tuple[int, int], centre: tuple[float, float]) -> np.ndarray:
    """(rows, cols) counts: three Gaussian rings about centre (x, y) on a flat background."""
    yy, xx = np.indices(shape, dtype=np.float64)
    r = np.hypot(xx - centre[0], yy - centre[1])
    ring = sum(np.exp(-0.5 * ((r - r0) / 1.5) ** 2) for r0 in (20.0, 38.0, 55.0))
    return np.random.default_rng(0).poisson(20.0 + 400.0 * ring).astype(np.float64)


@pytest.fixture
def calls(monkeypatch) -> dict[str, int]:
    """Counts of the full estimates and of the glance checks that run (the real ones)."""
    seen = {"estimate": 0, "glance": 0, "valid": 0}
    estimate, glance = beam_center.estimate_beam_center, beam_center.agrees_at_a_glance

    def counted_estimate(*args, **kwargs):
        seen["estimate"] += 1
        return estimate(*args, **kwargs)

    def counted_glance(*args, **kwargs):
        seen["glance"] += 1
        return glance(*args, **kwargs)

    monkeypatch.setattr(beam_center, "estimate_beam_center", counted_estimate)
    monkeypatch.setattr(beam_center, "agrees_at_a_glance", counted_glance)
    return seen


def _valid(seen: dict[str, int], shape: tuple[int, int]):
    def valid() -> np.ndarray:
        seen["valid"] += 1
        return np.ones(shape, dtype=bool)

    return valid


def test_estimated_once_per_file_not_per_frame(calls):
    """Five frames of one file without a centre: one estimate, the same centre on each;
    a second file is a second geometry group: one more."""
    shape = (160, 160)
    frames = [_rings(shape, (83.0, 71.0)) for _ in range(5)]
    centres = BeamCentres()
    placed = [
        centres.resolve(GeometryOptions(), f, None, _valid(calls, shape), "a.h5") for f in frames
    ]
    assert calls["estimate"] == 1 and calls["valid"] == 1
    assert {p.source for p in placed} == {"estimated"}
    assert len({p.geometry.beam_center for p in placed}) == 1
    x, y = placed[0].geometry.beam_center
    assert abs(x - 83.0) < 1.0 and abs(y - 71.0) < 1.0
    centres.resolve(GeometryOptions(), frames[0], None, _valid(calls, shape), "b.h5")
    assert calls["estimate"] == 2


def test_known_geometry_looked_at_once_per_geometry(calls):
    """Frames of many files with a known centre (given or in the header): the image is
    checked once per distinct geometry, never estimated, and costs nothing per frame after."""
    shape = (160, 160)
    frame = _rings(shape, (83.0, 71.0))
    centres = BeamCentres()
    given = GeometryOptions(beam_center=(83.0, 71.0))
    for k in range(6):
        placed = centres.resolve(given, frame, None, _valid(calls, shape), f"f{k}.tif")
        assert placed.source == "given" and placed.warning == ""
    header = DetectorValues((83.0, 71.0))
    for k in range(6):
        placed = centres.resolve(GeometryOptions(), frame, header, _valid(calls, shape), f"h{k}")
        assert placed.source == "header"
    assert calls["estimate"] == 0
    assert calls["glance"] == 1 and calls["valid"] == 1  # both sources give one geometry
    moved = GeometryOptions(beam_center=(90.0, 71.0))
    for k in range(3):
        centres.resolve(moved, frame, None, _valid(calls, shape), f"g{k}.tif")
    assert calls["glance"] == 2 and calls["valid"] == 2


def test_a_settled_setup_frame_that_shows_nothing_takes_its_centre_unseen(calls):
    """A set-up's settled centre offered to its dark frame: taken without a full estimate
    (source series, the unseen note, no vote in its window's series); a frame of the same shape
    whose rings lie about another centre contradicts it and gets its own estimate."""
    from scattertag.prediction.beam import UNSEEN, SeriesCentre

    shape = (160, 160)
    offered = SeriesCentre(83.0, 71.0, "agrees", True, shape, 0.7, unseen="unseen")
    dark = np.random.default_rng(1).poisson(0.2, shape).astype(np.float64)
    centres = BeamCentres()
    placed = centres.resolve(
        GeometryOptions(), dark, None, _valid(calls, shape), "d", None, offered
    )
    assert calls["estimate"] == 0
    assert placed.source == "series" and placed.warning == "unseen"
    assert placed.estimated is not None and placed.estimated.estimate.method == UNSEEN
    assert not placed.estimated.estimate.found  # no vote in its window's series
    assert placed.geometry.beam_center == (83.0, 71.0)
    other = _rings(shape, (50.0, 100.0))
    placed = centres.resolve(
        GeometryOptions(), other, None, _valid(calls, shape), "o", None, offered
    )
    assert calls["estimate"] == 1 and placed.source == "estimated"
    x, y = placed.geometry.beam_center
    assert abs(x - 50.0) < 1.0 and abs(y - 100.0) < 1.0

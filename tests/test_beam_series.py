"""The frames of one set-up settled together (scattertag.beam.series): the pose of a cone
fit refits short arcs, agreeing found centres are adopted by frames not found, and
disagreeing ones are never pooled."""

import math

import numpy as np
import pytest

from scattertag.beam import center as bc
from scattertag.beam.series import settle
from test_beam_pose import BEAM, SHAPE, TOLERANCE, TWO_THETA, rings


def estimate(x: float, y: float, confidence: float, method: str = "symmetry"):
    """A hand-made estimate on the frame SHAPE."""
    on = -0.5 <= x < SHAPE[1] - 0.5 and -0.5 <= y < SHAPE[0] - 0.5
    return bc.BeamCenterEstimate(x, y, confidence, method, on, 0.5)


@pytest.fixture(scope="module")
def tilted_series() -> list[bc.BeamCenterEstimate]:
    """A calibrant, a frame of two broad arcs and a halo, of the tilted strip's set-up."""
    halo = 20.0 + 400.0 * np.exp(-0.5 * ((TWO_THETA - 0.3) / 0.08) ** 2)
    halo_counts = np.random.default_rng(5).poisson(halo).astype(float)
    frames = [rings(np.linspace(0.12, 0.55, 9), 0.003, 0), rings((0.25, 0.4), 0.006, 1)]
    return [bc.estimate_beam_center(f) for f in [*frames, halo_counts]]


def test_a_calibrant_settles_its_series(tilted_series):
    """The short arcs are refitted with the calibrant's pose; the halo, not found alone,
    adopts the median of the two found centres; both name where they came from."""
    calibrant, _, halo = tilted_series
    assert calibrant.method == "cone" and not halo.found
    settled = settle(tilted_series, SHAPE)
    assert [s.how for s in settled] == ["own", "pose", "series"]
    assert settled[0].estimate == calibrant
    assert settled[1].origin == (0,) and settled[1].estimate.method == "pose"
    assert settled[2].origin == (0, 1) and settled[2].estimate.method == "series"
    for s in settled:
        assert s.estimate.found
        assert math.hypot(s.estimate.x - BEAM[0], s.estimate.y - BEAM[1]) < TOLERANCE


def test_without_a_calibrant_nothing_is_pooled(tilted_series):
    """The short arcs alone (not found) and the halo: no pose, under two found centres."""
    settled = settle(tilted_series[1:], SHAPE)
    assert [s.how for s in settled] == ["own", "own"]


def test_agreeing_centres_are_adopted():
    """Two found centres 1 px apart on the frame: a frame not found gets their median, at
    the lower of their confidences; the found frames keep their own."""
    series = [estimate(100.0, 50.0, 0.9), estimate(101.0, 50.0, 0.7), estimate(300.0, 20.0, 0.1)]
    settled = settle(series, SHAPE)
    assert [s.how for s in settled] == ["own", "own", "series"]
    adopted = settled[2].estimate
    assert (adopted.x, adopted.y, adopted.confidence) == (100.5, 50.0, 0.7)
    assert adopted.on_frame and adopted.found


@pytest.mark.parametrize(
    "found",
    [
        [(100.0, 50.0), (105.0, 50.0)],  # on the frame 5 px apart: two set-ups
        [(100.0, 50.0), (101.0, 50.0), (140.0, 50.0)],  # a third set-up among them
        [(100.0, 50.0)],  # one found frame could be a set-up of its own
    ],
)
def test_disagreeing_or_lone_centres_are_never_pooled(found):
    """Frames not found stay not found (their own estimate) unless every found centre
    agrees, and at least two do."""
    series = [estimate(x, y, 0.7) for x, y in found] + [estimate(300.0, 20.0, 0.1)]
    settled = settle(series, SHAPE)
    assert all(s.how == "own" for s in settled)
    assert [s.estimate for s in settled] == series


def test_off_the_frame_the_tolerance_is_a_share_of_the_diagonal():
    """Off the frame found centres 8 px apart agree (2 % of the 525 px diagonal is
    10.5 px); 25 px apart they do not."""
    near = [estimate(660.0, 105.0, 0.7), estimate(668.0, 105.0, 0.7), estimate(600, 100, 0.1)]
    assert settle(near, SHAPE)[2].how == "series"
    far = [estimate(660.0, 105.0, 0.7), estimate(685.0, 105.0, 0.7), estimate(600, 100, 0.1)]
    assert settle(far, SHAPE)[2].how == "own"

"""Beam centre from a small, sharp feature about it at full resolution (beam/compact.py)."""

import math

import numpy as np

from scattertag.beam import center as bc
from scattertag.beam import compact
from scattertag.beam.candidates import candidates
from scattertag.beam.fallbacks import compact_candidate, compact_starts
from scattertag.beam.pyramid import dark_floor, pyramid, valid_counts
from scattertag.geometry import Geometry
from scattertag.simulate import beamstops

BEAM = (104.3, 117.6)
SHAPE = (256, 256)


def wedge(shape: tuple[int, int], beam: tuple[float, float]) -> np.ndarray:
    """(rows, cols) transmission of the simulator's wedge stop (half-angle 6 degrees, apex
    6 px behind the beam, opening to the left, blur 1 px, leak 1e-4)."""
    p = {"kind": "wedge", "angle": math.pi, "blur": 1.0, "leak": 1e-4}
    p |= {"half_angle": math.radians(6.0), "apex_offset": 6.0}
    return beamstops._shade(Geometry(shape, beam), "wedge", p, 0.256).transmission_map(shape)


def ring_at_tip(seed: int = 0, ring: float = 3000.0) -> np.ndarray:
    """A 256 x 256 frame: a flat background of 400 counts with a 10 % ramp, a thin ring of
    radius 7 px (sigma 0.8 px, ``ring`` counts high) about BEAM, behind a wedge stop whose
    tip lies at the beam; Poisson."""
    rows, cols = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    r = np.hypot(cols - BEAM[0], rows - BEAM[1])
    lam = 400.0 * (1.0 + 0.1 * cols / SHAPE[1]) + ring * np.exp(-0.5 * ((r - 7.0) / 0.8) ** 2)
    return np.random.default_rng(seed).poisson(lam * wedge(SHAPE, BEAM))


def test_small_ring_at_a_wedge_tip_is_found_at_its_centre():
    counts = ring_at_tip()
    ok, zeroed = valid_counts(counts, None)
    ring = pyramid(counts, ok, zeroed)[2]
    floor = dark_floor(np.expm1(ring.g[ring.ok]))
    feats = compact.find(counts, ok, ring.g, ring.lit, ring.b, floor)
    best = min(feats, key=lambda f: math.hypot(f.x - BEAM[0], f.y - BEAM[1]))
    assert math.hypot(best.x - BEAM[0], best.y - BEAM[1]) < 0.5
    assert best.cover >= 0.8 and best.rho >= 0.8 and 5.0 <= best.radius <= 8.0
    est = bc.estimate_beam_center(counts)
    assert math.hypot(est.x - BEAM[0], est.y - BEAM[1]) < 2.0
    assert est.confidence >= bc.CONFIDENCE_THRESHOLD
    # asked on a frame the other estimators leave not found, the ring is found
    levels = pyramid(counts, ok, zeroed)
    cands = candidates(counts, ok, None, levels)
    cand, conf = compact_candidate(counts, ok, levels, cands, None, 0.25)
    assert cand is not None and cand.method == "compact"
    assert math.hypot(cand.x - BEAM[0], cand.y - BEAM[1]) < 0.5
    assert conf >= bc.CONFIDENCE_THRESHOLD


def test_without_the_ring_nothing_compact_is_found():
    est = bc.estimate_beam_center(ring_at_tip(ring=0.0))
    assert est.method != "compact"
    assert est.confidence < bc.CONFIDENCE_THRESHOLD


def test_a_hot_pixel_is_no_feature():
    counts = np.random.default_rng(1).poisson(50.0, SHAPE)
    counts[40, 200] = 10**5
    ok, zeroed = valid_counts(counts, None)
    ring = pyramid(counts, ok, zeroed)[2]
    floor = dark_floor(np.expm1(ring.g[ring.ok]))
    for f in compact.find(counts, ok, ring.g, ring.lit, ring.b, floor):
        assert f.size < 8 or f.snr < 6.0
        assert compact.confidence(f, 1.0, 1.0) == 0.0
    assert bc.estimate_beam_center(counts).confidence < bc.CONFIDENCE_THRESHOLD


def test_a_saturated_defect_away_from_the_rings_is_not_the_beam():
    """Rings about the beam and a saturated 5 x 5 defect 90 px away: the defect is a round
    bright spot, but the frame is not isotropic about it, so it is never found."""
    rows, cols = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    r = np.hypot(cols - BEAM[0], rows - BEAM[1])
    lam = 50.0 + 2e3 / (1.0 + (r / 20.0) ** 2) + 300.0 * np.exp(-0.5 * ((r - 60.0) / 2.0) ** 2)
    counts = np.random.default_rng(2).poisson(lam).astype(np.uint32)
    counts[185:190, 160:165] = 2**20
    est = bc.estimate_beam_center(counts)
    assert math.hypot(est.x - BEAM[0], est.y - BEAM[1]) < 2.0
    ok, zeroed = valid_counts(counts, None)
    levels = pyramid(counts, ok, zeroed)
    cands = candidates(counts, ok, None, levels)
    ring = levels[2]
    floor = dark_floor(np.expm1(ring.g[ring.ok]))
    feats = compact.find(counts, ok, ring.g, ring.lit, ring.b, floor)
    spot = [f for f in feats if math.hypot(f.x - 162.0, f.y - 187.0) < 1.0]
    assert spot and spot[0].rho >= 0.8 and spot[0].snr >= 6.0  # seen, round and bright
    best, conf = compact_candidate(counts, ok, levels, cands, None, 0.25)
    assert best is None and conf == 0.25  # asked on a frame not found, it stays not found


def test_compact_starts_are_found_once_a_frame(monkeypatch):
    """The give-up test of predict's estimate and the compact fallback read the same starts
    (the saturated cores and the ring level's seeds), found once a frame (kept by the ring
    level); the features found from them are those found from scratch."""
    counts = ring_at_tip()
    ok, zeroed = valid_counts(counts, None)
    levels = pyramid(counts, ok, zeroed)
    ring = levels[2]
    floor = dark_floor(np.expm1(ring.g[ring.ok]))
    fresh = compact.find(counts, ok, ring.g, ring.lit, ring.b, floor)
    calls = []
    starts = compact.starts
    monkeypatch.setattr(compact, "starts", lambda *a: calls.append(1) or starts(*a))
    assert compact_starts(counts, ok, ring)[1]  # the give-up test's question: any?
    cands = candidates(counts, ok, None, levels)
    cand, _ = compact_candidate(counts, ok, levels, cands, None, 0.25)
    assert len(calls) == 1
    assert (
        compact.find(counts, ok, ring.g, ring.lit, ring.b, floor, compact_starts(counts, ok, ring))
        == fresh
    )
    assert cand is not None and (cand.x, cand.y) in {(f.x, f.y) for f in fresh}

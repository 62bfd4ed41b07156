"""A bar's round end fitted to the counts (scattertag.beam.outline): thin, blurred rods."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from scattertag.beam import estimate_beam_center, outline

SHAPE = (400, 400)
BEAM = (213.3, 187.6)


def _frame(
    kind: str, seed: int, light: float = 200.0, half: float = 2.0, blur: float = 4.0
) -> np.ndarray:
    """An integrating detector's frame (offset 1000, read noise 10) under a flat light of
    ``light`` counts with a sloping ramp, shaded by a stop held from the right edge: a
    ``bar`` of half-width ``half`` ending in a half disk about BEAM, a ``wedge`` whose
    point lies 30 px before it, or a ``paddle`` (a box of 3 half-widths about BEAM on a
    thin arm); edges blurred over ``blur`` px (a thin rod's two edges blur into one)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: SHAPE[0], : SHAPE[1]].astype(np.float64)
    dx, dy = x - BEAM[0], y - BEAM[1]
    angle = math.radians(8.0)  # the stop's axis, from the beam toward the right edge
    along = dx * math.cos(angle) + dy * math.sin(angle)
    across = np.abs(dy * math.cos(angle) - dx * math.sin(angle))
    if kind == "bar":
        d = np.where(along >= 0, across - half, np.hypot(dx, dy) - half)
    elif kind == "wedge":
        a = along + 30.0
        d = np.where(a >= 0, across - a * math.tan(math.radians(6.0)), np.hypot(a, across))
    else:
        box = np.maximum(np.abs(along - 10.0) - 30.0, across - 3 * half)
        d = np.minimum(box, np.where(along >= 0, across - 1.0, np.hypot(dx, dy) - 1.0))
    shade = 0.5 * (1.0 + np.tanh(d / blur))
    lit = light * (1.0 + 0.3 * x / SHAPE[1]) * shade
    return (1000.0 + lit + rng.normal(0.0, 10.0, SHAPE)).round().astype(np.int32)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_thin_blurred_rod_is_found_at_its_round_end(seed):
    est = estimate_beam_center(_frame("bar", seed))
    assert est.method == "outline" and est.found
    assert math.hypot(est.x - BEAM[0], est.y - BEAM[1]) < 1.0


@pytest.mark.parametrize("seed", [0, 1])
def test_a_rod_too_thin_to_show_its_round_end_is_found_at_its_end(seed):
    """A rod of half-width 0.8 px: its round end and a straight one differ by under a
    pixel, so no fit can prefer the round one (the chi^2 over a straight end stays under
    CHI_ROUND); both put the beam at its end, and the fit is kept there."""
    counts = _frame("bar", seed, half=0.8, blur=0.5)
    est = estimate_beam_center(counts)
    assert est.method == "outline" and est.found
    assert math.hypot(est.x - BEAM[0], est.y - BEAM[1]) < 0.5


def test_a_thin_rod_cut_by_a_mask_or_the_border_ends_at_no_beam():
    """The same rod with its round end under a mask: it seems to end at the mask's edge and
    at the frame's border, where no light is seen ahead of it (AHEAD): neither is kept."""
    valid = np.ones(SHAPE, bool)
    valid[:, : int(BEAM[0]) + 20] = False
    est = estimate_beam_center(_frame("bar", 0, half=0.8, blur=0.5), valid)
    assert est.method != "outline" and not est.found


def test_an_end_is_unresolved_when_its_corners_cover_under_a_block():
    """A fit that pins the beam but for its end's shape (chi^2 over a straight end 0)."""
    tip = outline.OutlineTip(
        x=0.0, y=0.0, angle=0.0, half_width=1.4, taper=0.0, taper_sigma=0.0, blur=1.0,
        sigma=0.1, shadow=1e3, round=0.0, contrast=10.0, misfit=1.0, block=1,
    )  # fmt: skip
    assert outline.unresolved(tip) and outline.pins(tip, 1.4)  # 0.43 x 1.4^2 = 0.84 px^2
    assert not outline.unresolved(replace(tip, half_width=1.6))  # 1.10 px^2
    assert outline.unresolved(replace(tip, half_width=2.5, block=2))  # 2.7 of 4 px^2
    assert not outline.pins(replace(tip, half_width=5.0, block=1), 5.0)  # resolved, square


@pytest.mark.parametrize("kind", ["wedge", "paddle"])
def test_a_wedge_point_or_a_paddle_box_pins_no_beam(kind):
    est = estimate_beam_center(_frame(kind, 0))
    assert est.method != "outline" and not est.found


def test_the_fit_reads_the_end_and_width_of_a_bar_from_a_rough_start():
    counts = _frame("bar", 2, half=5.0, blur=2.0)
    ok = np.ones(SHAPE, bool)
    start = (BEAM[0] + 4.0, BEAM[1] - 3.0)
    tip = outline.fit_tip(counts, ok, start, math.radians(14.0), 7.0)
    assert tip is not None and outline.pins(tip, 7.0)
    assert math.hypot(tip.x - BEAM[0], tip.y - BEAM[1]) < 0.5
    assert abs(tip.half_width - 5.0) < 0.3 and abs(tip.taper) < 0.01


def test_a_start_on_no_shadow_is_not_fitted(monkeypatch):
    """A start in the light (no darker outline about it) costs one model evaluation, not a
    fit: fit_tip returns None without running the least squares."""
    counts = _frame("bar", 3, half=5.0, blur=2.0)
    ok = np.ones(SHAPE, bool)
    calls = []
    solve = outline._solve
    monkeypatch.setattr(outline, "_solve", lambda *a: calls.append(1) or solve(*a))
    assert outline.fit_tip(counts, ok, (BEAM[0] - 120.0, BEAM[1] + 100.0), 0.3, 5.0) is None
    assert not calls
    tip = outline.fit_tip(counts, ok, (BEAM[0] + 4.0, BEAM[1] - 3.0), math.radians(14.0), 7.0)
    assert tip is not None and calls


def test_a_start_where_the_window_shows_no_end_is_not_fitted(monkeypatch):
    """A start on the bar 60 px behind its end (the window shows the bar running on through
    it, no end) costs two model evaluations, not a fit; 5 px off the end it is fitted."""
    counts = _frame("bar", 3, half=5.0, blur=2.0)
    ok = np.ones(SHAPE, bool)
    calls = []
    solve = outline._solve
    monkeypatch.setattr(outline, "_solve", lambda *a: calls.append(1) or solve(*a))
    a = math.radians(8.0)
    inside = (BEAM[0] + 60.0 * math.cos(a), BEAM[1] + 60.0 * math.sin(a))
    assert outline.fit_tip(counts, ok, inside, a, 5.0) is None
    assert not calls
    tip = outline.fit_tip(counts, ok, (BEAM[0] + 4.0, BEAM[1] - 3.0), a, 5.0)
    assert tip is not None and calls and outline.pins(tip, 5.0)


def _rings_and_bar(seed: int, offset: tuple[float, float]) -> np.ndarray:
    """Photon counts: three rings about BEAM + ``offset`` (arcs a tilt or texture moved)
    over a flat light, shaded by a bar (half-width 5 px, blur 1.5) ending in a half disk
    about BEAM (the stop is centred on the beam)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: SHAPE[0], : SHAPE[1]].astype(np.float64)
    r = np.hypot(x - BEAM[0] - offset[0], y - BEAM[1] - offset[1])
    light = 50.0 + sum(300.0 * np.exp(-0.5 * ((r - k) / 2.0) ** 2) for k in (60.0, 100.0, 140.0))
    dx, dy = x - BEAM[0], y - BEAM[1]
    a = math.radians(8.0)
    along = dx * math.cos(a) + dy * math.sin(a)
    across = np.abs(dy * math.cos(a) - dx * math.sin(a))
    d = np.where(along >= 0, across - 5.0, np.hypot(dx, dy) - 5.0)
    shade = 1e-3 + (1.0 - 1e-3) * 0.5 * (1.0 + np.tanh(d / 1.5))
    return rng.poisson(light * shade).astype(np.int32)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_ring_fit_off_a_bars_end_gives_way_to_the_end(seed):
    """Rings 3.9 px off the beam are fitted there (found at 0.7); the bar's end, fitted to
    the counts, pins the beam and the estimate moves to it."""
    est = estimate_beam_center(_rings_and_bar(seed, (3.0, -2.5)))
    assert est.method == "outline" and est.found
    assert math.hypot(est.x - BEAM[0], est.y - BEAM[1]) < 0.5


def test_a_ring_fit_that_agrees_with_the_bars_end_stays():
    est = estimate_beam_center(_rings_and_bar(0, (0.0, 0.0)))
    assert est.method == "rings" and math.hypot(est.x - BEAM[0], est.y - BEAM[1]) < 0.5

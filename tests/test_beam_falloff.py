"""The off-frame falloff fit: a radial profile times the polarisation factor, plus an offset."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from scattertag.beam import center as bc
from scattertag.beam import falloff as bf
from scattertag.beam.candidates import Candidate
from scattertag.beam.fallbacks import falloff_candidate
from scattertag.beam.pyramid import Level, pyramid


def waxs_frame(
    n: int = 400, cx: float = -60.0, cy: float = 300.0, d: float = 90.0, p: float = 0.95
) -> np.ndarray:
    """(n, n) Poisson counts of a flat background seen by a flat detector at d px from a beam
    at (cx, cy), off the frame: solid angle cos^3(2 theta) times the polarisation factor."""
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    dx, dy = xx - cx, yy - cy
    c2 = d * d / (dx * dx + dy * dy + d * d)
    lam = 400.0 * c2**1.5 * bf.polarisation(dx, dy, d, p)
    return np.random.default_rng(0).poisson(lam).astype(np.float64)


def flat_background(n: int, cx: float, cy: float, d: float, p: float, level: float) -> np.ndarray:
    """(n, n) Poisson counts of a flat background of ``level`` counts at the beam seen by a
    flat detector at d px from a beam at (cx, cy): cos^3(2 theta) times the polarisation."""
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    dx, dy = xx - cx, yy - cy
    c2 = d * d / (dx * dx + dy * dy + d * d)
    lam = level * c2**1.5 * bf.polarisation(dx, dy, d, p)
    return np.random.default_rng(0).poisson(lam).astype(np.float64)


def lobe_frame(n: int = 400, cx: float = 150.0, cy: float = -40.0, d: float = 120.0) -> np.ndarray:
    """(n, n) Poisson counts of diffuse high-q scattering, 400 (1 - exp(-r^2 / 60^2)), seen
    by a flat detector at d px from a beam at (cx, cy) above the frame, p = 0.95, over 5
    counts of background: the polarisation factor makes the brightest part a lobe straight
    below the beam whose contours close on the frame."""
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    dx, dy = xx - cx, yy - cy
    r2 = dx * dx + dy * dy
    c2 = d * d / (r2 + d * d)
    rise = 400.0 * (1.0 - np.exp(-r2 / 60.0**2))
    lam = rise * c2**1.5 * bf.polarisation(dx, dy, d, 0.95) + 5.0
    return np.random.default_rng(0).poisson(lam).astype(np.float64)


def fine_level(counts: np.ndarray) -> Level:
    """The estimator's fine level of a frame."""
    return pyramid(counts, bc.valid_pixels(counts))[1]


def test_polarisation_factor_matches_its_formula() -> None:
    dx, dy = np.array([3.0, 0.0]), np.array([0.0, 4.0])
    c2 = 25.0 / (np.array([9.0, 16.0]) + 25.0)
    want = 0.5 * (1 + c2 - 0.9 * (1 - c2) * np.array([1.0, -1.0]))
    assert np.allclose(bf.polarisation(dx, dy, 5.0, 0.9), want)


def test_the_model_explains_the_falloff_only_with_polarisation() -> None:
    level = fine_level(waxs_frame())
    s = bf.samples(level.g, level.lit)
    cx, cy = level.from_frame(-60.0, 300.0)
    with_pol = bf.r2_of(s, cx, cy, 90.0 / level.b, 0.95)
    circles = bf.r2_of(s, cx, cy, None, 0.0)
    assert with_pol > 0.95  # Poisson noise of the faint far side
    assert (1 - circles) > 5 * (1 - with_pol)


def test_fit_from_a_centre_slid_along_the_radius_finds_the_beam() -> None:
    counts = waxs_frame()
    level = fine_level(counts)
    start = level.from_frame(-60.0 - 250.0, 300.0 + 60.0)  # farther out, as a circle model slides
    fit = bf.fit(level.g, level.lit, start)
    assert fit is not None
    x, y = level.to_frame(fit.x, fit.y)
    assert math.hypot(x + 60.0, y - 300.0) <= 0.02 * math.hypot(*counts.shape)
    assert 0.8 <= fit.p <= 1.0


def test_estimate_moves_an_off_frame_guess_but_leaves_it_not_found() -> None:
    counts = waxs_frame()
    est = bc.estimate_beam_center(counts)
    assert est.method == "falloff"
    assert not est.on_frame and not est.found
    assert math.hypot(est.x + 60.0, est.y - 300.0) <= 0.02 * math.hypot(*counts.shape)
    # a caller that discards positions not found (predict, the check) skips the fit
    rough = bc.estimate_beam_center(counts, guess=False)
    assert rough.method != "falloff" and rough.confidence == est.confidence
    assert bc.check_beam_center(counts, None, (est.x, est.y)).best.method != "falloff"


def test_an_on_frame_beam_is_left_alone() -> None:
    """A choice at an on-frame beam: no off-frame circle explains the frame as well."""
    level = fine_level(waxs_frame(cx=150.0, cy=200.0))
    best = Candidate("isotropy", 150.0, 200.0, 0.5, 0.5, 0.5, 0.5)
    assert falloff_candidate(level, best, (400, 400)) is best


@pytest.mark.parametrize("where", [(150.0, 200.0), None])
def test_a_choice_inside_a_falloff_from_beside_the_frame_moves_to_its_beam(
    where: tuple[float, float] | None,
) -> None:
    """Point symmetry and the isotropy search put a beam beside the frame inside it (or
    nowhere): refitted from the off-frame point where circles explain the frame best."""
    level = fine_level(waxs_frame())
    start = bf.off_frame_start(level.g, level.lit, level.from_frame(150.0, 200.0))
    assert start is not None and start[0] < 0  # the side the counts rise to
    best = None if where is None else Candidate("symmetry", *where, 0.5, 0.5, 0.5, 0.5)
    moved = falloff_candidate(level, best, (400, 400))
    assert moved is not None and moved.method == "falloff"
    assert math.hypot(moved.x + 60.0, moved.y - 300.0) <= 0.02 * math.hypot(400, 400)


def test_the_scan_gives_one_point_a_ray_off_the_level_best_first() -> None:
    level = fine_level(waxs_frame())
    found = bf.scan(level.g, level.lit)
    assert len(found) == bf.SCAN_ANGLES
    r2 = [f.r2 for f in found]
    assert r2 == sorted(r2, reverse=True)
    rows, cols = level.g.shape
    assert all(not (0 <= f.x < cols and 0 <= f.y < rows) for f in found)
    assert found[0].x < 0  # the side the counts rise to


def test_a_polarised_lobe_on_the_frame_is_no_beam() -> None:
    """Point symmetry and the isotropy search centre a polarised lobe on the frame: circles
    about it explain the frame better than circles about any point off it, the
    polarisation factor about the beam better still."""
    counts = lobe_frame()
    level = fine_level(counts)
    lobe = level.from_frame(150.0, 40.0)
    s = bf.samples(level.g, level.lit, bf.SCAN_KEEP)
    diag = math.hypot(*level.g.shape)
    best = bf.scan(level.g, level.lit)[0]
    circles = max(bf.r2_of(s, x, y, None, 0.0) for x, y in bf.rays(level.g.shape, bf.SCAN_BEYOND))
    assert circles < bf.r2_of(s, *lobe, None, 0.0) < bf.scan_r2(s, *lobe, diag)[0] < best.r2
    start = bf.off_frame_start(level.g, level.lit, lobe)
    assert start is not None and start[1] < 0  # above the frame, where the beam is
    est = bc.estimate_beam_center(counts)
    assert est.method == "falloff" and not est.found
    assert math.hypot(est.x - 150.0, est.y + 40.0) <= 0.02 * math.hypot(*counts.shape)


@pytest.mark.parametrize("start", [(700.0, 100.0), (200.0, 800.0)])
def test_the_scan_starts_reach_a_beam_on_another_side_than_the_start(
    start: tuple[float, float],
) -> None:
    """A start off the wrong side of the frame (an isotropy search slid along a nearly flat
    valley) fits a local optimum; the scan's best points start the fit where the beam is."""
    level = fine_level(waxs_frame())
    s = bf.samples(level.g, level.lit)
    at = level.from_frame(*start)
    alone = bf.fit_samples(s, level.g.shape, at, at)
    fit = bf.fit_samples(s, level.g.shape, at, at, bf.scan(level.g, level.lit)[: bf.SCAN_STARTS])
    assert alone is not None and fit is not None and fit.r2 > alone.r2
    x, y = level.to_frame(fit.x, fit.y)
    assert math.hypot(x + 60.0, y - 300.0) <= 0.02 * math.hypot(400, 400)


def test_the_flat_model_explains_a_flat_background_best_about_its_beam() -> None:
    """m = b + A cos^3(2 theta) pol: its R^2 is highest at the beam and the true distance,
    lower about a point slid along the radius (where a free profile fits as well)."""
    counts = flat_background(400, -100.0, 100.0, 300.0, 0.0, 30.0)
    level = fine_level(counts)
    s = bf.samples(level.g, level.lit)
    at, slid = level.from_frame(-100.0, 100.0), level.from_frame(-200.0, 100.0)
    d = 300.0 / level.b
    assert bf.r2_flat(s, *at, d, 0.0) > max(bf.r2_flat(s, *slid, k * d, 0.0) for k in (0.5, 1, 2))
    assert bf.r2_flat(s, *at, d, 0.0) > 0.5
    assert bf.r2_flat(s, *at, 1e9, 0.0) == 0.0  # no obliquity over the frame: nothing fitted


@pytest.mark.parametrize(
    ("cx", "cy", "d", "p", "level"),
    [(-100.0, 100.0, 300.0, 0.0, 30.0), (530.0, 200.0, 250.0, 0.95, 5.0)],
)
def test_a_flat_background_beside_the_frame_places_its_beam(
    cx: float, cy: float, d: float, p: float, level: float
) -> None:
    """A lab source (p = 0: circles, a free profile slides along the radius) or a faint
    polarised background: the obliquity of the flat background fixes the distance (before
    the flat model, 3.1 % and 51 % of the diagonal off)."""
    counts = flat_background(400, cx, cy, d, p, level)
    est = bc.estimate_beam_center(counts)
    assert est.method == "falloff" and not est.found
    assert math.hypot(est.x - cx, est.y - cy) <= 0.02 * math.hypot(400, 400)


def _r2_long(s: bf.Samples, cx: float, cy: float, distance: float | None, p: float) -> float:
    """r2_of written out as its formula reads (the per-call temporaries it had)."""
    dx, dy = s.x - cx, s.y - cy
    r2 = dx * dx + dy * dy
    k = ((np.sqrt(r2) - np.sqrt(r2).min()) / bf.BIN).astype(np.intp)
    if distance is None:
        sp = spp = np.bincount(k, s.w)
        smp = np.bincount(k, s.wm)
    else:
        c2 = distance * distance / (r2 + distance * distance)
        pol = 0.5 * (1.0 + c2 - p * (1.0 - c2) * (dx * dx - dy * dy) / np.maximum(r2, 1e-12))
        wpol = s.w * pol
        sp, spp, smp = (np.bincount(k, v) for v in (wpol, wpol * (wpol / s.w), wpol * s.m))
    used = spp > 0
    smp, sp, inv = smp[used], sp[used], 1.0 / spp[used]
    uu = s.sum_wmm - float(np.sum(smp * smp * inv))
    vv = s.sum_w - float(np.sum(sp * sp * inv))
    uv = s.sum_wm - float(np.sum(smp * sp * inv))
    within = uu - (uv * uv / vv if vv > 1e-12 * s.sum_w else 0.0)
    n, dof = s.m.size, s.m.size - int(used.sum()) - 1
    total = s.sum_wmm - s.sum_wm**2 / s.sum_w
    if total <= 0 or dof < 0.25 * n:
        return 0.0
    return 1.0 - (within / dof) / (total / (n - 1))


def test_the_fits_r2_is_its_formula_bit_for_bit() -> None:
    """r2_of (its temporaries written in place) and the scan's four models about one point
    (the distances and bins shared) give the formula's floats exactly: the fits' Nelder-Mead
    steps, which a last bit can turn, stay those they were."""
    level = pyramid(waxs_frame(), np.ones((400, 400), bool))[1]
    s = bf.samples(level.g, level.lit)
    diag = math.hypot(*level.g.shape)
    rng = np.random.default_rng(3)
    for cx, cy in rng.uniform(-200.0, 400.0, (25, 2)):
        for d, p in ((None, 0.0), (rng.uniform(1.0, 3000.0), rng.uniform(0.0, 1.0))):
            assert bf.r2_of(s, cx, cy, d, p) == _r2_long(s, cx, cy, d, p)
        best = max(
            [(_r2_long(s, cx, cy, None, 0.0), bf.FARTHEST * diag)]
            + [(_r2_long(s, cx, cy, k * diag, bf.SCAN_P), k * diag) for k in bf.STARTS]
        )
        assert bf.scan_r2(s, cx, cy, diag) == best


def test_the_flat_models_r2_is_its_formula_bit_for_bit() -> None:
    """r2_flat (cos^2(2 theta) taken once for the solid angle and the polarisation factor,
    the temporaries written in place) gives the formula's floats exactly."""
    level = pyramid(waxs_frame(), np.ones((400, 400), bool))[1]
    s = bf.samples(level.g, level.lit)
    total = s.sum_wmm - s.sum_wm**2 / s.sum_w
    rng = np.random.default_rng(5)
    for cx, cy, d, p in zip(*rng.uniform(-200.0, 400.0, (2, 40)), *rng.uniform(0, 1, (2, 40))):
        dx, dy = s.x - cx, s.y - cy
        r2 = dx * dx + dy * dy
        c2 = (30.0 + 300 * d) ** 2 / (r2 + (30.0 + 300 * d) ** 2)
        pol = 0.5 * (1.0 + c2 - p * (1.0 - c2) * (dx * dx - dy * dy) / np.maximum(r2, 1e-12))
        o = c2 * np.sqrt(c2) * pol
        o -= float((s.w * o).sum()) / s.sum_w
        soo, smo = float((s.w * o) @ o), float((s.w * o) @ s.m)
        want = 0.0 if smo <= 0.0 or soo <= 1e-12 * s.sum_w else smo * smo / (soo * total)
        assert bf.r2_flat(s, cx, cy, 30.0 + 300 * d, p) == want


def test_a_free_fit_whose_distance_ran_to_nothing_still_starts_the_flat_fit() -> None:
    """A free fit's log d can run to -inf (d = 0: seed 4's off-frame frames when the fits
    read 32000 pixels); the flat fit then starts it at a tiny distance, not log(0)."""
    level = fine_level(flat_background(400, -100.0, 100.0, 300.0, 0.0, 30.0))
    at = level.from_frame(-100.0, 100.0)
    free = bf.fit(level.g, level.lit, at)
    assert free is not None
    flat = bf.flat(level.g, level.lit, dataclasses.replace(free, distance=0.0), at)
    assert flat is not None and flat.distance > 0.0


def test_pooled_samples_hold_every_lit_pixel() -> None:
    """2 x 2 blocks of a 5 x 5 level (the last row and column padded) with unlit pixels:
    each block's mean, mean position and weight n / max(m, 1) over its lit pixels only;
    every lit pixel's mean is counted once."""
    rng = np.random.default_rng(1)
    m = rng.uniform(0.5, 40.0, (5, 5))
    lit = rng.random((5, 5)) > 0.3
    lit[0, :2] = lit[1, :2] = False  # a block with no lit pixel is no sample
    s = bf.pooled(np.log1p(m), lit)
    n = s.w * np.maximum(s.m, 1.0)
    assert s.m.size == 8 and np.allclose(n.sum(), lit.sum())
    assert math.isclose(float((n * s.m).sum()), float(m[lit].sum()))
    yy, xx = np.nonzero(lit)
    assert math.isclose(float((n * s.x).sum()), float(xx.sum()))
    assert math.isclose(float((n * s.y).sum()), float(yy.sum()))
    block = lit[2:4, 0:2]
    at = next(i for i in range(s.m.size) if s.x[i] < 2 and 2 <= s.y[i] < 4)
    assert math.isclose(float(s.m[at]), float(m[2:4, 0:2][block].mean()))


def test_the_edge_fit_reads_pooled_samples_and_its_flat_fit_the_same() -> None:
    """The flat fit's R^2 is read on the samples its free fit read (the gate compares the
    two): pooled after :func:`fit`, strided after a fit from inside."""
    level = fine_level(flat_background(400, -100.0, 100.0, 300.0, 0.0, 30.0))
    at = level.from_frame(-100.0, 100.0)
    free = bf.fit(level.g, level.lit, at)
    assert free is not None and free.pooled
    for kind, read in ((free, bf.pooled), (dataclasses.replace(free, pooled=False), bf.samples)):
        flat = bf.flat(level.g, level.lit, kind, at)
        assert flat is not None
        s = read(level.g, level.lit)
        assert bf.r2_flat(s, flat.x, flat.y, flat.distance, flat.p) == flat.r2

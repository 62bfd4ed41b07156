"""Beam centre from the round end of a beamstop's shadow: disks, bars, and shapes that are
not round (no circle)."""

import math

import numpy as np
import pytest

from scattertag.beam import bars, disks
from scattertag.beam import shadow as beamstop_shadow
from scattertag.beam.bars import bar_tips
from scattertag.beam.center import estimate_beam_center
from scattertag.beam.disks import shadow_circles
from scattertag.beam.pyramid import pyramid
from scattertag.beam.shadow import find_shadows, shadow_tips


def flat_frame(size: int, level: float, seed: int):
    """Flat Poisson counts (nothing scattered) with pixel coordinates x, y (float)."""
    y, x = np.mgrid[:size, :size].astype(np.float64)
    return np.random.default_rng(seed).poisson(np.full((size, size), level)), x, y


def shade(counts: np.ndarray, inside: np.ndarray, leak: float, seed: int) -> np.ndarray:
    """Counts with the pixels ``inside`` passing only ``leak`` of their light."""
    out = counts.copy()
    out[inside] = np.random.default_rng(seed + 7).binomial(counts[inside], leak)
    return out


@pytest.mark.parametrize(("size", "seed"), [(256, 0), (1000, 1)])
def test_disk_on_an_arm_on_an_empty_frame_gives_the_centre(size, seed):
    # nothing scattered: the disk's edge is the only centre the frame holds
    cx, cy = 0.37 * size + 0.3, 0.58 * size + 0.6
    counts, x, y = flat_frame(size, 50.0, seed)
    radius = 0.04 * size
    disk = np.hypot(x - cx, y - cy) < radius
    arm = (x > cx) & (np.abs(y - cy) < 0.25 * radius)
    counts = shade(counts, disk | arm, 1e-3, seed)
    est = estimate_beam_center(counts)
    assert est.method == "beamstop" and est.found
    assert math.hypot(est.x - cx, est.y - cy) <= 0.5


def test_bar_with_a_round_end_gives_the_centre():
    # a bar beamstop from the top edge ending in a half disk about the beam
    cx, cy = 431.2, 522.7
    counts, x, y = flat_frame(1000, 200.0, 2)
    half_width = 18.0
    bar = ((y < cy) & (np.abs(x - cx) < half_width)) | (np.hypot(x - cx, y - cy) < half_width)
    counts = shade(counts, bar, 1e-4, 2)
    ok = np.ones(counts.shape, bool)

    _, _, ring = pyramid(counts, ok)
    found = shadow_circles(counts, ok, find_shadows(ring.g, ring.ok, ring.b, 1000))
    assert found
    assert math.hypot(found[0].x - cx, found[0].y - cy) <= 1.0
    assert abs(found[0].radius - half_width) <= 1.5


def test_wedge_and_square_give_no_circle():
    # a pointed wedge and a square shadow have no round edge: no centre from them
    counts, x, y = flat_frame(512, 100.0, 3)
    wedge = (y > 300) & (np.abs(x - 200) < 0.12 * (y - 300))
    square = (np.abs(x - 380) < 30) & (np.abs(y - 150) < 30)
    counts = shade(counts, wedge | square, 1e-4, 3)
    ok = np.ones(counts.shape, bool)

    _, _, ring = pyramid(counts, ok)
    assert shadow_circles(counts, ok, find_shadows(ring.g, ring.ok, ring.b, 512)) == []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_straight_sides_where_a_wedge_leaves_the_frame_give_no_circle(seed):
    # the wedge's two sides where it leaves the frame made a loose "circle" (span 0.36,
    # sigma 0.45 px) about a point on the border, 98 px from the beam, that outranked the
    # wedge's axis: its edge normals do not turn with the polar angle
    counts, x, y = flat_frame(256, 100.0, seed)
    wedge = (x < 104.0) & (np.abs(y - 117.5 - 0.06 * (104.0 - x)) < 0.16 * (104.0 - x))
    counts = shade(counts, wedge, 1e-3, seed)  # from the left border, pointed at (104, 117.5)
    ok = np.ones(counts.shape, bool)
    from scattertag.beam.candidates import LOOSE_SIGMA, LOOSE_SPAN

    _, _, ring = pyramid(counts, ok)
    shadows = find_shadows(ring.g, ring.ok, ring.b, 256)
    assert shadow_circles(counts, ok, shadows, LOOSE_SPAN, LOOSE_SIGMA) == []


@pytest.mark.parametrize("seed", [0, 1])
def test_disk_cut_by_the_frame_border_still_gives_its_circle(seed):
    # a round edge cut by the border turns with it (as loose a circle as before the test)
    counts, x, y = flat_frame(256, 100.0, seed)
    counts = shade(counts, np.hypot(x - 12.3, y - 130.6) < 18.0, 1e-3, seed)
    ok = np.ones(counts.shape, bool)
    from scattertag.beam.candidates import LOOSE_SIGMA, LOOSE_SPAN

    _, _, ring = pyramid(counts, ok)
    shadows = find_shadows(ring.g, ring.ok, ring.b, 256)
    found = shadow_circles(counts, ok, shadows, LOOSE_SPAN, LOOSE_SIGMA)
    assert len(found) == 1
    assert math.hypot(found[0].x - 12.3, found[0].y - 130.6) <= 0.5


def test_turn_is_one_along_a_circle_and_zero_along_straight_sides():
    t = np.linspace(-2.0, 2.0, 40)
    assert disks._turn(t, t + 0.05 * np.sin(7 * t)) == pytest.approx(1.0, abs=0.05)
    # two straight sides (normals -90 and +80 degrees) seen from a point between them
    theta = np.concatenate([np.linspace(-1.9, -1.0, 12), np.linspace(0.9, 1.9, 12)])
    normal = np.where(theta < 0, -math.pi / 2, math.radians(80.0))
    assert abs(disks._turn(theta, normal)) < 0.05
    # an arc across the +-pi cut is one stretch
    arc = np.angle(np.exp(1j * np.linspace(2.8, 3.6, 20)))
    assert disks._turn(arc, arc) == pytest.approx(1.0)


def test_wedge_tip_and_axis_point_at_the_beam():
    # a wedge from the bottom edge, pointed upward: its tip lies near its apex and the axis
    # from the tip into the shadow points down, toward the edge it comes from
    apex_x, apex_y = 250.0, 200.0
    counts, x, y = flat_frame(512, 100.0, 4)
    wedge = (y > apex_y) & (np.abs(x - apex_x) < 0.12 * (y - apex_y))
    counts = shade(counts, wedge, 1e-4, 4)
    ok = np.ones(counts.shape, bool)

    _, _, ring = pyramid(counts, ok)
    tips = shadow_tips(find_shadows(ring.g, ring.ok, ring.b, 512))
    assert len(tips) == 1
    tx, ty, ux, uy = tips[0]
    assert abs(tx - apex_x) <= 4 and 0 <= ty - apex_y <= 25  # the thin point is lost
    assert uy > 0.99 and abs(ux) < 0.1


def test_circle_drops_a_second_edge_that_pulls_the_radius():
    # a disk's edge (200 points) and, on one side, a brighter second edge 3-10 px outside
    # (its arm, a ring): the first steps' radius lies between the two, so most residuals of
    # the disk's edge share an offset; outliers are counted from the residuals' median
    # (from 0 the disk's own points were dropped and the fit kept the second edge: 2.5 px)
    rng = np.random.default_rng(0)
    t = rng.uniform(0, 2 * math.pi, 200)
    u, off = rng.uniform(-1.0, 1.0, 60), rng.uniform(3.0, 10.0, 60)
    x = np.concatenate([30 + 20 * np.cos(t), 30 + (20 + off) * np.cos(u)])
    y = np.concatenate([25 + 20 * np.sin(t), 25 + (20 + off) * np.sin(u)])
    x[:200] += rng.normal(0, 0.15, 200)
    y[:200] += rng.normal(0, 0.15, 200)
    w = np.concatenate([np.ones(200), np.full(60, 2.0)])
    fit = disks._circle(x, y, w, (31.0, 24.0))
    assert fit is not None
    cx, cy, radius, _, _, keep = fit
    assert math.hypot(cx - 30, cy - 25) < 0.1 and radius == pytest.approx(20.0, abs=0.1)
    assert keep[:200].all() and not keep[200:].any()


def test_round_end_of_a_bar_near_a_corner_of_a_benchmark_frame_gives_the_centre():
    # frame 73 of benchmarks/bench_beam_center.py's seed 1: the round end of a bar stop, the
    # beam near a corner; its edge fit failed (outliers counted from 0, above) and the
    # choice was point symmetry, 586 px off
    from scattertag.simulate import Recipe, draw_experiment, simulate_image

    placements = {"corner": 0.25, "center": 0.25, "edge": 0.25, "off": 0.25}
    s = simulate_image(draw_experiment(Recipe(size=1000, placements=placements), 1, 73), 0)
    est = estimate_beam_center(s.counts, s.mask)
    x, y = s.geometry.beam_center
    assert est.found and est.method == "beamstop"
    assert math.hypot(est.x - x, est.y - y) <= 2.0


def bar_stop(x: np.ndarray, y: np.ndarray, cx: float, cy: float, angle: float, half: float):
    """Pixels behind a bar beamstop: a bar of half-width ``half`` along the ray from (cx, cy)
    at ``angle`` ending in a half disk about (cx, cy) (the simulator's linear and rod stops)."""
    ux, uy = math.cos(angle), math.sin(angle)
    qx, qy = x - cx, y - cy
    along = qx * ux + qy * uy
    return np.where(along >= 0, np.abs(qx * uy - qy * ux), np.hypot(qx, qy)) < half


def tips_of(counts: np.ndarray) -> list:
    """bar_tips of a frame whose pixels are all valid, on the estimator's ring level."""

    ok = np.ones(counts.shape, bool)
    _, _, ring = pyramid(counts, ok)
    return bar_tips(counts, ok, find_shadows(ring.g, ring.ok, ring.b, max(counts.shape)))


@pytest.mark.parametrize(
    ("angle", "half", "seed"), [(0.3, 18.0, 5), (2.0, 18.0, 6), (-1.9, 7.0, 7), (4.0, 25.0, 8)]
)
def test_round_end_of_a_bar_pins_the_beam(angle, half, seed):
    # the half disk at a bar's end and its two parallel sides: the centre within 0.5 px and
    # the half-width within 0.5 px, seen whole (cap and sides)
    cx, cy = 455.3, 512.8
    counts, x, y = flat_frame(1000, 100.0, seed)
    counts = shade(counts, bar_stop(x, y, cx, cy, angle, half), 1e-4, seed)
    tips = tips_of(counts)
    assert tips
    tip = tips[0]
    assert math.hypot(tip.x - cx, tip.y - cy) <= 0.5
    assert abs(tip.half_width - half) <= 0.5
    assert abs(math.remainder(tip.angle - angle, 2 * math.pi)) < 0.02
    assert tip.cap >= 0.9 and tip.sides >= 2.0


def test_bar_tip_on_an_empty_frame_is_the_estimate():
    # nothing scattered, a semi-transparent rod (5 % passes) from the left edge: the frame's
    # only centre is the rod's round end
    cx, cy = 612.4, 388.9
    counts, x, y = flat_frame(1000, 40.0, 9)
    counts = shade(counts, bar_stop(x, y, cx, cy, math.pi + 0.1, 9.0), 0.05, 9)
    est = estimate_beam_center(counts)
    assert est.found and est.method == "beamstop"
    assert math.hypot(est.x - cx, est.y - cy) <= 1.0


def test_square_end_of_a_paddle_pins_no_beam():
    # a paddle's box on a thin arm: its straight end is no half disk about the beam
    counts, x, y = flat_frame(1000, 100.0, 10)
    box = (np.abs(x - 500) < 30) & (np.abs(y - 470) < 60)
    arm = (np.abs(x - 500) < 3) & (y < 470)
    tips = tips_of(shade(counts, box | arm, 1e-4, 10))
    assert tips == []


@pytest.mark.parametrize(("frame", "size"), [(406, 1000), (480, 256)])
def test_stop_of_a_benchmark_frame_pins_its_beam(frame, size):
    # seed 0 of benchmarks/bench_beam_center.py. 406: a bar's round end, found whole by
    # bar_tips (the circle fit sees half a circle; a ring fit 6.2 px off was chosen);
    # 480: a disk of radius 2.8 px, its edge 17 px long, whose cover counted in 36
    # sectors stayed under 0.45 (then the falloff guess, 265 px off, not found)
    from scattertag.simulate import Recipe, draw_experiment, simulate_image

    placements = {"corner": 0.25, "center": 0.25, "edge": 0.25, "off": 0.25}
    s = simulate_image(draw_experiment(Recipe(size=size, placements=placements), 0, frame), 0)
    est = estimate_beam_center(s.counts, s.mask)
    x, y = s.geometry.beam_center
    assert est.found and est.method == "beamstop"
    assert math.hypot(est.x - x, est.y - y) <= 0.5


def simulated_stop(kind: str, shape: tuple[int, int], beam: tuple[float, float], **p) -> np.ndarray:
    """(rows, cols) transmission of the simulator's stop of ``kind`` about ``beam`` (x, y)."""
    from scattertag.geometry import Geometry
    from scattertag.simulate import beamstops

    stop = beamstops._shade(Geometry(shape, beam), kind, {"kind": kind, **p}, 1.0)
    return stop.transmission_map(shape)


@pytest.mark.parametrize("seed", [13, 14])
def test_round_end_of_a_bar_over_a_noisy_offset_pins_the_beam(seed):
    # nothing scattered: 80 counts over an integrating detector's offset of 150 with a
    # readout noise of 10, a bar whose edge blurs over 4 px. Traced at single pixels the
    # noise scatters the crests along the edge (the fit's standard error over 0.25 px, a
    # straight end about as good); over blocks of 2 px the half disk pins the beam (seed 0
    # of the benchmark, frame 326: 7.1 -> 0.3 px)
    beam = (487.3, 531.6)
    t = simulated_stop(
        "linear", (1000, 1000), beam, angle=0.2, blur=4.0, leak=1e-5, half_width=30.0
    )
    rng = np.random.default_rng(seed)
    counts = np.rint(150 + rng.poisson(80.0 * t) + rng.normal(0, 10, t.shape)).astype(np.int64)
    tips = tips_of(counts)
    assert tips
    assert math.hypot(tips[0].x - beam[0], tips[0].y - beam[1]) <= 0.5


@pytest.mark.parametrize(("angle", "seed"), [(math.pi / 2 + 0.05, 12), (-0.04, 13)])
def test_midline_of_a_wedge_passes_through_the_beam(angle, seed):
    # the simulator's wedge (apex 50 px behind the beam, half-angle 6 degrees) over a
    # falling pattern: traced from a point 4 px off its axis, the midline between its two
    # sides passes within 0.2 px of the beam, along the axis
    beam = (503.4, 478.8)
    t = simulated_stop(
        "wedge",
        (1000, 1000),
        beam,
        angle=angle,
        blur=1.5,
        leak=1e-4,
        half_angle=math.radians(6.0),
        apex_offset=50.0,
    )
    y, x = np.mgrid[:1000, :1000].astype(np.float64)
    lam = 20.0 + 2000.0 / (1.0 + np.hypot(x - beam[0], y - beam[1]) / 40.0) ** 2
    counts = np.random.default_rng(seed).poisson(lam * t)
    ux, uy = math.cos(angle), math.sin(angle)
    start = (beam[0] + 4.0 * uy, beam[1] - 4.0 * ux)
    line = bars.stop_axis(counts, np.ones(counts.shape, bool), start, angle, 4)
    assert line is not None
    across = (beam[0] - line.x) * math.sin(line.angle) - (beam[1] - line.y) * math.cos(line.angle)
    assert abs(across) <= 0.2
    assert abs(math.remainder(line.angle - angle, 2 * math.pi)) < 0.01


def test_square_end_of_a_paddle_gives_no_held_axis():
    # a paddle's box without its arm runs toward no border: no midline through the beam
    counts, x, y = flat_frame(1000, 100.0, 14)
    box = (np.abs(x - 500) < 60) & (np.abs(y - 470) < 30)

    _, _, ring = pyramid(shade(counts, box, 1e-4, 14), np.ones(counts.shape, bool))
    shadows = find_shadows(ring.g, ring.ok, ring.b, 1000)
    assert shadow_tips(shadows) and not beamstop_shadow.held_tips(shadows)


def test_wedge_of_a_benchmark_frame_puts_the_beam_on_its_axis():
    # seed 0 of benchmarks/bench_beam_center.py, frame 310: diffuse high-q scattering behind
    # a wedge; point symmetry placed the beam 9.4 px off the wedge's axis (the shadow
    # hides the partners on one side), its midline 0.4 px
    from scattertag.simulate import Recipe, draw_experiment, simulate_image

    placements = {"corner": 0.25, "center": 0.25, "edge": 0.25, "off": 0.25}
    s = simulate_image(draw_experiment(Recipe(size=1000, placements=placements), 0, 310), 0)
    est = estimate_beam_center(s.counts, s.mask)
    x, y = s.geometry.beam_center
    assert est.method == "axis"
    assert math.hypot(est.x - x, est.y - y) <= 1.0


@pytest.mark.parametrize("seed", [0, 1])
def test_disk_on_a_weak_frame_is_found_from_the_counts_of_its_blocks(seed):
    # 0.8 counts a pixel: log(1 + counts a pixel) cannot fall by 1 below the light however
    # dark a block; read per block (13 counts at the ring level's 4 x 4) the disk shows
    size, beam = 1024, (600.3, 430.7)
    counts, x, y = flat_frame(size, 0.8, seed)
    counts = shade(counts, np.hypot(x - beam[0], y - beam[1]) < 40.0, 1e-4, seed)
    ring = pyramid(counts, np.ones(counts.shape, bool))[2]
    assert ring.b == 4
    excess = ring.means[ring.ok]
    assert beamstop_shadow.count_scale(excess, ring.b) > 1.0
    shadows = find_shadows(ring.g, ring.ok, ring.b, size)
    px, py = ring.from_frame(*beam)
    assert shadows.label[round(py), round(px)] > 0
    est = estimate_beam_center(counts)
    assert est.method == "beamstop" and est.found
    assert math.hypot(est.x - beam[0], est.y - beam[1]) < 1.0


def test_a_frame_too_weak_for_a_block_to_tell_a_shadow_is_read_as_before():
    # 0.05 counts a pixel: a 4 x 4 block holds under 1 count, no shadow test can tell
    counts, _, _ = flat_frame(1024, 0.05, 3)
    ring = pyramid(counts, np.ones(counts.shape, bool))[2]
    assert beamstop_shadow.count_scale(ring.means[ring.ok], ring.b) == 1.0
    assert find_shadows(ring.g, ring.ok, ring.b, 1024).count == 0


@pytest.mark.parametrize("seed", [21, 22])
def test_a_bars_shadow_that_fades_in_dim_light_is_fitted_at_its_round_end(seed):
    # a bar from the right border ending about a beam 150 px from the left one; the light
    # falls off from the beam to 0.1 counts a pixel, where no block of the ring level is
    # dark enough to count as shadow: the bar's shadow stops some 260 px short of the right
    # border, farther from the level's border than its round end (seed 1 of the benchmark,
    # frame 44: no bar tip, a ring fit 26 px off chosen, found). Its round end is fitted
    # too; the circle through the half circle and the sides lies 0.4-0.6 px off (along x).
    beam = (150.4, 500.7)
    y, x = np.mgrid[:1000, :1000].astype(np.float64)
    t = simulated_stop(
        "linear", (1000, 1000), beam, angle=0.02, blur=2.0, leak=1e-4, half_width=20.0
    )
    light = 500.0 * np.exp(-np.hypot(x - beam[0], y - beam[1]) / 80.0) + 0.1
    tips = tips_of(np.random.default_rng(seed).poisson(light * t))
    assert tips
    assert math.hypot(tips[0].x - beam[0], tips[0].y - beam[1]) <= 0.3
    assert abs(tips[0].half_width - 20.0) <= 1.0

"""The beam-centre candidate ranker: features, fitting, the packaged weights, and a
candidate only it sees (the axis of a wedge)."""

import math
from types import SimpleNamespace

import numpy as np

from scattertag.beam import center as bc
from scattertag.beam import ranker as ranker
from scattertag.beam.candidates import Candidate, candidates
from scattertag.beam.choice import _choose


def candidate(method: str, x: float, y: float, **kw) -> SimpleNamespace:
    """A candidate as the ranker reads it."""
    base = {"sigma": 0.5, "coherence": 0.5, "isotropy": 0.5, "fine_isotropy": 0.5}
    base.update(rho=0.0, arcs=0, span=0.0)
    return SimpleNamespace(method=method, x=x, y=y, **{**base, "seed": "", **kw})


def test_features_count_agreement_gaps_and_distance_off_the_frame():
    cands = [
        candidate("symmetry", 100.0, 100.0, fine_isotropy=0.9, rho=0.95),
        candidate("gradient", 101.0, 100.5, fine_isotropy=0.7),
        candidate("isotropy", 100.2, 99.9, fine_isotropy=0.8, seed="gradient"),
        candidate("rings", -300.0, 100.0, arcs=4),
    ]
    f = ranker.features(cands, (200, 200))
    col = {name: k for k, name in enumerate(ranker.FEATURES)}
    assert f.shape == (4, len(ranker.FEATURES))
    assert f[0, col["agree"]] == 1  # the gradient lines back point symmetry
    assert f[2, col["agree"]] == 1  # the isotropy search: symmetry, not its own start
    assert f[3, col["agree"]] == 0 and f[3, col["on_frame"]] == 0
    assert math.isclose(f[3, col["off_distance"]], 299.5 / math.hypot(200, 200))
    assert math.isclose(f[1, col["isof_gap"]], -0.2)
    assert f[0, col["is_symmetry"]] == 1 and f[0, col["symmetry_x_agree"]] == 1
    assert f[0, col["rings_x_agree"]] == 0


def test_fit_learns_which_feature_separates_hits():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, len(ranker.FEATURES)))
    y = (x[:, 3] - 0.5 * x[:, 7] + 0.3 * rng.normal(size=400) > 0).astype(float)
    w = ranker.fit(x, y)
    coef = np.array(w["coef"][:-1])
    assert w["features"] == list(ranker.FEATURES)
    assert np.argmax(np.abs(coef)) == 3 and coef[3] > 0 and coef[7] < 0
    z = (x - np.array(w["mean"])) / np.array(w["scale"])
    p = 1 / (1 + np.exp(-(z @ coef + w["coef"][-1])))
    assert np.mean((p > 0.5) == (y > 0.5)) > 0.9


def test_packaged_weights_prefer_an_agreed_sharp_centre_to_a_lone_loose_one():
    good = candidate("symmetry", 100.0, 100.0, fine_isotropy=0.9, rho=0.98, sigma=0.05)
    backer = candidate("gradient", 100.5, 100.2, fine_isotropy=0.9, sigma=0.1)
    lone = candidate("beamstop", 160.0, 40.0, fine_isotropy=0.2, sigma=2.5, span=0.25)
    middle = candidate("centre", 100.0, 100.0, sigma=math.inf)
    p = ranker.probabilities([good, backer, lone, middle], (200, 200))
    assert p[3] == 0.0  # the frame's middle is never chosen
    assert p[0] > 0.5 and p[2] < p[0]


def test_axis_of_a_wedge_gives_the_centre_behind_its_point():
    # diffuse scattering about the beam behind a wedge stop whose point lies 40 px above
    # the beam: the shadow's tip, its axis, and point symmetry along the axis
    cx, cy, size = 243.4, 231.7, 512
    y, x = np.mgrid[:size, :size].astype(float)
    r = np.hypot(x - cx, y - cy)
    lam = 10.0 + 4000.0 / (1.0 + (r / 25.0) ** 2) ** 1.5
    apex_y = cy - 40.0
    wedge = (y > apex_y) & (np.abs(x - cx) < np.tan(np.radians(7.0)) * (y - apex_y))
    lam[wedge] *= 1e-4
    counts = np.random.default_rng(5).poisson(lam)
    cands = candidates(counts, bc.valid_pixels(counts))
    axis = [c for c in cands if c.method == "axis"]
    assert axis and all(c.extra for c in axis)
    assert min(math.hypot(c.x - cx, c.y - cy) for c in axis) <= 1.5


def test_choice_override_and_better_guess_when_nothing_is_found(monkeypatch):
    # the rules see only the isotropy search (0.25 x evidence: not found); the ranker's P
    # is fixed here to test the gates, not the weights
    def cand(method: str, x: float, extra: bool = False, iso: float = 0.05) -> Candidate:
        return Candidate(method, x, 50.0, 0.5, 0.1, iso, iso, extra=extra)

    rules_pick, axis = cand("isotropy", 30.0), cand("axis", 60.0, extra=True, iso=0.5)
    shape = (100, 100)

    def fixed(p_rules: float, p_axis: float) -> None:
        monkeypatch.setattr(ranker, "probabilities", lambda c, s: np.array([p_rules, p_axis]))

    fixed(0.1, 0.9)  # sure, and far above the rules' pick: the ranker's choice and its P
    assert _choose([rules_pick, axis], shape) == (axis, 0.9)
    # as sure of a centre about which the image is no more isotropic than noise: not found
    blank = cand("axis", 60.0, extra=True, iso=0.01)
    best, conf = _choose([rules_pick, blank], shape)
    assert best is blank and conf < bc.CONFIDENCE_THRESHOLD
    fixed(0.1, 0.4)  # not sure: its better guess of the position, still not found
    best, conf = _choose([rules_pick, axis], shape)
    assert best is axis and conf < bc.CONFIDENCE_THRESHOLD
    fixed(0.5, 0.4)  # the rules' pick scores higher: it stays
    assert _choose([rules_pick, axis], shape)[0] is rules_pick
    off = cand("axis", 160.0, extra=True)  # off the frame the ranker is not trusted to guess
    fixed(0.1, 0.4)
    assert _choose([rules_pick, off], shape)[0] is rules_pick


def test_a_found_choice_gives_way_only_to_a_found_override(monkeypatch):
    # the rules' pick is found (the rules and its confidence, 0.7, fixed here); the ranker
    # is sure of another centre, about which the image is no more isotropic than noise:
    # that override would not be found, so the found pick stays, with its confidence
    from scattertag.beam import choice

    def cand(method: str, x: float, extra: bool = False, iso: float = 0.05) -> Candidate:
        return Candidate(method, x, 50.0, 0.5, 0.1, iso, iso, extra=extra)

    rules_pick = cand("rings", 30.0, iso=0.5)
    blank = cand("axis", 60.0, extra=True, iso=0.01)
    shape = (100, 100)
    monkeypatch.setattr(choice, "_choose_by_rules", lambda cands, shape: rules_pick)
    monkeypatch.setattr(choice, "confidence", lambda best, cands, diag, ring: 0.7)
    monkeypatch.setattr(ranker, "probabilities", lambda c, s: np.array([0.1, 0.9]))
    assert _choose([rules_pick, blank], shape) == (rules_pick, 0.7)
    sure = cand("axis", 60.0, extra=True, iso=0.5)  # a found override still replaces it
    assert _choose([rules_pick, sure], shape) == (sure, 0.9)

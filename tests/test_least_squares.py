"""The one soft-L1 least-squares solver (cones and a bar's outline fit with it)."""

import numpy as np
import pytest
from scipy.optimize import least_squares

from scattertag.beam import least_squares as lsq


def circle_problem():
    """Points on a circle of radius 25 about (40, -7), 20 of 300 pushed out (outliers)."""
    rng = np.random.default_rng(3)
    t = rng.uniform(0, 2 * np.pi, 300)
    x, y = 40 + 25 * np.cos(t) + rng.normal(0, 0.3, t.size), -7 + 25 * np.sin(t)
    x[:20] += rng.uniform(5, 30, 20)

    def residuals(p: np.ndarray) -> np.ndarray:
        return np.hypot(x - p[0], y - p[1]) - p[2]

    def with_jacobian(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = np.hypot(x - p[0], y - p[1])
        jac = np.stack([(p[0] - x) / d, (p[1] - y) / d, -np.ones_like(d)], axis=1)
        return d - p[2], jac

    return residuals, with_jacobian


@pytest.mark.parametrize("analytic", [False, True])
def test_reaches_scipys_soft_l1_optimum_in_bounds(analytic):
    """Forward differences or the model's own Jacobian: least_squares' soft-L1 optimum and
    cost on a circle with outliers, the radius held at its bound."""
    residuals, with_jacobian = circle_problem()
    p0 = np.array([30.0, 0.0, 10.0])
    lower, upper = np.array([-np.inf, -np.inf, 0.0]), np.array([np.inf, np.inf, 24.0])
    ref = least_squares(residuals, p0, loss="soft_l1", f_scale=1.0, bounds=(lower, upper))
    fun = with_jacobian if analytic else residuals
    got = lsq.solve(
        fun, p0, lower, upper, 1.0, max_nfev=200, ftol=1e-10, jac=analytic, want_jac=True
    )
    np.testing.assert_allclose(got.x, ref.x, atol=1e-4)
    assert got.cost == pytest.approx(ref.cost, rel=1e-6)
    assert got.x[2] == 24.0  # at the bound
    assert got.jac is not None and got.jac.shape == (300, 3)
    np.testing.assert_allclose(got.f, residuals(got.x))
    scaled = got.jac * ((1.0 + got.f**2) ** -0.75)[:, None]  # least_squares' loss scaling
    np.testing.assert_allclose(scaled.T @ scaled, ref.jac.T @ ref.jac, rtol=1e-3)


def test_stops_on_the_parameters_and_on_the_evaluations():
    """xtol: a loose tolerance stops earlier (fewer evaluations) near the same optimum;
    max_nfev bounds the evaluations of the residuals (the Jacobian's are not counted)."""
    residuals, _ = circle_problem()
    calls = []

    def counted(p: np.ndarray) -> np.ndarray:
        calls.append(1)
        return residuals(p)

    p0, lo, hi = np.array([30.0, 0.0, 10.0]), np.full(3, -np.inf), np.full(3, np.inf)
    fine = lsq.solve(counted, p0, lo, hi, 1.0, max_nfev=200, xtol=1e-9)
    n_fine = len(calls)
    calls.clear()
    loose = lsq.solve(counted, p0, lo, hi, 1.0, max_nfev=200, xtol=0.5)
    assert np.max(np.abs(loose.x - fine.x)) < 0.5 and len(calls) < n_fine
    calls.clear()
    capped = lsq.solve(counted, p0, lo, hi, 1.0, max_nfev=3)
    assert len(calls) <= 3 + 2 * 3  # 3 evaluations, a 3-column Jacobian before each step
    assert capped.cost > fine.cost
    assert lsq.soft_l1(fine.f, 1.0)[0] == pytest.approx(fine.cost)


def test_a_batched_jacobian_is_the_one_vector_at_a_time_one():
    """``many`` (k parameter vectors at once) gives the Jacobian of the P shifted vectors in
    one call, and the fit the same floats as one vector at a time."""
    residuals, _ = circle_problem()
    batches = []

    def many(rows: np.ndarray) -> np.ndarray:
        batches.append(rows.shape)
        return np.stack([residuals(r) for r in rows])

    p0 = np.array([30.0, 0.0, 10.0])
    lower, upper = np.array([-np.inf, -np.inf, 0.0]), np.array([np.inf, np.inf, 24.0])
    one = lsq.solve(residuals, p0, lower, upper, 1.0, max_nfev=50, ftol=1e-10, want_jac=True)
    both = lsq.solve(
        residuals, p0, lower, upper, 1.0, max_nfev=50, ftol=1e-10, want_jac=True, many=many
    )
    assert batches and set(batches) == {(3, 3)}  # the Jacobians' evaluations, each one call
    assert one.x.tobytes() == both.x.tobytes() and one.cost == both.cost
    assert one.jac is not None and both.jac is not None
    assert one.jac.tobytes() == both.jac.tobytes() and both.jac.flags.c_contiguous

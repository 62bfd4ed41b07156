"""Fourier-Bessel transform speed, one core, side by side in one run.

Per image at 1000 x 1000 and 2000 x 2000 (N = K = 32, beam centre in the middle, disk
inscribed), interleaved repetitions, medians of wall and CPU time:

* scattertag ``transform``: full disk ("project"), and 25 % masked ("fit": cached
  Cholesky of the normal equations, and conjugate gradients);
* a straightforward implementation of the same expansion: ``map_coordinates`` onto a
  pixel-resolution polar grid (spline order 3, scipy's default, and order 1), FFT over
  angle, trapezoid Hankel sums with a precomputed Bessel table;
* pyFAI ``integrate2d`` (500 radial x 360 azimuthal bins) of the same image.

Also: set-up times, operator memory, relative errors on a band-limited image, and the
cost of ``ViewMaker.__call__`` on a 1000 x 1000 uint32 frame with module gaps.

    python benchmarks/bench_fourier_bessel.py [--sizes 1000 2000] [--repeats 5]
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core, set before numpy is imported

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from scipy.ndimage import map_coordinates  # noqa: E402
from scipy.special import jv  # noqa: E402

from scattertag.features import FourierBessel  # noqa: E402
from scattertag.features.views import ViewMaker, ViewSpec  # noqa: E402
from scattertag.geometry import Geometry  # noqa: E402

N = K = 32


class Straightforward:
    """map_coordinates onto a polar grid (dr = 1 px, dtheta = 1 / R), FFT over theta, Hankel sum."""

    def __init__(self, fb: FourierBessel, order: int) -> None:
        R = fb.radius
        self.order = order
        self.r = np.arange(0.5, R, 1.0)
        self.n_theta = int(np.ceil(2 * np.pi * R))
        theta = 2 * np.pi * np.arange(self.n_theta) / self.n_theta
        cx, cy = fb.center
        self.coords = np.array(
            [cy + self.r[:, None] * np.sin(theta), cx + self.r[:, None] * np.cos(theta)]
        )
        # table[n, k, i] = conj psi radial part * r dr dtheta
        self.table = np.stack(
            [jv(n, np.outer(fb.j[n], self.r) / R) * fb.norm[n][:, None] for n in range(N + 1)]
        )
        self.table *= self.r * (2 * np.pi / self.n_theta)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        polar = map_coordinates(image, self.coords, order=self.order, mode="constant")
        F = np.fft.rfft(polar, axis=1)[:, : N + 1]  # (radii, N+1): sum_theta f e^{-i n theta}
        return np.einsum("nki,in->nk", self.table, F)


def pyfai_cake(shape: tuple[int, int], fb: FourierBessel):
    """pyFAI integrate2d of the frame about the same centre, or None when pyFAI is missing."""
    try:
        from pyFAI.integrator.azimuthal import AzimuthalIntegrator
    except ImportError:
        return None
    pixel = 75e-6
    cx, cy = fb.center
    ai = AzimuthalIntegrator(
        dist=0.5,
        poni1=(cy + 0.5) * pixel,
        poni2=(cx + 0.5) * pixel,
        pixel1=pixel,
        pixel2=pixel,
        wavelength=1e-10,
    )
    return lambda image: ai.integrate2d(image, 500, 360, unit="r_mm")


def band_limited(
    fb: FourierBessel, rng: np.random.Generator, modes: int = 12
) -> tuple[np.ndarray, np.ndarray]:
    """An image of ``modes`` random basis functions (and the slowest, fastest); its coefficients."""
    a = np.zeros((N + 1, K), complex)
    picks = rng.choice(a.size, modes, replace=False).tolist() + [0, a.size - 1]
    a.flat[picks] = rng.normal(size=len(picks)) + 1j * rng.normal(size=len(picks))
    a[0] = a[0].real
    return fb.reconstruct(a), a  # reconstruct is accurate to ~5e-4, enough to compare methods


def masked(shape: tuple[int, int], fb: FourierBessel) -> np.ndarray:
    """25 % of the disk masked: a beamstop wedge and module gaps."""
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    theta = np.arctan2(y - fb.center[1], x - fb.center[0])
    scale = shape[0] / 256
    return (
        (np.abs(np.angle(np.exp(1j * (theta - 1.0)))) > 0.1 * np.pi)
        & (x % int(40 * scale) >= 4 * scale)
        & (y % int(50 * scale) >= 4 * scale)
    )


def grid(polar) -> str:
    """Size and spline degree of a polar grid, e.g. '246 x 336 linear'."""
    return f"{len(polar.nodes)} x {polar.n_theta} {'linear' if polar.degree == 1 else 'cubic'}"


def timed(fn, *args) -> np.ndarray:
    """(wall, CPU) seconds of one call; CPU time (all threads) is less inflated by other load."""
    t, c = time.perf_counter(), time.process_time()
    fn(*args)
    return np.array([time.perf_counter() - t, time.process_time() - c])


def bench_size(size: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    shape = (size, size)
    t0 = time.perf_counter()
    fb = FourierBessel(shape, ((size - 1) / 2, (size - 1) / 2), size / 2, N, K)
    setup = time.perf_counter() - t0
    cg = FourierBessel(shape, fb.center, fb.radius, N, K, dense_limit=0)
    image, a_true = band_limited(fb, rng)
    noisy = rng.poisson(100, shape).astype(np.float32)
    mask = masked(shape, fb)
    t0 = time.perf_counter()
    fb.transform(noisy, mask=mask)  # assemble and factorise the normal equations of this mask
    factorise = time.perf_counter() - t0
    naive3, naive1 = Straightforward(fb, 3), Straightforward(fb, 1)
    cake = pyfai_cake(shape, fb)
    methods = {
        "scattertag project (full disk)": lambda im: fb.transform(im),
        "scattertag fit, 25% masked (Cholesky)": lambda im: fb.transform(im, mask=mask),
        "scattertag fit, 25% masked (CG)": lambda im: cg.transform(im, mask=mask),
        "map_coordinates order 3 + FFT": naive3,
        "map_coordinates order 1 + FFT": naive1,
    }
    if cake is not None:
        methods["pyFAI integrate2d 500x360"] = cake
    for fn in methods.values():
        fn(noisy)  # warm caches (pyFAI builds its sparse engine, CG its polar Gram)
    times = {name: [] for name in methods}
    for _ in range(repeats):
        for name, fn in methods.items():
            times[name].append(timed(fn, noisy))
    med = {name: np.median(t, axis=0) for name, t in times.items()}  # (wall, CPU)
    base = med["scattertag project (full disk)"]
    print(
        f"\n== {size} x {size}, N = K = {N}, R = {fb.radius:g}, {fb.pixels.size} disk pixels, "
        f"polar grids: project {grid(fb.fast)}, fit {grid(fb.exact)}; load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    print(
        f"set-up: operator {setup:.2f} s ({fb.operator_bytes / 2**20:.0f} MiB), "
        f"fit factorisation for one mask {factorise:.2f} s"
    )
    for name, t in med.items():
        print(
            f"  {name:40s} wall {1e3 * t[0]:8.1f} ms {t[0] / base[0]:7.2f} x project   "
            f"CPU {1e3 * t[1]:8.1f} ms {t[1] / base[1]:7.2f} x project"
        )
    for ref in (
        "map_coordinates order 3 + FFT",
        "map_coordinates order 1 + FFT",
        "pyFAI integrate2d 500x360",
    ):
        if ref in med:
            wall, cpu = med[ref] / base
            print(f"  median ratio {ref} / scattertag project: wall {wall:.1f}, CPU {cpu:.1f}")
    errors = {
        "project, full disk": fb.transform(image),
        "fit (reg 1e-3), 25% masked": fb.transform(image, mask=mask),
        "project, 25% masked (zero-filled)": fb.transform(image, mask=mask, method="project"),
        "map_coordinates order 3": naive3(image),
        "map_coordinates order 1": naive1(image),
    }
    for name, a in errors.items():
        print(
            f"  relative error {name:36s} {np.linalg.norm(a - a_true) / np.linalg.norm(a_true):.1e}"
        )


def bench_view_maker(repeats: int) -> None:
    rng = np.random.default_rng(1)
    shape = (1000, 1000)
    geometry = Geometry(shape, (120.0, 880.0))
    mask = np.ones(shape, bool)
    mask[:, 487:494] = False  # Pilatus-like module gaps
    mask[195:212, :] = False
    mask[407:424, :] = False
    y, x = np.mgrid[0:1000, 0:1000]
    r = np.hypot(x - 120.0, y - 880.0)
    counts = rng.poisson(1e4 * np.exp(-r / 150) + 300 * np.exp(-(((r - 400) / 8) ** 2)) + 3).astype(
        np.uint32
    )
    t0 = time.perf_counter()
    maker = ViewMaker(ViewSpec(), geometry, mask)
    setup = time.perf_counter() - t0
    times = [timed(maker, counts, mask)[0] for _ in range(repeats)]
    print(
        "\n== ViewMaker (default ViewSpec) on a 1000 x 1000 uint32 frame with gaps, beam near a "
        "corner"
    )
    print(
        f"set-up {setup:.2f} s; call median {1e3 * np.median(times):.1f} ms (min "
        f"{1e3 * min(times):.1f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for size in args.sizes:
        bench_size(size, args.repeats)
    bench_view_maker(max(args.repeats, 10))


if __name__ == "__main__":
    main()

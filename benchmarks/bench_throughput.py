"""Archive and beamline throughput, side by side in one run (medians and ratios).

Sections (``--sections``, all by default):

* ``setup``: one new geometry at 1000 x 1000 with the shipped view spec: the normal
  matrix of the Fourier-Bessel fit assembled from operator columns (the former method)
  vs on the polar grid in angular modes (now), a whole ViewMaker cold and loaded from the
  on-disk set-up cache, and each step of a cold set-up: the FB operator, the normal
  matrix, its Cholesky factor and the factor's panels, the cake's pixel order, writing
  the cache entry to a new file;
* ``frame``: one frame's views (ViewMaker call) with a fixed mask vs a mask that changes
  every frame (a 40 x 40 NaN block that moves, hot pixels; the module gap given with each
  frame, then as the static mask), the unfamiliarity score
  predict adds to each row, and the cake vs pyFAI's CSR integrator (no pixel splitting)
  on the same bins, block sums by reshaping vs by sparse products;
* ``threads``: frames/s of one frame's views in 1 vs 2 threads of one process (as
  ``serve`` prepares), with the fit's per-frame solve by blocked BLAS products (now) vs
  SciPy's ``cho_solve`` (before: LAPACK through f2py holds the GIL, so threads took turns),
  and that solve's CPU ms either way;
* ``predict``: ``scattertag.predict`` end to end on uint32 TIFFs of one geometry
  (read, views, model, CSV), default options (one worker per usable core) vs
  ``workers=0``, next to fabio reading alone (its share of predict's CPU time);
* ``geometries``: ``--geometries`` files, each with its own beam centre (given in a
  manifest, the rings drawn about it): first run (empty set-up cache), then the re-run
  (warm cache) and as many files of one geometry taking turns (medians, ratio);
* ``dask``: LocalClusters of 1 and of 2 single-threaded worker processes (as
  ``--dask local`` starts them) and of 2 with Dask's default settings (profiler, monitors),
  taking turns: frames/s, the CPU of this process (client, scheduler, nannies), the
  workers' busy share of the wall time, and whether the CSV equals the local run's.

Wall-clock figures depend on the machine's load (printed); CPU ms per frame (all
processes and threads) much less so, and ``cores x 1000 / CPU ms`` is the rate the same
work reaches on that many idle cores. Peak resident memory is printed at the end.

    python benchmarks/bench_throughput.py --files 40 --geometries 200
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn) -> tuple[float, float]:
    """(wall, CPU) seconds of ``fn()``; CPU counts child processes once they have exited."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    fn()
    return time.perf_counter() - wall, cpu_seconds() - cpu


def thread_cpu(fn, repeats: int) -> float:
    """Median CPU ms of ``fn()`` in this thread (no children)."""
    out = []
    for _ in range(repeats):
        t = time.thread_time()
        fn()
        out.append(time.thread_time() - t)
    return 1e3 * statistics.median(out)


def load() -> str:
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def write_tiffs(
    folder: Path, size: int, count: int, seed: int = 0, centres: list | None = None
) -> list[Path]:
    """``count`` uint32 Poisson ring TIFFs of size x size about a corner beam centre, or
    about ``centres[i]`` (x, y) for file i."""
    from fabio.tifimage import TifImage

    rng = np.random.default_rng(seed)
    rows, cols = np.indices((size, size))
    r = np.hypot(cols - 0.1 * size, rows - 0.85 * size)
    base = 5 + 1e4 * (1 + r) ** -1.5
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        if centres is not None:
            r = np.hypot(cols - centres[i][0], rows - centres[i][1])
            base = 5 + 1e4 * (1 + r) ** -1.5
        q0 = size * rng.uniform(0.2, 0.6)
        lam = base + 200 * np.exp(-0.5 * ((r - q0) / (0.01 * size)) ** 2)
        path = folder / f"frame_{size}_{i:04d}.tif"
        TifImage(data=rng.poisson(lam).astype(np.uint32)).write(str(path))
        paths.append(path)
    return paths


def spec_and_model():
    """The shipped tagger's view spec and its (None = shipped) model folder."""
    from scattertag.features.views import ViewSpec
    from scattertag.models import load_model

    _, card = load_model(None)
    return ViewSpec.from_dict(card.view_spec), None


def bench_setup(repeats: int) -> None:
    import scipy.linalg

    from scattertag.features.cache import SetupCache
    from scattertag.features.cholesky import Cholesky
    from scattertag.features.fourier_bessel import FLOAT32_REG, FourierBessel
    from scattertag.features.views import Cake, RadialAxis, ViewMaker
    from scattertag.geometry import Geometry

    spec, _ = spec_and_model()
    rows: dict[str, list[float]] = {}

    def step(name: str, fn, *args, **kw):
        t = time.thread_time()
        out = fn(*args, **kw)
        rows.setdefault(name, []).append(time.thread_time() - t)
        return out

    def columns(normal, n: int) -> np.ndarray:
        return np.concatenate([normal(np.eye(n)[j : j + 256]) for j in range(0, n, 256)])

    with tempfile.TemporaryDirectory() as tmp:
        cache = SetupCache(tmp)
        axis = RadialAxis(spec.cake_r_min * 1000, spec.cake_r_max * 1000, spec.cake_radii)
        for i in range(repeats):
            geometry = Geometry((1000, 1000), (100.0 + 7 * i, 850.0 - 5 * i))
            cold = "ViewMaker, cold (its entry written by a thread)"
            maker = step(cold, ViewMaker, spec, geometry, cache=cache)
            cache.flush()  # the entry on disk before the warm set-up and the next step
            step("ViewMaker, from the on-disk cache", ViewMaker, spec, geometry, cache=cache)
            fb = maker.fb
            valid = np.ones(fb.shape[0] * fb.shape[1], bool)
            seen = valid[fb.pixels]
            n = fb.n_unknowns
            normal = fb._normal_operator(valid)
            G0 = step("normal matrix from operator columns (before)", columns, normal, n)
            # the steps of a cold set-up, each on its own
            shape, center, radius = fb.shape, fb.center, fb.radius
            orders, zeros = spec.orders, spec.zeros
            step(
                "  FB operator (disk pixels, spread matrix)",
                FourierBessel,
                shape,
                center,
                radius,
                orders,
                zeros,
            )
            polar = fb._polar(fb.pixels[seen])
            G = step(
                "  normal matrix on the polar grid (now)",
                fb.exact.normal_matrix,
                *polar,
                full=False,
            )
            # as the fit factorises: float32 from FLOAT32_REG (the shipped 1e-2) on
            A = G.astype(np.float32 if spec.fit_reg >= FLOAT32_REG else np.float64)
            A[np.diag_indices_from(A)] += A.dtype.type(spec.fit_reg)
            factor = scipy.linalg.cho_factor
            c = step(
                "  Cholesky factor", factor, A.T, lower=True, overwrite_a=True, check_finite=False
            )
            step("  its panels (inverses of the diagonal blocks)", Cholesky, *c)
            beam = geometry.beam_center
            step("  cake pixel order and cells", Cake, geometry.shape, beam, spec.cake_angles, axis)
            step("  writing the entry to a new file", cache.store, f"copy{i}", maker.state())
            assert np.allclose(np.triu(G), np.triu(G0), atol=1e-5 * np.abs(G0).max())
    med = {k: 1e3 * statistics.median(v) for k, v in rows.items()}
    print(f"\n== set-up of one geometry, 1000 x 1000, {n} unknowns; CPU ms, median; {load()}")
    for k, v in med.items():
        print(f"  {k:48s} {v:8.0f} ms")
    before, now = (med[k] for k in rows if k.lstrip().startswith("normal matrix"))
    cold, warm = (med[k] for k in rows if k.startswith("ViewMaker"))
    print(
        f"  ratio operator columns / polar grid {before / now:.1f}x, "
        f"cold / cached {cold / warm:.1f}x"
    )


def interleaved(runs: dict, repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median (wall s, CPU s) of each run, ``repeats`` rounds taking every run in turn."""
    wall: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for k, fn in runs.items():
            w, c = timed(fn)
            wall[k].append(w)
            cpu[k].append(c)
    return (
        {k: statistics.median(v) for k, v in wall.items()},
        {k: statistics.median(v) for k, v in cpu.items()},
    )


def bench_frame(repeats: int) -> None:
    spec, _ = spec_and_model()
    for size in (1000, 2000):
        frame_at(size, spec, repeats)


def frame_at(size: int, spec, repeats: int) -> None:
    """One frame's views at ``size``: fixed vs moving mask, cake vs pyFAI, block sums."""
    from scattertag.features.views import ViewMaker, area_weights, block_sum
    from scattertag.geometry import Geometry

    rng = np.random.default_rng(size)
    geometry = Geometry((size, size), (0.1 * size, 0.85 * size))
    maker = ViewMaker(spec, geometry)
    rows, cols = np.indices((size, size))
    r = np.hypot(cols - 0.1 * size, rows - 0.85 * size)
    counts = rng.poisson(20 + 1e4 / (1 + r)).astype(np.uint32)
    fixed = np.ones((size, size), bool)
    fixed[:, size // 2 : size // 2 + 7] = False  # a module gap
    masks = []
    for _ in range(2 * repeats):
        m = fixed.copy()
        y, x = rng.integers(0, size - 40, 2)
        m[y : y + 40, x : x + 40] = False  # a NaN block / zinger patch, somewhere new
        m[rng.integers(0, size, 20), rng.integers(0, size, 20)] = False  # hot pixels
        masks.append(m)
    maker(counts, fixed)
    it = iter(masks)
    t_fixed = thread_cpu(lambda: maker(counts, fixed), repeats)
    t_moving = thread_cpu(lambda: maker(counts, next(it)), repeats)
    static = ViewMaker(spec, geometry, fixed)  # the gap as the static mask (predict --mask)
    static(counts)
    it = iter(masks)
    t_static = thread_cpu(lambda: static(counts), repeats)
    t_static_moving = thread_cpu(lambda: static(counts, next(it)), repeats)
    total = counts.astype(np.float32)
    w = area_weights(size, size // maker.block)
    t_block = thread_cpu(lambda: block_sum(total, maker.block), repeats)
    t_sparse = thread_cpu(lambda: np.asarray(w @ np.ascontiguousarray((w @ total).T)).T, repeats)
    padded, valid = maker._prepare(counts, fixed)
    t_cake = thread_cpu(lambda: maker._image(padded, valid), repeats)
    order32 = maker.cake.order.astype(np.int32)  # the cake's gather as it was (int32 indices)
    t_gather32 = thread_cpu(lambda: np.take(total, order32), repeats)
    t_gather = thread_cpu(lambda: np.take(total, maker.cake.order), repeats)
    t_unfamiliar = thread_cpu(lambda: maker.unfamiliarity(padded, valid), repeats)
    t_pyfai = pyfai_cake_ms(geometry, spec, counts, ~fixed, repeats)
    print(f"\n== one frame's views at {size} x {size} (CPU ms, median of {repeats}); {load()}")
    print(
        f"  fixed mask {t_fixed:.1f} ms, mask changing every frame {t_moving:.1f} ms: "
        f"ratio {t_moving / t_fixed:.2f} (goal <= 2)"
    )
    print(
        f"  the gap as the static mask: fixed {t_static:.1f} ms, changing every frame "
        f"{t_static_moving:.1f} ms: ratio {t_static_moving / t_static:.2f}"
    )
    print(f"  unfamiliarity score (predict's extra column) {t_unfamiliar:.1f} ms")
    line = f"  cake (4 channels incl. max) {t_cake:.1f} ms"
    if t_pyfai is not None:
        line += f"; pyFAI integrate2d_ng (no split, CSR, cython) {t_pyfai:.1f} ms"
        line += f", ratio pyFAI / ours {t_pyfai / t_cake:.2f}"
    print(line)
    print(
        f"  the cake's gather (np.take) with intp indices {t_gather:.1f} ms vs int32 "
        f"{t_gather32:.1f} ms: {t_gather32 / t_gather:.2f}x"
    )
    print(
        f"  block sums by reshaping {t_block:.1f} ms vs sparse products {t_sparse:.1f} ms: "
        f"{t_sparse / t_block:.1f}x"
    )


def pyfai_cake_ms(geometry, spec, counts, excluded, repeats: int) -> float | None:
    """CPU ms of pyFAI's 2D integration (no splitting, CSR engine) on the cake's bins."""
    try:
        from pyFAI.integrator.azimuthal import AzimuthalIntegrator
    except ImportError:
        return None
    ai = AzimuthalIntegrator(
        dist=geometry.distance,
        poni1=(geometry.beam_center[1] + 0.5) * geometry.pixel_size,
        poni2=(geometry.beam_center[0] + 0.5) * geometry.pixel_size,
        pixel1=geometry.pixel_size,
        pixel2=geometry.pixel_size,
        wavelength=geometry.wavelength * 1e-10,
    )
    kw = {
        "npt_rad": spec.cake_radii,
        "npt_azim": spec.cake_angles,
        "unit": "r_mm",
        "mask": excluded,
        "method": ("no", "csr", "cython"),
    }
    ai.integrate2d_ng(counts, **kw)  # builds its CSR engine
    return thread_cpu(lambda: ai.integrate2d_ng(counts, **kw), repeats)


@contextmanager
def scipy_solves():
    """Inside: the fit's Cholesky solves by SciPy's LAPACK wrappers, as before (GIL held)."""
    import scipy.linalg

    from scattertag.features.cholesky import Cholesky

    saved = Cholesky.solve, Cholesky.whiten

    def factor(self) -> np.ndarray:
        """The whole (n, n) R^T, rebuilt once per factor (SciPy reads the square; a view in
        Fortran order, which LAPACK takes without a copy)."""
        if "_square" not in self.__dict__:
            self.__dict__["_square"] = self.R.T
        return self.__dict__["_square"]

    def solve(self, b):
        return scipy.linalg.cho_solve((factor(self), True), b, check_finite=False)

    def whiten(self, b):
        return scipy.linalg.solve_triangular(
            factor(self), b, trans="N", lower=True, check_finite=False
        )

    Cholesky.solve, Cholesky.whiten = solve, whiten  # type: ignore[method-assign]
    try:
        yield
    finally:
        Cholesky.solve, Cholesky.whiten = saved  # type: ignore[method-assign]


def bench_threads(sizes: list[int], repeats: int) -> None:
    spec, _ = spec_and_model()
    for size in sizes:
        threads_at(size, spec, repeats)


def threads_at(size: int, spec, repeats: int) -> None:
    """Views in 1 vs 2 threads of one process (the service's pool), blocked vs SciPy solves."""
    import copy
    import threading

    from scattertag.features.views import ViewMaker
    from scattertag.geometry import Geometry

    rng = np.random.default_rng(size)
    rows, cols = np.indices((size, size))
    r = np.hypot(cols - 0.1 * size, rows - 0.85 * size)
    frames = [rng.poisson(20 + 1e4 / (1 + r)).astype(np.uint32) for _ in range(4)]
    maker = ViewMaker(spec, Geometry((size, size), (0.1 * size, 0.85 * size)))
    maker(frames[0])
    makers = [maker, copy.deepcopy(maker)]  # one a thread, as serve's preparers
    count = max(8, int(4e7 / size**2))  # frames per thread and measurement

    def run(m) -> None:
        for i in range(count):
            m(frames[i % len(frames)])

    def one() -> None:
        run(makers[0])

    def two() -> None:
        workers = [threading.Thread(target=run, args=(m,)) for m in makers]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    factor = maker.fb._cholesky(np.ones(size * size, bool), spec.fit_reg)
    b = rng.normal(size=(maker.fb.n_unknowns, 1))
    solve_ms: dict[str, list[float]] = {}
    walls: dict[str, list[float]] = {}
    for _ in range(repeats):  # interleaved: the load changes under us
        for solver in ("blocked", "scipy"):
            with scipy_solves() if solver == "scipy" else contextlib.nullcontext():
                ms = thread_cpu(lambda: factor.solve(b), 5)
                solve_ms.setdefault(solver, []).append(ms)
                for threads, fn in ((1, one), (2, two)):
                    wall, _ = timed(fn)
                    walls.setdefault(f"{solver} {threads}", []).append(wall / (threads * count))
    rate = {k: 1 / statistics.median(v) for k, v in walls.items()}
    cost = {k: statistics.median(v) for k, v in solve_ms.items()}
    print(
        f"\n== views at {size} x {size} in threads of one process ({maker.fb.n_unknowns} "
        f"unknowns; frames/s, median of {repeats}); {load()}"
    )
    for solver, name in (("blocked", "blocked BLAS products (now)"), ("scipy", "scipy cho_solve")):
        one_, two_ = rate[f"{solver} 1"], rate[f"{solver} 2"]
        print(
            f"  solve by {name:27s} {cost[solver]:5.2f} CPU ms; 1 thread {one_:5.1f}, "
            f"2 threads {two_:5.1f} frames/s: {two_ / one_:.2f}x"
        )
    print(
        f"  2 threads, blocked / scipy: {rate['blocked 2'] / rate['scipy 2']:.2f}x; "
        f"solve CPU scipy / blocked {cost['scipy'] / cost['blocked']:.2f}x"
    )


def run_predict(files, beam, workers, out, **kw):
    import scattertag

    return scattertag.predict(files, beam_center=beam, workers=workers, out=out, **kw)


def bench_predict(sizes: list[int], count: int, repeats: int, tmp: Path) -> dict:
    from scattertag.prediction.pipeline import Predictor

    predictor = Predictor(None)
    rates: dict = {}
    for size in sizes:
        rates[size] = predict_at(size, count, repeats, predictor, tmp)
        if size == min(sizes):
            files = sorted((tmp / f"one{size}").glob("*.tif"))
            bench_moving_mask(files, (0.1 * size, 0.85 * size), repeats, predictor, tmp)
    return rates


def predict_at(size: int, count: int, repeats: int, predictor, tmp: Path) -> float:
    """CPU ms per frame of predict with the default options on one geometry at ``size``."""
    import fabio

    from scattertag.parallel import usable_cores

    files = write_tiffs(tmp / f"one{size}", size, count)
    beam = (0.1 * size, 0.85 * size)
    run_predict(files[:2], beam, 0, tmp / "warm.csv", model=predictor)  # set-up -> cache
    default = "predict, defaults (workers = cores)"
    runs = {
        "fabio read only": lambda: [fabio.open(str(f)).data.shape for f in files],
        default: lambda: run_predict(files, beam, None, tmp / "p.csv", model=predictor),
        "predict, workers=0": lambda: run_predict(files, beam, 0, tmp / "p.csv", model=predictor),
    }
    wall, cpu = interleaved(runs, repeats)
    print(
        f"\n== predict end to end, one geometry, {count} uint32 TIFFs {size} x {size}, "
        f"median of {repeats}; {load()}, {usable_cores()} usable"
    )
    read = "fabio read only"
    for k in runs:
        ms = 1e3 * cpu[k] / count
        share = "" if k == read else f", reading {cpu[read] / cpu[k]:.0%} of the CPU"
        print(
            f"  {k:36s} {count / wall[k]:6.1f} frames/s wall, {ms:6.1f} CPU ms/frame "
            f"-> {2000 / ms:5.1f} frames/s on 2 idle cores{share}"
        )
    return 1e3 * cpu[default] / count


def bench_moving_mask(files: list[Path], beam, repeats: int, predictor, tmp: Path) -> None:
    """End to end: float32 frames with a 40 x 40 NaN block that moves every frame vs none."""
    import fabio
    from fabio.tifimage import TifImage

    rng = np.random.default_rng(5)
    clean, holed = [], []
    for i, f in enumerate(files):
        data = fabio.open(str(f)).data.astype(np.float32)
        clean.append(tmp / f"clean_{i:04d}.tif")
        TifImage(data=data).write(str(clean[-1]))
        y, x = rng.integers(0, data.shape[0] - 40, 2)
        data[y : y + 40, x : x + 40] = np.nan
        holed.append(tmp / f"holed_{i:04d}.tif")
        TifImage(data=data).write(str(holed[-1]))
    runs = {
        "fixed mask": lambda: run_predict(clean, beam, None, tmp / "c.csv", model=predictor),
        "mask changing every frame": lambda: run_predict(
            holed, beam, None, tmp / "h.csv", model=predictor
        ),
    }
    wall, cpu = interleaved(runs, repeats)
    n = len(files)
    print(f"  float32 frames, predict defaults, end to end ({load()}):")
    for k in runs:
        print(f"    {k:28s} {n / wall[k]:6.1f} frames/s wall, {1e3 * cpu[k] / n:6.1f} CPU ms/frame")
    moving, fixed = "mask changing every frame", "fixed mask"
    print(
        f"    ratio changing / fixed: wall {wall[moving] / wall[fixed]:.2f}, "
        f"CPU {cpu[moving] / cpu[fixed]:.2f} (goal <= 2)"
    )


def bench_geometries(count: int, repeats: int, tmp: Path) -> None:
    """First run (empty set-up cache), then ``repeats`` rounds of the warm re-run and of
    the same number of files of one geometry (set up once before), taking turns."""
    import scattertag
    from scattertag.prediction.pipeline import Predictor

    predictor = Predictor(None)
    size = 1000
    rng = np.random.default_rng(2)
    centres = [(rng.uniform(50, 950), rng.uniform(50, 950)) for _ in range(count)]
    files = write_tiffs(tmp / "many", size, count, seed=1, centres=centres)
    manifest = tmp / "many.csv"
    manifest.write_text(
        "path,beam_x,beam_y\n"
        + "".join(f"{f},{x:.2f},{y:.2f}\n" for f, (x, y) in zip(files, centres))
    )
    beam = centres[0]
    same_centre = write_tiffs(tmp / "many-one", size, count, seed=1, centres=[beam] * count)
    os.environ["SCATTERTAG_CACHE"] = str(tmp / "setup-cache-many")
    print(f"\n== {count} files at 1000 x 1000, each with its own beam centre; {load()}")

    def many(out: Path) -> None:
        scattertag.predict(manifest=manifest, workers=None, model=predictor, out=out)

    def one() -> None:
        scattertag.predict(
            same_centre, beam_center=beam, workers=None, model=predictor, out=tmp / "g1.csv"
        )

    w, c = timed(lambda: many(tmp / "m1.csv"))
    ms = 1e3 * c / count
    print(
        f"  {'first run (empty set-up cache)':36s} {count / w:6.1f} frames/s wall, "
        f"{ms:6.1f} CPU ms/frame -> {2000 / ms:5.1f} frames/s on 2 idle cores"
    )
    one()  # its set-up, and the workers' imports, out of the timing
    warm, single = "re-run (warm cache)", "one geometry, same files count"
    wall, cpu = interleaved({warm: lambda: many(tmp / "m2.csv"), single: one}, repeats)
    print(f"  then {repeats} rounds taking turns, medians ({load()}):")
    for k in (warm, single):
        ms = 1e3 * cpu[k] / count
        print(
            f"  {k:36s} {count / wall[k]:6.1f} frames/s wall, {ms:6.1f} CPU ms/frame "
            f"-> {2000 / ms:5.1f} frames/s on 2 idle cores"
        )
    print(
        f"  warm re-run / one geometry: wall {wall[warm] / wall[single]:.2f}, "
        f"CPU {cpu[warm] / cpu[single]:.2f} (goal <= 1.5)"
    )
    same = (tmp / "m1.csv").read_bytes() == (tmp / "m2.csv").read_bytes()
    cache = sum(p.stat().st_size for p in (tmp / "setup-cache-many").glob("*.setup")) / 2**30
    print(f"  re-run CSV identical to first run: {same}; set-up cache {cache:.2f} GiB")


def bench_dask(count: int, repeats: int, tmp: Path) -> None:
    """predict on LocalClusters of 1 and 2 workers (as ``--dask local`` starts them) and of
    2 workers with Dask's default settings, all started and warmed first, taking turns."""
    from distributed import Client, LocalCluster

    import scattertag
    from scattertag.parallel import local_cluster

    files = write_tiffs(tmp / "dask", 1000, count, seed=3)
    beam = (100.0, 850.0)
    scattertag.predict(files, beam_center=beam, workers=0, out=tmp / "local.csv")
    local = (tmp / "local.csv").read_bytes()
    default = "2 workers, Dask's default settings"
    names = {"1 worker": 1, "2 workers": 2, default: 2}
    with contextlib.ExitStack() as stack:
        clusters = {
            "1 worker": stack.enter_context(local_cluster(1)),
            "2 workers": stack.enter_context(local_cluster(2)),
            default: stack.enter_context(
                LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)
            ),
        }
        clients = {k: stack.enter_context(Client(c)) for k, c in clusters.items()}
        for k, c in clusters.items():  # every worker loads the model; the geometry is set up
            scattertag.predict(files[: 2 * names[k]], beam_center=beam, dask=c.scheduler_address)
        runs: dict[str, list[tuple[float, ...]]] = {k: [] for k in clusters}
        same = True
        for _ in range(repeats):
            for k in clusters:
                out = tmp / f"dask{names[k]}.csv"
                wall, cpu, work, busy = dask_run(clients[k], files, beam, out)
                n = names[k]
                runs[k].append(
                    (count / wall, 1e3 * cpu / count, 1e3 * work / count, busy / (n * wall))
                )
                same = same and out.read_bytes() == local
    print(
        f"\n== Dask LocalCluster, {count} files 1000 x 1000, workers warm, {repeats} rounds "
        f"taking turns, medians; {load()}"
    )
    rate = {k: statistics.median(r[0] for r in v) for k, v in runs.items()}
    for k, v in runs.items():
        client, work, busy = (statistics.median(r[i] for r in v) for i in (1, 2, 3))
        print(
            f"  {k:36s} {rate[k]:6.1f} frames/s; CPU ms/frame: client + scheduler "
            f"{client:4.1f}, workers {work:5.1f}; workers busy {busy:4.0%} of the wall time"
        )
    print(
        f"  2 workers / 1 worker: {rate['2 workers'] / rate['1 worker']:.2f} (goal >= 1.7); "
        f"with Dask's default settings {rate[default] / rate['1 worker']:.2f}"
    )
    print(f"  CSV identical to a local run, every run: {same}")


def dask_run(client, files: list[Path], beam, out: Path) -> tuple[float, float, float, float]:
    """(wall s, CPU s of this process: client, scheduler, nannies; CPU s of the worker
    processes; seconds the workers spent in tasks) of predict on ``client``'s cluster."""
    import psutil
    from distributed import get_task_stream

    import scattertag

    workers = [psutil.Process(pid) for pid in client.run(os.getpid).values()]

    def work() -> float:
        return sum(sum(p.cpu_times()[:2]) for p in workers)

    address = client.scheduler.address
    before = work()
    with get_task_stream(client) as stream:
        wall, cpu = timed(
            lambda: scattertag.predict(files, beam_center=beam, dask=address, out=out)
        )
    spent = work() - before
    busy = sum(
        span["stop"] - span["start"]
        for task in stream.data
        for span in task["startstops"]
        if span["action"] == "compute"
    )
    return wall, cpu, spent, busy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sections",
        nargs="+",
        default=["setup", "frame", "threads", "predict", "geometries", "dask"],
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--geometries", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from scattertag.parallel import limit_threads

    limit_threads(1)  # the in-process sections measure one single-threaded worker's work
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ.setdefault("SCATTERTAG_CACHE", str(tmp / "setup-cache"))
        if "setup" in args.sections:
            bench_setup(args.repeats)
        if "frame" in args.sections:
            bench_frame(max(5, args.repeats))
        if "threads" in args.sections:
            bench_threads(args.sizes, max(3, args.repeats))
        if "predict" in args.sections:
            bench_predict(args.sizes, args.files, args.repeats, tmp)
        if "geometries" in args.sections:
            bench_geometries(args.geometries, args.repeats, tmp)
        if "dask" in args.sections:
            bench_dask(args.files, args.repeats, tmp)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**10
    print(
        f"\npeak resident memory: this process {own:.0f} MiB, largest child process {kids:.0f} MiB"
    )


if __name__ == "__main__":
    main()

"""Tagging throughput end to end: uint32 TIFF files -> CSV, next to merely reading them.

For each frame size, ``--files`` Poisson ring images are written as uint32 TIFF, then timed
side by side (median of ``--repeats`` rounds, images/s):

* ``fabio read``: ``fabio.open(f).data`` on every file, nothing else (the floor);
* ``predict, workers=N``: ``scattertag.predict(files, workers=N, out=csv)`` end to end
  (read, mask, image view + Fourier-Bessel coefficients, joint model, CSV);

and the in-process stages one by one on the same files, to say where the time goes:
read (scattertag's reader), preprocess (mask + ViewMaker), model (batched), write (CSV).
The model is the shipped tagger if it exists, else a randomly initialised joint model of
the default architecture (printed).

    python benchmarks/bench_predict.py --sizes 1000 2000 --files 200 --workers 0 2
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def write_files(folder: Path, size: int, count: int) -> list[Path]:
    """``count`` uint32 TIFFs of size x size: rings about a corner beam centre, Poisson noise."""
    from fabio.tifimage import TifImage

    rng = np.random.default_rng(0)
    rows, cols = np.indices((size, size))
    r = np.hypot(cols - 0.1 * size, rows - 0.85 * size)
    paths = []
    for i in range(count):
        q0 = size * rng.uniform(0.2, 0.6)
        lam = 5 + 1e4 * (1 + r) ** -1.5 + 200 * np.exp(-0.5 * ((r - q0) / (0.01 * size)) ** 2)
        path = folder / f"frame_{size}_{i:04d}.tif"
        TifImage(data=rng.poisson(lam).astype(np.uint32)).write(str(path))
        paths.append(path)
    return paths


def model_dir(folder: Path) -> tuple[Path | None, str]:
    """The shipped model folder, or a random default joint model saved in ``folder``."""
    from scattertag.features.views import ViewSpec
    from scattertag.models import JointTagger, ModelCard, load_model, save_model
    from scattertag.tags import DEFAULT_VOCABULARY

    try:
        load_model(None)
        return None, "the shipped pretrained tagger"
    except (FileNotFoundError, ValueError):
        pass
    spec = ViewSpec()
    model = JointTagger(
        len(DEFAULT_VOCABULARY), views_shape(spec)[1], in_channels=spec.image_shape[0]
    )  # default
    card = ModelCard(
        view=model.view,
        arch=model.arch,
        backbone="alexnet",
        vocabulary=DEFAULT_VOCABULARY.to_list(),
        view_spec=spec.to_dict(),
        thresholds=[0.5] * len(DEFAULT_VOCABULARY),
    )
    return save_model(model.eval(), card, folder / "model"), f"a random joint model {model.arch}"


def rate(count: int, seconds: list[float]) -> float:
    """images/s of the median round."""
    return count / statistics.median(seconds)


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its finished child processes, s."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def interleaved(runs: dict, repeats: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and CPU seconds of each run, ``repeats`` rounds taking every run in turn.

    Taking turns makes drifting load from other users hit every run alike; CPU seconds
    (all processes, all threads) say what a run costs whatever that load.
    """
    wall: dict[str, list[float]] = {label: [] for label in runs}
    cpu: dict[str, list[float]] = {label: [] for label in runs}
    for _ in range(repeats):
        for label, fn in runs.items():
            start, start_cpu = time.perf_counter(), cpu_seconds()
            fn()
            wall[label].append(time.perf_counter() - start)
            cpu[label].append(cpu_seconds() - start_cpu)
    return wall, cpu


def stages(files: list[Path], predictor, beam: tuple[float, float], batch: int) -> dict[str, float]:
    """Wall and CPU seconds in read / setup / preprocess / model / write, in-process, all files."""
    from scattertag.geometry import GeometryOptions
    from scattertag.io.readers import read_frames
    from scattertag.prediction.prepare import Preparer, Views
    from scattertag.prediction.table import Table

    preparer, options = Preparer(predictor.view_spec), GeometryOptions(beam)
    wall = dict.fromkeys(["read", "setup", "preprocess", "model", "write"], 0.0)
    cpu = dict(wall)
    clock = [time.perf_counter(), time.process_time()]

    def lap(stage: str) -> None:
        now = [time.perf_counter(), time.process_time()]
        wall[stage] += now[0] - clock[0]
        cpu[stage] += now[1] - clock[1]
        clock[:] = now

    views, rows = [], []
    for path in files:
        counts = next(read_frames(path)).counts
        lap("read")
        geometry, _ = options.resolve(counts.shape)
        maker = preparer.maker(geometry, None)  # set up on the first file only
        lap("setup")
        image, coeff = maker(counts)
        views.append(Views(str(path), 0, image, coeff))
        lap("preprocess")
        if len(views) == batch or path == files[-1]:
            rows += predictor.rows(views)
            views = []
            lap("model")
    Table(predictor.vocabulary, rows).to_csv(files[0].parent / "stages.csv")
    lap("write")
    return wall, cpu


def model_layouts(predictor, model: Path | None, batch: int, repeats: int) -> dict[str, float]:
    """ms per image of the model alone: weights in contiguous vs channels-last memory layout,
    batch norms as trained vs folded into the convolutions (as predict runs it)."""
    import torch

    from scattertag.models import load_model

    spec = predictor.view_spec
    coeff = views_shape(spec)[1]
    images = torch.rand(batch, *spec.image_shape)
    coeffs = torch.randn(batch, *coeff)
    trained = load_model(model)[0]
    models = {
        "contiguous": trained.to(memory_format=torch.contiguous_format),
        "channels_last": copy.deepcopy(trained).to(memory_format=torch.channels_last),
        "channels_last, folded": predictor.model,
    }
    with torch.inference_mode():
        runs = {k: (lambda m=m: m(images, coeffs)) for k, m in models.items()}
        for fn in runs.values():
            fn()  # warm-up
        wall, _ = interleaved(runs, repeats)
    return {k: statistics.median(v) / batch * 1e3 for k, v in wall.items()}


def views_shape(spec) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Shapes of the image and coefficient views made with ViewSpec ``spec``."""
    from scattertag.features.views import ViewMaker
    from scattertag.geometry import Geometry

    image, coeff = ViewMaker(spec, Geometry((64, 64), (5.0, 5.0)))(np.ones((64, 64), np.float32))
    return image.shape, coeff.shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import fabio
    import torch

    import scattertag
    from scattertag.prediction.pipeline import Predictor

    print(
        f"torch threads {torch.get_num_threads()}, {args.files} files per size, median of "
        f"{args.repeats}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model, which = model_dir(tmp)
        predictor = Predictor(model)
        print(f"model: {which}; view spec {predictor.view_spec.to_dict()}")
        layouts = model_layouts(predictor, model, args.batch_size, 5)
        print(
            "model alone, ms/image: "
            + ", ".join(f"{k} {v:.1f}" for k, v in layouts.items())
            + f" (channels-last {layouts['contiguous'] / layouts['channels_last']:.2f}x faster;"
            + " batch norms folded into the convolutions "
            + f"{layouts['channels_last'] / layouts['channels_last, folded']:.2f}x faster)"
        )
        for size in args.sizes:
            files = write_files(tmp, size, args.files)
            beam = (0.1 * size, 0.85 * size)
            n = len(files)
            runs = {"fabio read only": lambda fs=files: [fabio.open(str(f)).data for f in fs]}
            for workers in args.workers:
                runs[f"predict, workers={workers}"] = lambda w=workers, fs=files, b=beam: (
                    scattertag.predict(
                        fs,
                        beam_center=b,
                        model=predictor,
                        workers=w,
                        batch_size=args.batch_size,
                        out=tmp / "p.csv",
                    )
                )
            wall, cpu = interleaved(runs, args.repeats)
            read = statistics.median(wall["fabio read only"])
            print(
                f"\n{size} x {size} uint32 TIFF, {n} files; load average {os.getloadavg()[0]:.1f} "
                f"on {os.cpu_count()} cores"
            )
            for label, s in wall.items():
                ms = statistics.median(cpu[label]) / n * 1e3
                share = (
                    ""
                    if label.startswith("fabio")
                    else f"; fabio reading = {read / statistics.median(s):.0%} of the wall time"
                )
                print(
                    f"  {label:24s} {rate(n, s):7.1f} images/s wall, {ms:6.1f} CPU ms/image{share}"
                )
            wall, cpu = stages(files, predictor, beam, args.batch_size)
            total = sum(wall.values())
            print(
                "  in-process stages (wall ms/image, share, CPU ms/image), total "
                f"{total / n * 1e3:.1f} ms = {n / total:.1f} images/s:"
            )
            for k in wall:
                print(
                    f"    {k:10s} {wall[k] / n * 1e3:7.1f} ms {wall[k] / total:4.0%} "
                    f"{cpu[k] / n * 1e3:7.1f} CPU ms"
                )
            for f in files:
                f.unlink()


if __name__ == "__main__":
    main()

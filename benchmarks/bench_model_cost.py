"""What a model's views cost ``scattertag.predict``: models side by side on the same frames.

``--files`` uint32 TIFFs (``--size`` pixels a side, rings and Poisson noise, one beam centre;
``bench_predict.write_files``) are tagged by ``scattertag.predict`` with each model in turn
(its default workers), for ``--repeats`` rounds; the median frames/s and CPU ms a frame (this
process and its workers) are printed side by side, with the load average (the machine is
shared). A model's card decides its views (e.g. the cake's texture channel), so two models
that differ in their view spec differ in what predict computes for every frame.

    python benchmarks/bench_model_cost.py --models shipped OLD_MODEL_DIR --size 1000
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench_predict import write_files
from bench_serve import cpu_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="+", required=True, help="model folders ('shipped': the shipped tagger)"
    )
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()

    import scattertag
    from scattertag.prediction.pipeline import Predictor

    models = {name: Predictor(None if name == "shipped" else name) for name in args.models}
    for name, model in models.items():
        print(f"{name}: image view {model.view_spec.image_shape}")
    beam = (0.1 * args.size, 0.85 * args.size)  # where write_files puts it
    wall: dict[str, list[float]] = {name: [] for name in models}
    cpu: dict[str, list[float]] = {name: [] for name in models}
    with tempfile.TemporaryDirectory() as tmp:
        files = write_files(Path(tmp), args.size, args.files)
        for k in range(args.repeats):
            for name, model in models.items():
                start, cpu_start = time.perf_counter(), cpu_seconds()
                table = scattertag.predict(files, beam_center=beam, model=model)
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(cpu_seconds() - cpu_start)
                assert not table.failed, table.failed[:3]
            rates = ", ".join(f"{n} {args.files / wall[n][-1]:.1f}" for n in models)
            print(f"round {k + 1}: {rates} frames/s (load {os.getloadavg()[0]:.1f})", flush=True)
    first = args.models[0]
    for name in models:
        rate = args.files / statistics.median(wall[name])
        ms = 1e3 * statistics.median(cpu[name]) / args.files
        ratio = statistics.median(wall[first]) / statistics.median(wall[name])
        print(
            f"{name}: {rate:.1f} frames/s, {ms:.1f} CPU ms a frame, {ratio:.2f} of {first}'s rate"
        )


if __name__ == "__main__":
    main()

"""The network on a CUDA GPU vs the CPU, side by side; skips cleanly without a GPU.

* the shipped tagger alone, frames/s at batch sizes 16, 64 and 256, on the CPU (one
  thread per usable core) and on ``cuda`` (inputs copied from host memory each batch);
* ``scattertag.predict`` end to end on ``--files`` uint32 TIFFs (default options), with
  ``device="cpu"`` and ``device="cuda"``.

Exit status 0 in both cases; without a GPU it prints why it skipped.

    python benchmarks/bench_gpu.py --files 200
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def model_rates(predictor, device: str, batches: list[int], repeats: int) -> dict[int, float]:
    """frames/s of the model alone on ``device`` (host arrays in, probabilities out)."""
    from scattertag.prediction.pipeline import Predictor

    p = Predictor(None, device=device) if device != "cpu" else predictor
    spec = p.view_spec
    rates = {}
    rng = np.random.default_rng(0)
    for b in batches:
        images = rng.random((b, *spec.image_shape), np.float32)
        coeffs = rng.random((b, *spec.coeff_shape), np.float32)
        p.probabilities(images, coeffs)  # warm-up (cuDNN autotuning, allocations)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            p.probabilities(images, coeffs)
            if device != "cpu":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
        rates[b] = b / statistics.median(times)
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA GPU visible to torch (torch.cuda.is_available() is False): skipped")
        return 0
    sys.path.insert(0, str(Path(__file__).parent))
    import scattertag
    from bench_throughput import timed, write_tiffs
    from scattertag.parallel import usable_cores
    from scattertag.prediction.pipeline import Predictor

    print(f"GPU: {torch.cuda.get_device_name(0)}; CPU: {usable_cores()} usable cores")
    torch.set_num_threads(usable_cores())
    cpu = Predictor(None)
    batches = [16, 64, 256]
    on_cpu = model_rates(cpu, "cpu", batches, args.repeats)
    on_gpu = model_rates(cpu, "cuda", batches, args.repeats)
    print("model alone, frames/s:")
    for b in batches:
        ratio = on_gpu[b] / on_cpu[b]
        print(f"  batch {b:4d}: CPU {on_cpu[b]:8.1f}, CUDA {on_gpu[b]:8.1f}, ratio {ratio:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        files = write_tiffs(Path(tmp), 1000, args.files)
        beam = (100.0, 850.0)
        scattertag.predict(files[:2], beam_center=beam, workers=0)  # geometry set-up (cache)
        for device in ("cpu", "cuda"):
            wall, _ = timed(
                lambda d=device: scattertag.predict(
                    files, beam_center=beam, workers=None, device=d, out=Path(tmp) / "p.csv"
                )
            )
            rate = args.files / wall
            print(
                f"predict end to end, {args.files} files 1000 x 1000, {device}: {rate:.1f} frames/s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

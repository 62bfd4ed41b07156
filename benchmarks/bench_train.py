"""Training throughput of each view and backbone: images/s of forward + backward + AdamW step.

Synthetic tensors (no data loading), so this measures the network alone. Each
configuration is timed over ``--repeats`` rounds of ``--steps`` steps after a warm-up;
the median images/s is printed, with the ratio to the AlexNet image view.

    python benchmarks/bench_train.py --sizes 256 128 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from scattertag.features.views import ViewSpec
from scattertag.models import build_model
from scattertag.models.backbones import BACKBONES, DEFAULT_WIDTH


def configurations(coeff_shape: list[int], tags: int) -> list[tuple[str, str, dict]]:
    """(label, view, arch) of every view and backbone."""
    configs = [("coeff", "coeff", {"num_tags": tags, "coeff_shape": coeff_shape})]
    for name in BACKBONES:
        configs.append((f"image/{name}", "image", {"num_tags": tags, "backbone": name}))
    configs.append(
        ("joint/alexnet", "joint", {"num_tags": tags, "coeff_shape": coeff_shape, "backbone": "alexnet"})
    )
    return configs


def images_per_second(model: torch.nn.Module, size: int, coeff_shape: list[int], batch: int, steps: int,
                      repeats: int, device: str) -> list[float]:
    """images/s of each of ``repeats`` rounds of ``steps`` training steps on random tensors."""
    model = model.to(device).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    image = torch.rand(batch, 1, size, size, device=device)
    coeff = torch.randn(batch, *coeff_shape, device=device)
    labels = (torch.rand(batch, model.arch["num_tags"], device=device) < 0.2).float()
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        loss_fn(model(image, coeff), labels).backward()
        optimiser.step()

    step()  # warm-up
    rates = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        if device == "cuda":
            torch.cuda.synchronize()
        rates.append(batch * steps / (time.perf_counter() - start))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 128], help="network input sizes S")
    parser.add_argument("--coeff-shape", type=int, nargs=3, default=list(ViewSpec().coeff_shape),
                        help="C N+1 K of the FB matrix (default: the default ViewSpec's)")
    parser.add_argument("--tags", type=int, default=17)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--only", nargs="*", help="labels to run (e.g. image/alexnet coeff)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"device {args.device}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"{args.repeats} x {args.steps} steps, default widths {DEFAULT_WIDTH}")
    print(f"{'size':>5} {'model':<15} {'params (M)':>10} {'images/s':>9} {'vs image/alexnet':>17}")
    for size in args.sizes:
        reference = None
        for label, view, arch in configurations(args.coeff_shape, args.tags):
            if args.only and label not in args.only:
                continue
            torch.manual_seed(0)
            model = build_model(view, arch)
            params = sum(p.numel() for p in model.parameters()) / 1e6
            rate = statistics.median(
                images_per_second(model, size, args.coeff_shape, args.batch, args.steps, args.repeats, args.device)
            )
            reference = rate if label == "image/alexnet" else reference
            ratio = f"{rate / reference:.2f}" if reference else "-"
            print(f"{size:>5} {label:<15} {params:>10.2f} {rate:>9.1f} {ratio:>17}", flush=True)


if __name__ == "__main__":
    main()

"""Training throughput of each view and backbone: images/s of forward + backward + AdamW step.

Synthetic tensors (no data loading), so this measures the network alone. Each
configuration is timed over ``--repeats`` rounds of ``--steps`` steps after a warm-up;
the median images/s is printed, with the ratio to the AlexNet image view.

    python benchmarks/bench_train.py --sizes 256 128 cake --threads 2

A size S is the detector-space image (1, S, S); ``cake`` is the default cake image
view (4, 64, 256).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from scattertag.features.views import ViewSpec
from scattertag.models import build_model
from scattertag.models.backbones import BACKBONES, DEFAULT_WIDTH


def configurations(coeff_shape: list[int], tags: int, channels: int) -> list[tuple[str, str, dict]]:
    """(label, view, arch) of every view and backbone, for images of ``channels`` channels."""
    configs = [("coeff", "coeff", {"num_tags": tags, "coeff_shape": coeff_shape})]
    configs += [
        (f"image/{name}", "image", {"num_tags": tags, "backbone": name, "in_channels": channels})
        for name in BACKBONES
    ]
    configs += [
        (
            f"joint/{name}",
            "joint",
            {
                "num_tags": tags,
                "coeff_shape": coeff_shape,
                "backbone": name,
                "in_channels": channels,
            },
        )
        for name in ("alexnet", "resnet")
    ]
    return configs


def image_shape(size: str) -> tuple[int, int, int]:
    """(C, H, W) of the image view called ``size``: "cake" or a detector-image side S."""
    if size == "cake":
        return ViewSpec(image_space="cake").image_shape
    return ViewSpec(image_space="detector", input_size=int(size)).image_shape


def images_per_second(
    model: torch.nn.Module,
    shape: tuple[int, int, int],
    coeff_shape: list[int],
    batch: int,
    steps: int,
    repeats: int,
    device: str,
) -> list[float]:
    """images/s of each of ``repeats`` rounds of ``steps`` training steps on random tensors."""
    model = model.to(device).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    image = torch.rand(batch, *shape, device=device)
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
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=["256", "128", "cake"],
        help="image views: detector input sizes S and/or 'cake'",
    )
    parser.add_argument(
        "--coeff-shape",
        type=int,
        nargs=3,
        default=list(ViewSpec().coeff_shape),
        help="C N+1 K of the FB matrix (default: the default ViewSpec's)",
    )
    parser.add_argument("--tags", type=int, default=17)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--only", nargs="*", help="labels to run (e.g. image/alexnet coeff)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"device {args.device}, {torch.get_num_threads()} threads, batch {args.batch}, "
        f"{args.repeats} x {args.steps} steps, default widths {DEFAULT_WIDTH}"
    )
    print(f"{'image':>5} {'model':<15} {'params (M)':>10} {'images/s':>9} {'vs image/alexnet':>17}")
    for size in args.sizes:
        reference = None
        shape = image_shape(size)
        for label, view, arch in configurations(args.coeff_shape, args.tags, shape[0]):
            if args.only and label not in args.only:
                continue
            torch.manual_seed(0)
            model = build_model(view, arch)
            params = sum(p.numel() for p in model.parameters()) / 1e6
            rate = statistics.median(
                images_per_second(
                    model,
                    shape,
                    args.coeff_shape,
                    args.batch,
                    args.steps,
                    args.repeats,
                    args.device,
                )
            )
            reference = rate if label == "image/alexnet" else reference
            ratio = f"{rate / reference:.2f}" if reference else "-"
            print(f"{size:>5} {label:<15} {params:>10.2f} {rate:>9.1f} {ratio:>17}", flush=True)


if __name__ == "__main__":
    main()

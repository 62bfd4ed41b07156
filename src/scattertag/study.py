"""``scattertag study resolution``: does a larger detector image tag better?

For each frame size (e.g. 256, 1000, 2000 pixels square) the study builds (or reuses) a
dataset with the same experiments, seed and network input size, trains the image,
coefficient and joint views on it, scores each on the test shard, and writes
``DIR/resolution.md``, ``DIR/resolution.json`` and ``DIR/resolution.png``: test mAP by
view and size, and the seconds each step took. Only the simulated frame size changes,
so differences come from what the larger frame resolves (sharper rings, finer FB
coefficients) and not from the network.

:func:`three_views` (build, train three views, evaluate) is shared with ``scattertag demo``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from scattertag import plotting
from scattertag.cli import main as cli_main
from scattertag.evaluate import evaluate_run
from scattertag.io.files import read_json, write_json, write_text
from scattertag.train import main as train_main

VIEWS = ("image", "coeff", "joint")


@dataclass
class Settings:
    """Dataset and training settings of one pipeline run."""

    experiments: int = 20
    images_per_experiment: int = 20
    input_size: int = 128
    seed: int = 0
    build_workers: int | None = None
    backbone: str = "alexnet"
    epochs: int = 10
    coeff_epochs: int = 20
    joint_epochs: int = 3
    batch_size: int = 32


def build(data_dir: Path, size: int, s: Settings) -> float:
    """``scattertag build`` of ``data_dir`` (a finished one is only verified); returns seconds."""
    start = time.perf_counter()
    argv = [
        "build",
        "--out",
        str(data_dir),
        "--size",
        str(size),
        "--experiments",
        str(s.experiments),
        "--images-per-experiment",
        str(s.images_per_experiment),
        "--seed",
        str(s.seed),
        "--input-size",
        str(s.input_size),
    ]
    if s.build_workers:
        argv += ["--workers", str(s.build_workers)]
    if cli_main(argv) != 0:
        raise RuntimeError(f"scattertag build of {data_dir} failed")
    return time.perf_counter() - start


def train_view(data_dir: Path, runs: Path, view: str, s: Settings) -> float:
    """Train one view into ``runs/view`` (resuming an unfinished run); returns seconds."""
    run_dir = runs / view
    epochs = {"image": s.epochs, "coeff": s.coeff_epochs, "joint": s.joint_epochs}[view]
    argv = [
        "--data",
        str(data_dir),
        "--view",
        view,
        "--out",
        str(run_dir),
        "--epochs",
        str(epochs),
        "--batch-size",
        str(s.batch_size),
        "--backbone",
        s.backbone,
        "--seed",
        str(s.seed),
    ]
    if view == "joint":
        argv += ["--init-image", str(runs / "image"), "--init-coeff", str(runs / "coeff")]
    if (run_dir / "last.pt").exists():
        argv.append("--resume")  # a re-run finishes what is missing (or nothing)
    start = time.perf_counter()
    train_main(argv)
    return time.perf_counter() - start


def evaluation(data_dir: Path, run_dir: Path) -> dict:
    """The run's eval.json if it is newer than its weights, else a fresh ``evaluate_run``."""
    done = run_dir / "eval.json"
    if done.exists() and done.stat().st_mtime >= (run_dir / "model.safetensors").stat().st_mtime:
        return read_json(done)
    return evaluate_run(data_dir, run_dir)


def three_views(data_dir: Path, runs: Path, size: int, s: Settings) -> list[dict]:
    """Build the dataset, train and evaluate the three views; one row per view with mAP and timings."""
    build_s = build(data_dir, size, s)
    rows = []
    for view in VIEWS:
        train_s = train_view(data_dir, runs, view, s)
        start = time.perf_counter()
        result = evaluation(data_dir, runs / view)
        rows.append(
            {
                "size": size,
                "view": view,
                "backbone": s.backbone if view != "coeff" else None,
                "test_mAP": result["mAP"],
                "test_images": result["images"],
                "build_s": round(build_s, 1),
                "train_s": round(train_s, 1),
                "evaluate_s": round(time.perf_counter() - start, 1),
            }
        )
    return rows


def markdown_table(rows: list[dict]) -> str:
    """Rows as a markdown table."""
    lines = [
        "| size | view | test mAP | test images | build (s) | train (s) | evaluate (s) |",
        "|---:|:---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']} | {r['view']} | {r['test_mAP']:.4f} | {r['test_images']} | {r['build_s']:.0f} | "
            f"{r['train_s']:.0f} | {r['evaluate_s']:.0f} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> Path:
    """Grouped bars: test mAP per frame size, one bar per view."""
    sizes = sorted({r["size"] for r in rows})
    fig = plotting.new_figure(figsize=(1.6 + 1.4 * len(sizes), 3.4))
    ax = fig.subplots()
    for i, view in enumerate(VIEWS):
        values = [
            next((r["test_mAP"] for r in rows if r["size"] == s and r["view"] == view), np.nan)
            for s in sizes
        ]
        bars = ax.bar(np.arange(len(sizes)) + (i - 1) * 0.27, values, 0.27, label=view)
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    ax.set_xticks(np.arange(len(sizes)), [f"{s} x {s}" for s in sizes])
    ax.set_xlabel("simulated frame size (pixels)")
    ax.set_ylabel("test mAP")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, loc="lower right")
    return plotting.save(fig, path)


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``scattertag study``."""
    parser.add_argument("study", choices=["resolution"], help="which study to run")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[256, 1000, 2000], help="frame sizes to compare"
    )
    parser.add_argument(
        "--out", required=True, help="study directory (datasets, runs, table, plot)"
    )
    defaults = Settings()
    for name, value in asdict(defaults).items():
        kind = str if name == "backbone" else int
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=value)


def run(args: argparse.Namespace) -> int:
    """Run the study for every size; write and print the table."""
    for size in args.sizes:
        if size < args.input_size:
            raise ValueError(f"--sizes {size} is smaller than --input-size {args.input_size}")
    settings = Settings(**{k: getattr(args, k) for k in asdict(Settings())})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in args.sizes:
        rows += three_views(out / f"data_{size}", out / f"runs_{size}", size, settings)
        table = markdown_table(rows)  # rewritten after each size: a long study shows progress
        write_text(
            out / "resolution.md",
            f"# Test mAP by frame size and view\n\nSettings: {asdict(settings)}\n\n{table}\n",
        )
        write_json(out / "resolution.json", {"settings": asdict(settings), "rows": rows})
    plot(rows, out / "resolution.png")
    print(table)
    print(f"wrote {out / 'resolution.md'}, resolution.json, resolution.png")
    return 0

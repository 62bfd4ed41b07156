"""The resolution study (``scattertag study resolution``): does a larger detector image tag better?

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

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from scattertag import plotting
from scattertag.data.build import BuildConfig
from scattertag.data.build import build as build_dataset
from scattertag.errors import UserError
from scattertag.evaluate import EvaluateConfig, evaluate_run
from scattertag.io.files import read_json, write_json, write_text
from scattertag.train import TrainConfig, train

VIEWS = ("image", "coeff", "joint")


@dataclass(frozen=True)
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
    """Build ``data_dir`` of ``size``-pixel frames (a finished one is only verified); seconds."""
    start = time.perf_counter()
    build_dataset(
        BuildConfig(
            out=data_dir,
            size=size,
            experiments=s.experiments,
            images_per_experiment=s.images_per_experiment,
            seed=s.seed,
            input_size=s.input_size,
            workers=s.build_workers or None,
        )
    )
    return time.perf_counter() - start


def train_view(data_dir: Path, runs: Path, view: str, s: Settings) -> float:
    """Train one view into ``runs/view`` (resuming an unfinished run); returns seconds."""
    run_dir = runs / view
    joint = view == "joint"
    config = TrainConfig(
        data=data_dir,
        view=view,  # type: ignore[arg-type]
        out=run_dir,
        epochs={"image": s.epochs, "coeff": s.coeff_epochs, "joint": s.joint_epochs}[view],
        batch_size=s.batch_size,
        backbone=s.backbone,
        seed=s.seed,
        init_image=runs / "image" if joint else None,
        init_coeff=runs / "coeff" if joint else None,
        resume=(run_dir / "last.pt").exists(),  # a re-run finishes what is missing (or nothing)
    )
    start = time.perf_counter()
    train(config)
    return time.perf_counter() - start


def evaluation(data_dir: Path, run_dir: Path) -> dict:
    """The run's eval.json if it is newer than its weights, else a fresh ``evaluate_run``."""
    done = run_dir / "eval.json"
    if done.exists() and done.stat().st_mtime >= (run_dir / "model.safetensors").stat().st_mtime:
        result = read_json(done)
        if isinstance(result, dict):
            return result
    return evaluate_run(EvaluateConfig(data=data_dir, model=run_dir))


def three_views(data_dir: Path, runs: Path, size: int, s: Settings) -> list[dict]:
    """Build the dataset, train and evaluate the three views; a row per view: mAP, timings."""
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
    header = [
        "| size | view | test mAP | test images | build (s) | train (s) | evaluate (s) |",
        "|---:|:---|---:|---:|---:|---:|---:|",
    ]
    body = [
        f"| {r['size']} | {r['view']} | {r['test_mAP']:.4f} | {r['test_images']} | "
        f"{r['build_s']:.0f} | {r['train_s']:.0f} | {r['evaluate_s']:.0f} |"
        for r in rows
    ]
    return "\n".join(header + body)


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


@dataclass(frozen=True)
class StudyConfig:
    """The resolution study: frame ``sizes`` compared under the same ``settings``, in ``out``."""

    out: Path
    sizes: tuple[int, ...] = (256, 1000, 2000)
    settings: Settings = field(default_factory=Settings)

    def __post_init__(self) -> None:
        """UserError for a size below the network input size."""
        for size in self.sizes:
            if size < self.settings.input_size:
                raise UserError(
                    f"--sizes {size} is smaller than --input-size {self.settings.input_size}"
                )


@dataclass(frozen=True)
class StudyResult:
    """The study's rows (one per size and view) and the files written."""

    rows: list[dict]
    table: Path
    json: Path
    plot: Path


def resolution_study(config: StudyConfig) -> StudyResult:
    """Run the study for every size; the table and JSON are rewritten after each size."""
    out, settings = Path(config.out), config.settings
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    for size in config.sizes:
        rows += three_views(out / f"data_{size}", out / f"runs_{size}", size, settings)
        write_text(  # rewritten after each size: a long study shows progress
            out / "resolution.md",
            f"# Test mAP by frame size and view\n\nSettings: {asdict(settings)}\n\n"
            f"{markdown_table(rows)}\n",
        )
        write_json(out / "resolution.json", {"settings": asdict(settings), "rows": rows})
    png = plot(rows, out / "resolution.png")
    return StudyResult(rows, out / "resolution.md", out / "resolution.json", png)

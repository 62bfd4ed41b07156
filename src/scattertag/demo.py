"""The demo (``scattertag demo``): the user's job first, then the whole pipeline, small.

1. Tags the real detector frames bundled with the package (``scattertag.examples``) with
   the shipped tagger, through a file list as a user would write one, and draws them with
   their tags (``examples.csv``, ``examples.png``).
2. Builds a small dataset (256 x 256 frames), trains the image, coefficient and joint
   taggers briefly and prints their test mAP; a few minutes on two cores. The same steps
   at full scale are ``scattertag build``, ``train`` and ``evaluate`` (see the README).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from scattertag.errors import UserError
from scattertag.examples import example_frames
from scattertag.io.files import write_text
from scattertag.prediction.table import Table
from scattertag.study import Settings, three_views

#: Small enough for a few minutes on 2 cores, large enough that every view learns.
DEMO = Settings(
    experiments=40,
    images_per_experiment=16,
    input_size=128,
    backbone="resnet",
    epochs=12,
    coeff_epochs=10,
    joint_epochs=3,
    batch_size=32,
)


@dataclass(frozen=True)
class DemoConfig:
    """Where the demo writes, the simulated frame size (pixels) and the seed."""

    out: Path = Path("scattertag-demo")
    size: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        """UserError for frames smaller than the network input."""
        if self.size < DEMO.input_size:
            raise UserError(f"--size {self.size} is smaller than the input size {DEMO.input_size}")


@dataclass(frozen=True)
class TaggedExamples:
    """The bundled real frames tagged by the shipped model: table, its CSV and the picture."""

    table: Table
    csv: Path
    picture: Path


@dataclass(frozen=True)
class DemoResult:
    """One row per trained view (test mAP, timings), the runs' folder and the seconds taken."""

    rows: list[dict]
    runs: Path
    seconds: float


def tag_examples(out: Path, model: str | Path | None = None) -> TaggedExamples:
    """Tag the bundled real frames (file list ``out/examples_files.csv``) and draw them."""
    from scattertag.prediction.api import predict

    frames = example_frames()
    out.mkdir(parents=True, exist_ok=True)
    # the beam centre is all the shipped (frame-unit) tagger uses; pixel sizes are in frames.tsv
    lines = ["path,beam_x,beam_y"]
    lines += [f"{f.path},{f.beam_center[0]},{f.beam_center[1]}" for f in frames]
    file_list = write_text(out / "examples_files.csv", "\n".join(lines) + "\n")
    table = predict(manifest=file_list, model=model, out=out / "examples.csv")
    picture = draw_tagged(table, {str(f.path): f.beam_center for f in frames}, out / "examples.png")
    return TaggedExamples(table, out / "examples.csv", picture)


def draw_tagged(table: Table, centres: dict[str, tuple[float, float]], path: Path) -> Path:
    """A montage of the table's frames, false colour, captioned with their tags."""
    from scattertag import plotting
    from scattertag.io.masks import valid_pixels
    from scattertag.io.readers import read_frames

    fig, axes = plotting.montage_axes(len(table), columns=3, panel=3.6)
    for ax, row in zip(axes, table):
        counts = next(read_frames(row["path"], row["frame"])).counts
        tags = [t for t in row["tags"].split(";") if t] if not row["error"] else ["(error)"]
        title = f"{Path(row['path']).name[:36]}\n{plotting.caption(tags, 44)}"
        plotting.draw_frame(ax, counts, valid_pixels(counts), centres.get(row["path"]), title)
    return plotting.save(fig, path)


def train_demo(config: DemoConfig) -> DemoResult:
    """Build the small dataset, train and evaluate the three views."""
    start = time.perf_counter()
    out = Path(config.out)
    rows = three_views(out / "data", out / "runs", config.size, replace(DEMO, seed=config.seed))
    return DemoResult(rows, out / "runs", time.perf_counter() - start)


def run_demo(config: DemoConfig) -> tuple[TaggedExamples, DemoResult]:
    """The whole demo: tag the bundled real frames, then train the three views briefly."""
    Path(config.out).mkdir(parents=True, exist_ok=True)
    return tag_examples(Path(config.out)), train_demo(config)

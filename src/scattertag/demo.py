"""The demo (``scattertag demo``): the whole pipeline, small: dataset, three views, mAP table.

Builds a small dataset (256 x 256 frames), trains the image, coefficient and joint
taggers briefly and prints their test mAP; a few minutes on two cores. The same steps
at full scale are ``scattertag build``, ``train`` and ``evaluate`` (see the README).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from scattertag.errors import UserError
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
class DemoResult:
    """One row per view (test mAP, timings), the runs' folder and the seconds it all took."""

    rows: list[dict]
    runs: Path
    seconds: float


def run_demo(config: DemoConfig) -> DemoResult:
    """Build the small dataset, train and evaluate the three views."""
    start = time.perf_counter()
    out = Path(config.out)
    rows = three_views(out / "data", out / "runs", config.size, replace(DEMO, seed=config.seed))
    return DemoResult(rows, out / "runs", time.perf_counter() - start)

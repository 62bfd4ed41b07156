"""Helpers and fixtures shared by several test files.

* simulator: :func:`make_experiment` (a chosen beam centre and beamstop), :func:`ring`
* datasets: :func:`build_small` (a real 32 x 32 dataset), :func:`make_dataset` (a learnable
  fake one) and the fake pipeline behind it (:data:`FAKE`, :func:`angular_moments`)
* training: :func:`train` (one run with small settings)
* prediction: :func:`frame` (a ring about :data:`BEAM`), :func:`tiny_model`, the fixtures
  ``model_dir`` and ``predictor``
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from scattertag.data.build import Pipeline, build_dataset
from scattertag.data.manifest import NUM_SHARDS
from scattertag.features.views import ViewSpec
from scattertag.geometry import Geometry
from scattertag.prediction.pipeline import Predictor
from scattertag.simulate import Experiment, Recipe
from scattertag.simulate.beamstops import draw_beamstop
from scattertag.tags import DEFAULT_VOCABULARY
from scattertag.train import TrainConfig
from scattertag.train import train as run_training

# ---- simulator ------------------------------------------------------------------------------


def make_experiment(
    size=256, center=(128.0, 128.0), beamstop="none", gisaxs=None, mask=None, seed=0
):
    """An experiment with a chosen beam centre and beamstop on the reference detector area."""
    recipe = Recipe(size=size, gisaxs_fraction=0.0 if gisaxs is None else 1.0)
    g = Geometry((size, size), center, pixel_size=recipe.pixel_size_at_shape)
    stop = draw_beamstop(g, beamstop, np.random.default_rng(seed), size / 1000)
    mask = np.ones((size, size), bool) if mask is None else mask
    return Experiment(recipe, seed, 0, g, mask, stop, gisaxs)


def ring(q0, amplitude=200.0, style="isotropic", **extra):
    return {"q0": q0, "dq_rel": 0.02, "amplitude": amplitude, "style": style, **extra}


# ---- a small real dataset -------------------------------------------------------------------

SMALL_RECIPE = Recipe(size=32)
SMALL_SPEC = ViewSpec(input_size=16, fb_size=32, orders=4, zeros=6, image_space="detector")


def build_small(out, spec=SMALL_SPEC, **kwargs):
    options = {"seed": 3, "experiments": NUM_SHARDS, "images_per_experiment": 5, "workers": 1}
    return build_dataset(out, SMALL_RECIPE, spec, **{**options, "progress": False, **kwargs})


# ---- a learnable fake dataset and training --------------------------------------------------

SIZE = 64
ORDERS, BINS = 4, 6
LEARNABLE = 4  # tags 0..3 are drawn into the image; the rest are coin flips


def angular_moments(image: np.ndarray, orders: int = ORDERS, bins: int = BINS) -> np.ndarray:
    """complex (orders, bins): m_nk = sum over radial bin k of f exp(-i n theta) (frame centre)."""
    rows, cols = image.shape
    y, x = np.mgrid[:rows, :cols]
    dy, dx = y - (rows - 1) / 2, x - (cols - 1) / 2
    theta, radius = np.arctan2(dy, dx), np.hypot(dy, dx)
    k = np.minimum((radius / (rows / 2) * bins).astype(int), bins)  # bin `bins` = corners, dropped
    phase = np.exp(-1j * np.arange(orders)[:, None, None] * theta)
    return np.stack([(phase * image * (k == b)).sum(axis=(1, 2)) for b in range(bins)], axis=1)


def pattern(tag: int) -> np.ndarray:
    """Expected counts (SIZE, SIZE) that tag ``tag`` adds (D4-symmetric about the frame centre)."""
    y, x = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    r, theta = np.hypot(x, y), np.arctan2(y, x)
    if tag == 0:  # a ring
        return 60 * np.exp(-0.5 * ((r - 22) / 1.5) ** 2)
    if tag == 1:  # a central blob
        return 80 * np.exp(-0.5 * (r / 5) ** 2)
    if tag == 2:  # a 4-fold anisotropic ring
        return 100 * np.exp(-0.5 * ((r - 12) / 2) ** 2) * np.cos(2 * theta) ** 2
    return np.full((SIZE, SIZE), 15.0)  # tag 3: raised background


@dataclass(frozen=True)
class FakeRecipe:
    size: int = SIZE
    vocabulary: object = DEFAULT_VOCABULARY

    @property
    def shape(self):
        return (self.size, self.size)

    def to_dict(self):
        return {"size": self.size, "fake": True}


@dataclass(frozen=True)
class FakeSpec:
    input_size: int = SIZE

    def to_dict(self):
        return {"input_size": self.input_size, "orders": ORDERS - 1, "zeros": BINS}


@dataclass
class FakeExperiment:
    seed: int
    index: int
    geometry: Geometry
    mask: np.ndarray


@dataclass
class FakeSample:
    counts: np.ndarray
    mask: np.ndarray
    geometry: Geometry
    labels: np.ndarray
    keys: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)


def draw_experiment(recipe, seed, index):
    centre = ((SIZE - 1) / 2, (SIZE - 1) / 2)
    return FakeExperiment(seed, index, Geometry(recipe.shape, centre), np.ones(recipe.shape, bool))


def simulate_image(exp, i):
    rng = np.random.default_rng([exp.seed, exp.index, i])
    labels = (rng.random(len(DEFAULT_VOCABULARY)) < 0.4).astype(np.uint8)
    rate = 2.0 + sum(labels[t] * pattern(t) for t in range(LEARNABLE))
    return FakeSample(rng.poisson(rate).astype(np.uint32), exp.mask, exp.geometry, labels)


class ViewMaker:
    def __init__(self, spec, geometry, mask):
        self.spec = spec

    def __call__(self, counts, mask, geometry_known=True):
        log = np.log1p(counts.astype(np.float32)) / np.log(65536.0)
        moments = angular_moments(log) / 50.0
        moments[0] /= 6.0  # the radial means, large: keep the view within its bound of 1
        return log[None], np.stack([moments.real, moments.imag]).astype(np.float32)


FAKE = Pipeline(draw_experiment, simulate_image, ViewMaker)


def make_dataset(root, experiments: int = 20, images_per_experiment: int = 12, seed: int = 1):
    """A finished fake dataset directory at ``root``; returns its manifest."""
    return build_dataset(
        root,
        FakeRecipe(),
        FakeSpec(),
        seed=seed,
        experiments=experiments,
        images_per_experiment=images_per_experiment,
        workers=1,
        progress=False,
        pipeline=FAKE,
    )


def train(data, out, view, epochs=8, **settings):
    """Train one run in this process with small settings (``settings`` override TrainConfig's)."""
    small = {"batch_size": 16, "threads": 1, "width": None if view == "coeff" else 8}
    config = TrainConfig(data=data, out=out, view=view, epochs=epochs, **{**small, **settings})
    return run_training(config)


# ---- prediction -----------------------------------------------------------------------------

SHAPE = (90, 120)
BEAM = (20.0, 70.0)


def tiny_model(run_dir: Path, image_space: str = "cake") -> Path:
    """A randomly initialised joint tagger with the card format, small enough for tests."""
    from scattertag.features.views import ViewSpec
    from scattertag.models import JointTagger, ModelCard, save_model

    spec = ViewSpec(
        input_size=64,
        orders=4,
        zeros=6,
        fb_size=48,
        image_space=image_space,
        cake_angles=64,
        cake_radii=64,
    )
    model = JointTagger(
        len(DEFAULT_VOCABULARY),
        spec.coeff_shape,
        backbone="alexnet",
        width=4,
        coeff_width=4,
        in_channels=spec.image_shape[0],
    )
    thresholds = np.linspace(0.3, 0.7, len(DEFAULT_VOCABULARY)).tolist()  # different per tag
    card = ModelCard(
        view=model.view,
        arch=model.arch,
        backbone="alexnet",
        vocabulary=DEFAULT_VOCABULARY.to_list(),
        view_spec=spec.to_dict(),
        thresholds=thresholds,
    )
    return save_model(model.eval(), card, run_dir)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def predictor(model_dir):
    return Predictor(model_dir)


def frame(seed=0, shape=SHAPE):
    """A ring about BEAM on a Poisson background, int32 counts."""
    rows, cols = np.indices(shape)
    r = np.hypot(cols - BEAM[0], rows - BEAM[1])
    lam = 20 + 500 * np.exp(-0.5 * ((r - 45) / 3) ** 2)
    return np.random.default_rng(seed).poisson(lam).astype(np.int32)


@pytest.fixture(autouse=True, scope="session")
def _setup_cache_in_a_temporary_folder(tmp_path_factory):
    """Set-ups cached on disk (scattertag.features.cache) go to a test folder, not ~/.cache."""
    import os

    saved = os.environ.get("SCATTERTAG_CACHE")
    os.environ["SCATTERTAG_CACHE"] = str(tmp_path_factory.mktemp("setup-cache"))
    yield
    if saved is None:
        os.environ.pop("SCATTERTAG_CACHE", None)
    else:
        os.environ["SCATTERTAG_CACHE"] = saved


# ---- processes and small disks (fault tests) ----

#: The source folder, for PYTHONPATH of child processes.
SRC = str(Path(__file__).resolve().parents[1] / "src")


def descendants(pid: int) -> list[int]:
    """Process ids whose parent chain leads to ``pid``."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        children = [c for c, pp in parents.items() if pp == p]
        found += children
        frontier += children
    return found


def spawned(pid: int) -> list[int]:
    """Worker processes under ``pid``: spawned (multiprocessing's spawn_main) or forked (the
    same command line as ``pid``)."""
    found = []
    try:
        parent = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return found
    for child in descendants(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline or cmdline == parent:
            found.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def tmpfs(folder: Path, size: str):
    """Mount a size-limited tmpfs on ``folder`` (root only); skips the test otherwise."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount tmpfs: {done.stderr.decode().strip()}")

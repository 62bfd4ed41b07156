"""``scattertag build``: simulate a dataset of ten HDF5 shards, in parallel, in bounded memory.

One *task* is a chunk of consecutive images of one experiment. A worker draws the
experiment (deterministic in (seed, experiment)), sets up one ViewMaker for its geometry
(cached, so once per experiment per worker), simulates each image and computes its two
views. Tasks run on a local process pool (default) or a Dask cluster; at most
``2 x workers`` tasks are in flight, and their results are consumed *in submission order*
by a single writer, so

* memory is bounded by the worker count and image size, not the dataset size;
* each shard's rows are ordered by (experiment, image) and its file is byte-identical
  whatever the worker count or engine.

Experiment e goes to shard e mod 10, so no experiment straddles train and test shards.
Shards are written under a temporary name and renamed when complete; the manifest is
rewritten after each, so a killed build re-run with the same arguments keeps finished
shards (verified by SHA-256) and redoes only the rest.
"""

from __future__ import annotations

import errno
import json
import multiprocessing
import tempfile
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
from tqdm import tqdm

from scattertag.cache import BoundedCache
from scattertag.data.manifest import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    NUM_SHARDS,
    DatasetManifest,
    ShardEntry,
    config_differences,
    legacy_shard_name,
    shard_name,
    shard_of_experiment,
)
from scattertag.data.shards import CompressedFrame, Record, ShardWriter, sha256
from scattertag.errors import UserError
from scattertag.parallel import (
    limit_threads,
    local_cluster,
    reuse_freed_memory,
    single_threaded_children,
    usable_cores,
)
from scattertag.signals import result_between_signals, terminate_pool, worker_ignores_interrupts

#: Images per task: small enough that a window of finished tasks stays a few frames.
IMAGES_PER_TASK = 4


@dataclass(frozen=True)
class Pipeline:
    """The simulation and view functions a build calls (see docs/interfaces.md).

    ``draw_experiment(recipe, seed, e)``, ``simulate_image(experiment, i) -> Sample`` and
    ``view_maker(spec, geometry, mask)(counts, mask, geometry_known=) -> (image, coeff)``
    (``geometry_known`` False for the frames :func:`~scattertag.features.views.geometry_withheld`
    picks). Tests pass small
    fakes; :func:`default_pipeline` gives the real ones.
    """

    draw_experiment: Callable
    simulate_image: Callable
    view_maker: Callable


def default_pipeline() -> Pipeline:
    """The real simulator and ViewMaker."""
    from scattertag.features.views import ViewMaker
    from scattertag.simulate import draw_experiment, simulate_image

    return Pipeline(draw_experiment, simulate_image, ViewMaker)


class Described(Protocol):
    """A recipe or view spec: anything that describes itself as a JSON-ready dict."""

    def to_dict(self) -> dict: ...


@dataclass(frozen=True)
class Task:
    """Images ``start`` to ``stop - 1`` of one experiment; everything a worker needs."""

    recipe: Described
    spec: Described
    seed: int
    experiment: int
    start: int
    stop: int
    keep_raw: bool
    pipeline: Pipeline


# ---- worker side -------------------------------------------------------------------------

#: The last experiment set up in this worker process (one at a time: a maker holds
#: frame-sized operators): key -> (experiment, view maker). Dask worker threads share it.
_setup_cache: BoundedCache[tuple] = BoundedCache(1)


def _experiment_setup(task: Task) -> tuple[object, Callable]:
    """Draw the task's experiment and build its ViewMaker, reusing the last one if it matches."""
    key = (
        task.seed,
        task.experiment,
        json.dumps(task.recipe.to_dict(), sort_keys=True),
        json.dumps(task.spec.to_dict(), sort_keys=True),
        task.pipeline,
    )

    def setup() -> tuple[object, Callable]:
        exp = task.pipeline.draw_experiment(task.recipe, task.seed, task.experiment)
        return exp, task.pipeline.view_maker(task.spec, exp.geometry, exp.mask)

    return _setup_cache.get(key, setup)


def _jsonable(value: object) -> object:
    """JSON fallback for numpy scalars and arrays (keys and params may hold them)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def run_task(task: Task) -> list[Record]:
    """Simulate the task's images and compute their views; one Record per image."""
    from scattertag.features.views import geometry_withheld

    exp, maker = _experiment_setup(task)
    spec = task.spec.to_dict()
    records = []
    for i in range(task.start, task.stop):
        s = task.pipeline.simulate_image(exp, i)
        known = not geometry_withheld(spec, task.seed, task.experiment, i)
        image, coeff = maker(s.counts, s.mask, geometry_known=known)
        records.append(
            Record(
                experiment=task.experiment,
                image_index=i,
                image=np.asarray(image, dtype=np.float32),
                coeff=np.asarray(coeff, dtype=np.float32),
                labels=np.asarray(s.labels, dtype=np.uint8),
                geometry=json.dumps(s.geometry.to_dict()),
                keys=json.dumps(s.keys, default=_jsonable),
                params=json.dumps(s.params, default=_jsonable),
                raw=CompressedFrame.compress(np.asarray(s.counts, dtype=np.uint32))
                if task.keep_raw
                else None,
                mask=CompressedFrame.compress(np.asarray(s.mask, dtype=bool))
                if task.keep_raw
                else None,
            )
        )
    return records


# ---- engines: each gives submit(task) -> future with .result(), and its worker count ----


def start_build_worker() -> None:
    """Pool initializer: Ctrl-C is the parent's to handle; one BLAS/OpenMP thread.

    Also set here, not only in the environment at spawn: a 'spawn' pool starts a process
    whenever a task finds no idle one, so later workers inherit whatever the parent has
    then, and a BLAS call on two threads may round differently from one (shards must be
    byte-identical for any worker count).
    """
    worker_ignores_interrupts()
    limit_threads(1)
    reuse_freed_memory()  # the same large arrays every image: no fresh pages each time


@contextmanager
def local_engine(workers: int) -> Iterator[tuple[Callable, int]]:
    """A pool of ``workers`` single-threaded 'spawn' processes (safe when torch is loaded)."""
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=start_build_worker,
    )
    try:
        with single_threaded_children():  # numpy in each worker loads with one thread
            for started in [pool.submit(int) for _ in range(workers)]:
                result_between_signals(started)
        yield (lambda task: pool.submit(run_task, task)), workers
    except BaseException:  # Ctrl-C, SIGTERM, a full disk: stop the workers now
        terminate_pool(pool)
        raise
    pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def dask_engine(address: str, workers: int) -> Iterator[tuple[Callable, int]]:
    """A Dask client: ``address`` of a running scheduler, or 'local' for a LocalCluster."""
    from dask.distributed import Client

    with ExitStack() as stack:
        if address == "local":
            # Nanny-started workers get OMP/MKL/OPENBLAS_NUM_THREADS=1 by default.
            client = stack.enter_context(Client(stack.enter_context(local_cluster(workers))))
        else:
            try:
                client = stack.enter_context(Client(address, timeout="20s"))
            except OSError as exc:
                raise OSError(f"--dask {address}: cannot reach the Dask scheduler ({exc})") from exc
        threads = sum(client.nthreads().values())
        if threads == 0:
            raise RuntimeError(f"--dask {address}: the cluster has no workers")
        yield (lambda task: client.submit(run_task, task, pure=False)), threads


def stream_results(submit: Callable, tasks: Iterable[Task], window: int) -> Iterator[list[Record]]:
    """Results of ``tasks`` in submission order, with at most ``window`` tasks in flight."""
    tasks = iter(tasks)
    pending = deque(submit(t) for _, t in zip(range(window), tasks))
    while pending:
        records = result_between_signals(pending.popleft())
        for task in tasks:  # refill the window by one
            pending.append(submit(task))
            break
        yield records


# ---- planning and resuming ---------------------------------------------------------------


def shard_experiments(shard: int, experiments: int) -> list[int]:
    """Experiments stored in ``shard``, ascending."""
    return [e for e in range(experiments) if shard_of_experiment(e) == shard]


def plan_tasks(
    shards: list[int],
    config: dict,
    recipe,
    spec,
    pipeline: Pipeline,
    images_per_task: int = IMAGES_PER_TASK,
) -> Iterator[Task]:
    """Tasks for ``shards`` in write order: shard, experiment, image chunk."""
    n = config["images_per_experiment"]
    for shard in shards:
        for e in shard_experiments(shard, config["experiments"]):
            for start in range(0, n, images_per_task):
                yield Task(
                    recipe,
                    spec,
                    config["seed"],
                    e,
                    start,
                    min(n, start + images_per_task),
                    config["keep_raw"],
                    pipeline,
                )


def _prepare_directory(out: Path) -> None:
    """Create ``out`` if needed and check it is writable; OSError naming it otherwise."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise OSError(f"{out}: cannot write the dataset directory ({exc.strerror or exc})") from exc


def _start_manifest(out: Path, config: dict, vocabulary: list[str]) -> DatasetManifest:
    """The directory's manifest, with shards that fail their checksum cleared for rebuilding.

    Refuses a directory holding a different dataset, naming the differing fields.
    """
    if not (out / MANIFEST_NAME).exists():
        strays = sorted(
            p.name
            for k in range(NUM_SHARDS)
            for p in (out / shard_name(k), out / legacy_shard_name(k))
            if p.exists()
        )
        if strays:
            raise UserError(
                f"{out}: holds shards ({', '.join(strays)}) but no {MANIFEST_NAME}; "
                "refusing to overwrite them; choose an empty directory"
            )
        return DatasetManifest(**config, vocabulary=vocabulary)
    manifest = DatasetManifest.read(out)
    diffs = config_differences(manifest.config(), config)
    if diffs:
        raise UserError(
            f"{out / MANIFEST_NAME}: the directory holds a different dataset; refusing to mix "
            "them. Differences: " + "; ".join(diffs) + ". Use another --out directory."
        )
    for k, entry in enumerate(manifest.shards):
        path = manifest.shard_path(out, k)
        if entry is not None and not (path.is_file() and sha256(path) == entry.sha256):
            warnings.warn(
                f"{path}: missing or checksum mismatch; rebuilding this shard", stacklevel=3
            )
            manifest.shards[k] = None
    return manifest


# ---- the build ---------------------------------------------------------------------------


def _check_int(name: str, value: int, lowest: int) -> int:
    """``value`` as an int >= ``lowest``; UserError naming the parameter otherwise."""
    if int(value) != value or value < lowest:
        raise UserError(f"{name} must be an integer >= {lowest}, got {value!r}")
    return int(value)


def build_dataset(
    out: str | Path,
    recipe,
    spec,
    *,
    seed: int = 0,
    experiments: int = 100,
    images_per_experiment: int = 100,
    keep_raw: bool = False,
    workers: int | None = None,
    dask: str | None = None,
    progress: bool = True,
    pipeline: Pipeline | None = None,
) -> DatasetManifest:
    """Build (or finish) the dataset in ``out``; returns its manifest.

    ``recipe`` (simulate.Recipe) and ``spec`` (features.views.ViewSpec) define the images
    and their views; ``workers`` local processes (default: all cores), or a Dask cluster
    at ``dask`` ('local' starts a LocalCluster of ``workers`` processes).
    """
    experiments = _check_int("experiments", experiments, NUM_SHARDS)
    images_per_experiment = _check_int("images_per_experiment", images_per_experiment, 1)
    workers = _check_int("workers", workers if workers is not None else usable_cores(), 1)
    pipeline = pipeline or default_pipeline()
    out = Path(out)
    _prepare_directory(out)
    config = json.loads(
        json.dumps(
            {  # JSON round trip: compare like with like (lists, not tuples)
                "format_version": FORMAT_VERSION,
                "recipe": recipe.to_dict(),
                "seed": seed,
                "experiments": experiments,
                "images_per_experiment": images_per_experiment,
                "view_spec": spec.to_dict(),
                "keep_raw": bool(keep_raw),
            }
        )
    )
    vocabulary = list(recipe.vocabulary)
    manifest = _start_manifest(out, config, vocabulary)
    manifest.image_shape = list(recipe.shape)
    manifest.write(out)
    todo = [k for k, entry in enumerate(manifest.shards) if entry is None]
    if todo:
        engine = dask_engine(dask, workers) if dask else local_engine(workers)
        total = sum(len(shard_experiments(k, experiments)) for k in todo)
        with (
            engine as (submit, slots),
            tqdm(
                total=total * images_per_experiment,
                unit="img",
                disable=not progress,
                desc="build",
                smoothing=0.05,
            ) as bar,
        ):
            tasks = plan_tasks(todo, config, recipe, spec, pipeline)
            _write_shards(
                out, manifest, stream_results(submit, tasks, 2 * slots), bar, tuple(recipe.shape)
            )
    manifest.update_totals()
    manifest.write(out)
    return manifest


def _write_shards(
    out: Path,
    manifest: DatasetManifest,
    results: Iterator[list[Record]],
    bar: tqdm,
    frame_shape: tuple[int, int],
) -> None:
    """Write streamed records shard after shard, recording each finished shard in the manifest."""
    writer = None
    per_experiment = manifest.images_per_experiment
    try:
        for records in results:
            for record in records:
                if writer is None:
                    shard = shard_of_experiment(record.experiment)
                    count = len(shard_experiments(shard, manifest.experiments)) * per_experiment
                    manifest.input_shape = list(record.image.shape)
                    manifest.coeff_shape = list(record.coeff.shape)
                    attrs = {
                        "shard": shard,
                        **{k: getattr(manifest, k) for k in ("vocabulary", "view_spec", "recipe")},
                        "seed": manifest.seed,
                    }
                    writer = ShardWriter(
                        out / shard_name(shard),
                        count,
                        record,
                        frame_shape if manifest.keep_raw else None,
                        attrs,
                    )
                writer.write(record)
                bar.update(1)
                if writer.row == writer.count:
                    manifest.shards[shard] = ShardEntry(
                        file=shard_name(shard),
                        images=writer.count,
                        experiments=shard_experiments(shard, manifest.experiments),
                        tag_counts={
                            t: int(c) for t, c in zip(manifest.vocabulary, writer.tag_counts)
                        },
                        sha256=writer.close(),
                        bytes=(out / shard_name(shard)).stat().st_size,
                    )
                    manifest.update_totals()
                    manifest.write(out)
                    writer = None
    except BaseException as exc:
        where = out
        if writer is not None:
            where = writer.tmp
            writer.abort()
        if isinstance(exc, OSError):
            full = exc.errno == errno.ENOSPC or "No space left" in str(exc)
            why = f"no space left on device ({exc.strerror})" if full else str(exc)
            raise OSError(
                f"{where}: build failed: {why.splitlines()[0]}; finished shards are kept, "
                "re-run the same command to resume"
            ) from exc
        raise


# ---- the build as configured by ``scattertag build`` ----------------------------------------


@dataclass(frozen=True)
class BuildConfig:
    """A dataset to build: simulated frames of ``size`` pixels and their network views.

    ``orders``/``zeros``/``image_space`` None keep the ViewSpec defaults; ``cake_texture``
    m > 0 adds the cake's sub-cell texture channel (ViewSpec.cake_texture); ``dask`` is a
    scheduler address or 'local' (None: a local process pool of ``workers``);
    ``detectors`` "catalogue" draws real detectors and setups, "reference" the single
    1000 x 1000 / 75 um / 0.594 m / 8.8984 keV detector of the first simulator.
    """

    out: Path
    size: int = 1000
    experiments: int = 100
    images_per_experiment: int = 100
    seed: int = 0
    workers: int | None = None
    dask: str | None = None
    input_size: int = 256
    image_space: Literal["detector", "cake", "qcake"] | None = None
    orders: int | None = None
    zeros: int | None = None
    cake_texture: int = 0
    keep_raw: bool = False
    progress: bool = True
    detectors: Literal["catalogue", "reference"] = "catalogue"


def build(config: BuildConfig) -> DatasetManifest:
    """Build (or finish) the dataset ``config`` describes with the real simulator."""
    from scattertag.features.views import ViewSpec
    from scattertag.simulate import Recipe

    options = (("orders", config.orders), ("zeros", config.zeros))
    fb: dict = {name: value for name, value in options if value is not None}
    if config.image_space is not None:
        fb["image_space"] = config.image_space
    if config.cake_texture:
        fb["cake_texture"] = config.cake_texture
    return build_dataset(
        config.out,
        Recipe(size=config.size, detectors=config.detectors),
        ViewSpec(input_size=config.input_size, **fb),
        seed=config.seed,
        experiments=config.experiments,
        images_per_experiment=config.images_per_experiment,
        keep_raw=config.keep_raw,
        workers=config.workers,
        dask=config.dask,
        progress=config.progress,
    )

"""The tagging pipeline: items -> views (worker processes) -> batched model -> rows.

Reading and preprocessing are CPU-bound numpy work on one file at a time, so they run in
``workers`` processes (0: in this process), each with its own ViewMaker cache. The network
runs here, on batches, which is where torch is efficient. Rows come out in input order.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from scattertag.io.readers import ReadError, count_frames
from scattertag.parallel import single_threaded_children
from scattertag.prediction.prepare import Preparer, Views, prepare_in_worker, start_worker
from scattertag.prediction.sources import Item


class Predictor:
    """A trained tagger with its model card: views -> probabilities -> tags.

    ``model_dir`` is a folder with ``model.safetensors`` and ``model.json`` (None: the
    tagger shipped with the package).
    """

    def __init__(self, model_dir: str | Path | None = None) -> None:
        from scattertag.features.views import ViewSpec
        from scattertag.models import load_model

        model, self.card = load_model(model_dir)
        # channels-last convolutions run faster on CPU, same results (benchmarks/bench_predict.py)
        self.model = model.to(memory_format=torch.channels_last)
        self.vocabulary = list(self.card["vocabulary"])
        self.thresholds = np.asarray(self.card["thresholds"], dtype=np.float64)
        self.view_spec = ViewSpec.from_dict(self.card["view_spec"])

    @torch.inference_mode()
    def probabilities(self, images: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
        """(B, T) sigmoid probabilities of images (B, C, H, W) and coefficients (B, C, N+1, K)."""
        logits = self.model(torch.from_numpy(images), torch.from_numpy(coeffs))
        return torch.sigmoid(logits).double().numpy()

    def rows(self, views: list[Views]) -> list[dict]:
        """One output row per Views, in order; the model runs once on all that have no error."""
        ok = [v for v in views if not v.error]
        probs = iter(
            self.probabilities(np.stack([v.image for v in ok]), np.stack([v.coeff for v in ok]))
            if ok
            else []
        )
        return [self._row(v, None if v.error else next(probs)) for v in views]

    def _row(self, v: Views, p: np.ndarray | None) -> dict:
        """The table row of one frame (probabilities None when it failed)."""
        row = {"path": v.source, "frame": v.frame}
        if p is None:
            row.update(dict.fromkeys(self.vocabulary), tags="", error=v.error)
        else:
            row.update(zip(self.vocabulary, (float(x) for x in p)))
            row.update(
                tags=";".join(
                    t for t, x, th in zip(self.vocabulary, p, self.thresholds) if x >= th
                ),
                error="",
            )
        return row


def tag_items(
    items: Iterable[Item],
    predictor: Predictor,
    prepare: Callable[[Iterable[Item]], Iterator[list[Views]]],
    batch_size: int = 16,
) -> Iterator[dict]:
    """Rows for every frame of every item, in order; failures become rows with an error.

    ``prepare`` is what ``with Workers(...) as prepare`` gives.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batch: list[Views] = []
    for views in prepare(items):
        batch.extend(views)
        if len(batch) >= batch_size:
            yield from predictor.rows(batch)
            batch = []
    if batch:
        yield from predictor.rows(batch)


class Workers:
    """Context manager giving ``prepare(items) -> iterator of list[Views]``, in order.

    With ``workers`` = 0 it runs in this process; otherwise in a pool of spawned processes
    (spawn, not fork: forking a process that holds torch's thread pool can deadlock), with
    at most a few items per worker in flight so memory stays bounded on long runs.
    """

    def __init__(self, view_spec, workers: int = 0) -> None:
        if workers < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        self.view_spec, self.workers = view_spec, workers
        self.pool: ProcessPoolExecutor | None = None
        self.local: Preparer | None = None
        self.handed_over = 0  # tasks sent with this process's ViewMakers

    def __enter__(self) -> Callable[[Iterable[Item]], Iterator[list[Views]]]:
        self.local = Preparer(self.view_spec)
        if self.workers > 0:
            self.pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=start_worker,
                initargs=(self.view_spec,),
            )
            with (
                single_threaded_children()
            ):  # each submit to a not-yet-full pool spawns a worker now
                for _ in range(self.workers):
                    self.pool.submit(int)
        return self.prepare

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def prepare(self, items: Iterable[Item]) -> Iterator[list[Views]]:
        """Views of each item, in order."""
        if self.pool is None:
            yield from map(self.local, items)
            return
        # This process does the first frames itself until it has set up a ViewMaker (the
        # costly step, here with every core while the workers start) and hands it to them.
        items = per_frame(items)
        while not self.local.makers:
            item = next(items, None)
            if item is None:
                return
            yield self.local(item)
        window: deque = deque()
        for item in items:
            handover = (self.local.makers,) if self.handed_over < 2 * self.workers else ()
            self.handed_over += 1
            window.append(self.pool.submit(prepare_in_worker, item, *handover))
            if len(window) >= 4 * self.workers:
                yield _result(window.popleft())
        while window:
            yield _result(window.popleft())


def _result(future) -> list[Views]:
    """A worker's result; a dead worker explained."""
    try:
        return future.result()
    except BrokenProcessPool as exc:
        raise RuntimeError(
            "a worker process died; a script calling predict(workers=N) must run it under "
            "\"if __name__ == '__main__':\" (worker processes are spawned), or use workers=0"
        ) from exc


def per_frame(items: Iterable[Item]) -> Iterator[Item]:
    """Items with one item per frame of each multi-frame file, so that workers share long stacks."""
    for item in items:
        try:
            count = 1 if item.error or item.frame is not None else count_frames(item.location)
        except ReadError:
            count = 1  # the worker reads it and reports the problem
        yield from [item] if count == 1 else (replace(item, frame=i) for i in range(count))

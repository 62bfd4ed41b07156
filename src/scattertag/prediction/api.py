"""``scattertag.predict(...)``: tag detector files or in-memory frames from Python, get a table.

>>> import scattertag
>>> table = scattertag.predict(["frame_0001.cbf"], beam_center=(1231.5, 1402.0))
>>> table[0]["tags"], table["Ring"]
>>> scattertag.predict(stack, beam_center=(512.0, 20.5), mask=bad_pixels)  # (N, H, W) array
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from scattertag.geometry import GeometryOptions
from scattertag.io.atomic import check_output
from scattertag.parallel import limited_threads, worker_split
from scattertag.prediction.grouping import tag_by_geometry
from scattertag.prediction.pipeline import Predictor, Workers, item_timeout, tag_items
from scattertag.prediction.series import SeriesPooling
from scattertag.prediction.sources import (
    Item,
    geometry_options,
    item_from_array,
    items_from_paths,
    read_file_list,
)
from scattertag.prediction.table import Table

#: What ``predict`` tags: a path, an array, or a sequence of paths and arrays.
Inputs = str | Path | np.ndarray | Sequence[str | Path | np.ndarray]


def predict(
    files: Inputs = (),
    *,
    beam_center: tuple[float, float] | None = None,
    poni: str | Path | None = None,
    mask: str | Path | np.ndarray | None = None,
    frame: int | None = None,
    manifest: str | Path | None = None,
    pixel_size_um: float | None = None,
    distance_m: float | None = None,
    energy_kev: float | None = None,
    options: GeometryOptions | None = None,
    recursive: bool = False,
    model: str | Path | Predictor | None = None,
    workers: int | None = 0,
    batch_size: int = 16,
    out: str | Path | None = None,
    progress: bool = False,
    device: str = "cpu",
    dask: str | None = None,
    thresholds: Mapping[str, float] | None = None,
    timeout: float | None = None,
    symmetries: int = 1,
    series: bool = True,
) -> Table:
    """Tag ``files`` (and/or the rows of ``manifest``, a CSV file list); one table row per frame.

    files : paths (``file.h5::/dataset`` names an HDF5 dataset); all frames of a multi-frame
        file are tagged unless ``frame`` picks one. Or in-memory frames: a (rows, cols)
        array or a (frames, rows, cols) stack (rows named ``<array>``, or ``<array i>``
        for the i-th array of a sequence).
    beam_center : (x, y) in pixels, x = column, y = row; or ``poni``: a pyFAI PONI file.
        Without either, each file's geometry comes from a PONI file beside it, its header,
        or (the beam centre) the image itself; manifest rows may carry their own.
    mask : image file or array, nonzero = excluded pixel (pyFAI convention). Pixels the
        detector marks invalid (negative, all bits set, not finite) are always excluded.
    pixel_size_um, distance_m, energy_kev : override the reference detector (75 um,
        0.594 m, 8.8984 keV: scattertag.geometry.REFERENCE_*).
    options : all of the above as one GeometryOptions (then leave them None).
    recursive : a folder in ``files`` means its detector files and its subfolders' too.
    model : model folder or a loaded Predictor (None: the shipped tagger).
    workers : processes for reading and preprocessing (0: this process; None: one per usable
        core, see ``scattertag.parallel``), one BLAS thread each. They are spawned, so a
        script that uses them must call predict under ``if __name__ == "__main__":``.
    device : where the network runs: "cpu", "cuda" or "auto" (cuda when available).
    dask : tag on a Dask cluster: a scheduler address, or "local" for a LocalCluster of
        ``workers`` single-threaded processes (``scattertag.prediction.distributed``);
        ``model`` must then be a folder (or None), which every worker reads.
    out : also write the table to this CSV (atomically), and ``<out>.json`` beside it: the
        model id and folder and every threshold.
    thresholds : {tag: value} overriding the model card's thresholds for those tags.
    timeout : seconds one file (or frame) may take to be read and prepared in a worker
        process before it gets an error row and the worker is replaced (None: 600 s,
        ``ITEM_TIMEOUT_S``); needs ``workers`` >= 1 (see ``pipeline.item_timeout``).
    symmetries : average the network's logits over 1 (none), 2, 4 or 8 symmetries of the
        frame (mirrors and quarter turns, ``scattertag.models.symmetry``), at that many
        times the network's cost.
    series : settle the beam centres the images give by set-up (a folder's frames of one
        shape and geometry options, :mod:`scattertag.prediction.series`); False: each
        frame's centre from its own image alone (for a folder that mixes set-ups).

    Raises ValueError for bad arguments; a file that cannot be tagged gets a row whose
    ``error`` says why, and the rest are tagged.
    """
    options = geometry_options(
        options,
        beam_center=beam_center,
        poni=poni,
        mask=mask,
        pixel_size_um=pixel_size_um,
        distance_m=distance_m,
        energy_kev=energy_kev,
        frame=frame,
    )
    items = _items(files, options, recursive)
    if not items and manifest is None:
        raise ValueError("nothing to tag: give files, arrays or a manifest")
    if manifest is not None:
        items += read_file_list(manifest, default=options)
    if out is not None:  # before any work: not an input, writable, room for the rows
        named = [i.location for i in items if i.location] + [options.mask, manifest]
        inputs = [str(m) for m in named if isinstance(m, (str, Path))]
        check_output(out, inputs, need_bytes=400 * len(items))
    if dask is not None:
        if timeout is not None:
            raise ValueError("timeout is for local worker processes, not with dask")
        if thresholds:
            raise ValueError("thresholds are not supported with dask; tag, then cut the CSV")
        table = _predict_on_dask(
            items, dask, model, workers, batch_size, device, progress, symmetries, series
        )
        if out is not None:
            table.to_csv(out)
        return table
    if isinstance(model, Predictor):
        predictor = model
        if thresholds or symmetries != 1:
            raise ValueError(
                "give thresholds and symmetries to the Predictor, not with a loaded one"
            )
    else:
        predictor = Predictor(model, device=device, thresholds=thresholds, symmetries=symmetries)
    warn_unused_scale(predictor.view_spec, items)
    workers, model_threads = worker_split(workers)
    seconds = item_timeout(timeout, workers)
    # one BLAS thread here (workers have their own); torch gets the cores workers leave
    with (
        limited_threads(1, model_threads),
        Workers(predictor.view_spec, workers, seconds, ahead=2 * batch_size) as prepare,
    ):
        shown = tqdm(items, unit="file", desc="tagging", disable=not progress)
        pooling = SeriesPooling(series)  # frames of one set-up share their centre
        rows = tag_by_geometry(
            pooling.offer(shown),
            lambda part: tag_items(part, predictor, prepare, batch_size, pooling.see),
            count=prepare.count_frames,
            revise=pooling.revise,
        )
        table = Table(predictor.vocabulary, rows, provenance=predictor.provenance)
    if out is not None:
        table.to_csv(out)
    return table


def _predict_on_dask(
    items, address, model, workers, batch_size, device, progress, symmetries, series
) -> Table:
    """The table of ``items`` tagged on the Dask cluster at ``address``."""
    from scattertag.models import load_model
    from scattertag.prediction.distributed import dask_client, tag_on_dask

    if isinstance(model, Predictor):
        raise ValueError(
            "with dask, give model as a folder (every worker loads it), not a Predictor"
        )
    vocabulary = list(load_model(model)[1].vocabulary)
    with dask_client(address, workers or None) as client:
        rows = tag_on_dask(
            items, client, model, batch_size, device=device, symmetries=symmetries, series=series
        )
        rows = tqdm(rows, unit="frame", desc="tagging", disable=not progress)
        return Table(vocabulary, rows)


def warn_unused_scale(view_spec, items: Sequence[Item]) -> bool:
    """Warn (and return True) when pixel size, distance or energy are given for a model whose
    image view is in frame units: only a "qcake" model's views depend on them."""
    if view_spec.image_space == "qcake":
        return False
    given = [
        name
        for name in ("pixel_size", "distance", "energy")
        if any(i.options is not None and getattr(i.options.values, name) is not None for i in items)
    ]
    if given:
        warnings.warn(
            f"{', '.join(given)} given, but this model's image view is in frame units "
            f"(image_space {view_spec.image_space!r}): no probability depends on them; "
            "a q-view model (image_space 'qcake', docs/qviews.md) uses them",
            stacklevel=4,  # the caller of scattertag.predict
        )
    return bool(given)


def _items(files: Inputs, options: GeometryOptions, recursive: bool) -> list[Item]:
    """The items of the ``files`` argument: paths (folders expanded) and arrays, in order."""
    if isinstance(files, np.ndarray):
        return [item_from_array("<array>", files, options)]
    if isinstance(files, (str, Path)):
        files = [files]
    items = []
    for i, f in enumerate(files):
        if isinstance(f, np.ndarray):
            items.append(item_from_array(f"<array {i}>", f, options))
        elif isinstance(f, (str, Path)):
            items += items_from_paths([str(f)], options, recursive)
        else:
            raise ValueError(
                f"files[{i}]: expected a path or a numpy array, got {type(f).__name__}"
            )
    return items

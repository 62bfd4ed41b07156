"""``scattertag.predict(...)``: tag detector files from Python, get a table back.

>>> import scattertag
>>> table = scattertag.predict(["frame_0001.cbf"], beam_center=(1231.5, 1402.0))
>>> table[0]["tags"], table["Ring"]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from scattertag.io.atomic import check_output
from scattertag.parallel import limited_threads, worker_split
from scattertag.prediction.pipeline import Predictor, Workers, tag_items
from scattertag.prediction.sources import items_from_paths, make_setup, read_manifest
from scattertag.prediction.table import Table


def predict(
    files: str | Path | Sequence[str | Path] = (),
    *,
    beam_center: tuple[float, float] | None = None,
    poni: str | Path | None = None,
    mask: str | Path | None = None,
    frame: int | None = None,
    manifest: str | Path | None = None,
    pixel_size_um: float | None = None,
    distance_m: float | None = None,
    energy_kev: float | None = None,
    model: str | Path | Predictor | None = None,
    workers: int | None = 0,
    batch_size: int = 16,
    out: str | Path | None = None,
    progress: bool = False,
    device: str = "cpu",
    dask: str | None = None,
) -> Table:
    """Tag ``files`` (and/or the rows of ``manifest``); one table row per frame.

    files : paths (``file.h5::/dataset`` names an HDF5 dataset); all frames of a multi-frame
        file are tagged unless ``frame`` picks one.
    beam_center : (x, y) in pixels, x = column, y = row; or ``poni``: a pyFAI PONI file.
        Needed for ``files``; manifest rows carry their own (these fill blank cells).
    mask : image file, nonzero = excluded pixel (pyFAI convention). Negative and non-finite
        pixels are always excluded.
    pixel_size_um, distance_m, energy_kev : override the defaults (75 um, 0.594 m, 8.8984 keV).
    model : model folder or a loaded Predictor (None: the shipped tagger).
    workers : processes for reading and preprocessing (0: this process; None: one per usable
        core, see ``scattertag.parallel``), one BLAS thread each. They are spawned, so a
        script that uses them must call predict under ``if __name__ == "__main__":``.
    device : where the network runs: "cpu", "cuda" or "auto" (cuda when available).
    dask : tag on a Dask cluster: a scheduler address, or "local" for a LocalCluster of
        ``workers`` single-threaded processes (``scattertag.prediction.distributed``);
        ``model`` must then be a folder (or None), which every worker reads.
    out : also write the table to this CSV (atomically).

    Raises ValueError for bad arguments; a file that cannot be tagged gets a row whose
    ``error`` says why, and the rest are tagged.
    """
    files = [files] if isinstance(files, (str, Path)) else list(files)
    setup = make_setup(beam_center, poni, pixel_size_um, distance_m, energy_kev)
    if not files and manifest is None:
        raise ValueError("nothing to tag: give files or a manifest")
    if files and setup is None:
        raise ValueError("files need a geometry: give beam_center=(x, y) or poni=FILE")
    if frame is not None and frame < 0:
        raise ValueError(f"frame must be >= 0, got {frame}")
    mask = None if mask is None else str(mask)
    items = items_from_paths([str(f) for f in files], setup, mask, frame) if files else []
    if manifest is not None:
        items += read_manifest(manifest, default=setup, mask=mask)
    if out is not None:  # before any work: not an input, writable, room for the rows
        inputs = [i.location for i in items] + [m for m in (mask, manifest) if m is not None]
        check_output(out, inputs, need_bytes=400 * len(items))
    if dask is not None:
        table = _predict_on_dask(items, dask, model, workers, batch_size, device, progress)
        if out is not None:
            table.to_csv(out)
        return table
    predictor = model if isinstance(model, Predictor) else Predictor(model, device=device)
    workers, model_threads = worker_split(workers)
    # one BLAS thread here (workers have their own); torch gets the cores workers leave
    with limited_threads(1, model_threads), Workers(predictor.view_spec, workers) as prepare:
        items = tqdm(items, unit="file", desc="tagging", disable=not progress)
        table = Table(predictor.vocabulary, tag_items(items, predictor, prepare, batch_size))
    if out is not None:
        table.to_csv(out)
    return table


def _predict_on_dask(items, address, model, workers, batch_size, device, progress) -> Table:
    """The table of ``items`` tagged on the Dask cluster at ``address``."""
    from scattertag.models import load_model
    from scattertag.prediction.distributed import dask_client, tag_on_dask

    if isinstance(model, Predictor):
        raise ValueError(
            "with dask, give model as a folder (every worker loads it), not a Predictor"
        )
    vocabulary = load_model(model)[1]["vocabulary"]
    with dask_client(address, workers or None) as client:
        rows = tag_on_dask(items, client, model, batch_size, device=device)
        rows = tqdm(rows, unit="frame", desc="tagging", disable=not progress)
        return Table(vocabulary, rows)

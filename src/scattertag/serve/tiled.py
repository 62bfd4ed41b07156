"""Frames from a Tiled server in, tags back out as metadata of the same nodes.

A URI names a Tiled node, written ``tiled+http://host:port/path/to/node`` (or
``http://host:port/api/v1/metadata/path/to/node``). Its frames are every 2-D array, 3-D
stack (frames first) or Bluesky-style 4-D stack with a length-1 second axis found under it,
down to :data:`MAX_DEPTH` levels of containers (a Bluesky run's ``primary/data/<detector>``
is three levels down). Each array is fetched frame by frame into a ``.npy`` file and tagged
by the ordinary pipeline; the tags are then written as the node's metadata key
``scattertag`` where the server allows writes (a read-only server is reported, not fatal).

* ``predict_tiled(uri, beam_center=...)``: ``scattertag.predict`` for a Tiled node (the
  table's ``path`` is each array's URI).
* ``feed_tiled(service, uri)``: the ``scattertag serve --tiled URI`` feed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from scattertag import __version__
from scattertag.io.files import atomic_path
from scattertag.io.readers import MIN_SIDE, ReadError, check_shape

log = logging.getLogger("scattertag.serve")

SCHEME_PREFIX = "tiled+"
#: Deepest container nesting searched for arrays below the given node.
MAX_DEPTH = 4
#: Most arrays taken from one node per scan.
MAX_ARRAYS = 10_000
METADATA_KEY = "scattertag"


def is_tiled(uri: str) -> bool:
    """Whether ``uri`` names a Tiled node (``tiled+http(s)://...``)."""
    return str(uri).startswith((SCHEME_PREFIX + "http://", SCHEME_PREFIX + "https://"))


def http_uri(uri: str) -> str:
    """The http(s) URL of a ``tiled+http(s)://`` (or plain http(s)) URI; ValueError otherwise."""
    url = uri[len(SCHEME_PREFIX) :] if uri.startswith(SCHEME_PREFIX) else uri
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{uri}: a Tiled URI is tiled+http://host:port/path (or http://...)")
    return url.rstrip("/")


def connect(uri: str, api_key: str | None = None):
    """The Tiled client node that ``uri`` names (ValueError if it cannot be reached)."""
    from tiled.client import from_uri

    url = http_uri(uri)
    parts = urlsplit(url)
    try:
        if "/api/v1/" in parts.path:
            return from_uri(url, api_key=api_key)
        node = from_uri(f"{parts.scheme}://{parts.netloc}", api_key=api_key)
        for key in [k for k in parts.path.split("/") if k]:
            node = node[key]
        return node
    except KeyError as exc:
        raise ValueError(f"{uri}: no such node on the Tiled server ({exc})") from None
    except Exception as exc:  # httpx and tiled errors: the server is down, refuses, ...
        raise ValueError(f"{uri}: cannot read from the Tiled server ({exc})") from exc


def frame_shape(node) -> tuple[int, int, int] | None:
    """(frames, rows, cols) of an array node that holds detector frames, else None."""
    shape = tuple(int(s) for s in node.shape)
    if len(shape) == 4 and shape[1] == 1:  # Bluesky: (events, 1, rows, cols)
        shape = (shape[0], *shape[2:])
    if len(shape) not in (2, 3) or min(shape[-2:]) < MIN_SIDE:
        return None
    try:
        check_shape(node.uri, shape)
    except ReadError as exc:
        log.warning("%s", exc)
        return None
    return (1, *shape) if len(shape) == 2 else shape  # type: ignore[return-value]


def frame_nodes(node, depth: int = MAX_DEPTH) -> Iterator:
    """Every array node holding detector frames at or below ``node`` (containers searched)."""
    family = str(getattr(node, "structure_family", ""))
    if family.endswith("array"):
        if frame_shape(node) is not None:
            yield node
        return
    if depth > 0 and family.endswith("container"):
        for count, (_, child) in enumerate(node.items()):
            if count >= MAX_ARRAYS:
                break
            yield from frame_nodes(child, depth - 1)


def list_frames(uri: str, api_key: str | None = None) -> list:
    """The array nodes holding detector frames under the node ``uri`` names."""
    return list(frame_nodes(connect(uri, api_key)))


def fetch(node, path: str | Path) -> Path:
    """Write the frames of an array node to a .npy file, one frame at a time (atomically)."""
    frames, rows, cols = frame_shape(node) or (0, 0, 0)
    if not frames:
        raise ValueError(f"{node.uri}: not an array of detector frames")
    ndim = len(node.shape)
    with atomic_path(path) as tmp:
        out = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=node.dtype, shape=(frames, rows, cols)
        )
        for i in range(frames):
            out[i] = node.read() if ndim == 2 else node[i, 0] if ndim == 4 else node[i]
        out.flush()
        del out
    return Path(path)


def tags_metadata(records: list[dict]) -> dict:
    """The ``scattertag`` metadata of one node: per frame its tags, probabilities and error."""
    return {
        METADATA_KEY: {
            "version": __version__,
            "tagged_at": time.time(),
            "frames": [
                {
                    "frame": r["frame"],
                    "tags": r["tags"],
                    "probabilities": r["probabilities"],
                    "error": r["error"],
                }
                for r in records
            ],
        }
    }


def write_tags(node, records: list[dict]) -> str:
    """Write the frames' tags as the node's metadata; '' if done, else why not."""
    try:
        node.update_metadata(tags_metadata(records))
    except Exception as exc:  # read-only server, no write permission, ...
        return f"{node.uri}: tags not written back ({type(exc).__name__}: {exc})"
    return ""


def predict_tiled(
    uri: str, *, api_key: str | None = None, write_back: bool = True, **predict_kwargs
):
    """``scattertag.predict`` on the frames of a Tiled node; tags written back if allowed.

    Returns the Table, its ``path`` column holding each array's URI. ``predict_kwargs`` are
    those of :func:`scattertag.predict` (beam_center or poni, model, ...).
    """
    from scattertag.prediction.api import predict

    arrays = list_frames(uri, api_key)
    if not arrays:
        raise ValueError(f"{uri}: no arrays of detector frames under this node")
    with tempfile.TemporaryDirectory(prefix="scattertag-tiled-") as tmp:
        paths = [str(fetch(a, Path(tmp) / f"{i:05d}.npy")) for i, a in enumerate(arrays)]
        table = predict(paths, **predict_kwargs)
    by_path = dict(zip(paths, arrays))
    for row in table.rows:
        row["path"] = by_path[row["path"]].uri
    if write_back:
        vocabulary = table.vocabulary
        for array in arrays:
            rows = [r for r in table.rows if r["path"] == array.uri]
            records = [
                {
                    "frame": r["frame"],
                    "tags": [t for t in r["tags"].split(";") if t],
                    "probabilities": {} if r["error"] else {t: r[t] for t in vocabulary},
                    "error": r["error"],
                }
                for r in rows
            ]
            problem = write_tags(array, records)
            if problem:
                log.warning("%s", problem)
    return table


async def feed_tiled(service, uri: str) -> None:
    """``serve --tiled URI``: tag the node's arrays not seen yet; with ``watch``, keep polling."""
    from scattertag.prediction.sources import Item

    config = service.config
    folder = http_uri(uri)
    while True:
        try:
            arrays = await asyncio.to_thread(list_frames, uri, config.tiled_api_key)
            seen = service.store.sources(folder)
            for array in arrays:
                if array.uri in seen:
                    continue
                name = hashlib.sha256(array.uri.encode()).hexdigest()[:24]
                path = await asyncio.to_thread(fetch, array, config.uploads / f"tiled_{name}.npy")
                assert service.feed_setup is not None  # --tiled needs a geometry (ServeConfig)
                item = Item(array.uri, str(path), None, service.feed_setup)
                records = await service.tag(
                    item,
                    folder=folder,
                    name=array.uri.rsplit("/", 1)[-1],
                    when=time.time(),
                    beam_source="server",
                    keep_failed=True,
                )
                problem = await asyncio.to_thread(write_tags, array, [r.to_json() for r in records])
                if problem:
                    log.warning("%s", problem)
        except Exception:  # the server may be down for a while; the next poll tries again
            log.exception("reading %s", uri)
        if not config.watch:
            return
        await asyncio.sleep(config.interval_s)

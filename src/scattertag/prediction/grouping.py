"""Work ordered by geometry: each geometry set up once per window of frames, rows in input order.

Setting up a geometry (``ViewMaker``) costs ~10-20 frames' worth of work; frames of an
archive come with many beam centres, interleaved. So frames are taken in windows of
consecutive frames, grouped by geometry (``GeometryOptions.key``: geometry and mask)
inside a window, tagged in that order, and the rows put back in input order before they
are yielded. Memory: one window of rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice

from scattertag.prediction.sources import Item


def geometry_chunks(window: list[tuple[int, Item]], size: int) -> list[list[tuple[int, Item]]]:
    """Numbered items grouped by geometry options (GeometryOptions.key), in first-seen order,
    cut into chunks of at most ``size``."""
    groups: dict[tuple, list[tuple[int, Item]]] = {}
    for number, item in window:
        key = None if item.options is None else item.options.key
        groups.setdefault((key,), []).append((number, item))
    return [g[i : i + size] for g in groups.values() for i in range(0, len(g), size)]


def tag_by_geometry(
    items: Iterable[Item], tag: Callable[[list[Item]], Iterator[dict]], window: int = 256
) -> Iterator[dict]:
    """Rows of ``tag`` (one row per single-frame item) run on windows of ``items``
    reordered by geometry, yielded in input order."""
    from scattertag.prediction.pipeline import per_frame

    frames = per_frame(items)
    while part := list(islice(frames, window)):
        order = [n for chunk in geometry_chunks(list(enumerate(part)), window) for n, _ in chunk]
        rows = list(tag([part[n] for n in order]))
        if len(rows) != len(part):
            raise RuntimeError(f"{len(part)} frames gave {len(rows)} rows")
        placed: list[dict] = [{}] * len(part)
        for n, row in zip(order, rows):
            placed[n] = row
        yield from placed

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

from scattertag.io.readers import count_frames
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
    items: Iterable[Item],
    tag: Callable[[list[Item]], Iterator[dict]],
    window: int = 256,
    count: Callable[[str], int] = count_frames,
    revise: Callable[[list[Item], list[list[dict]]], dict[int, Item]] | None = None,
    first: int = 16,
) -> Iterator[dict]:
    """Rows of ``tag`` run on windows of ``items`` reordered by geometry, in input order.

    Multi-frame files are split into one item a frame (``count(location)``: their frame
    count, e.g. ``Workers.count_frames``). ``tag`` yields, for each item in turn, one row
    per frame (at least one); an item without a frame index (a single-frame file, an
    in-memory stack) owns the rows that follow its first while they carry its path and
    increasing frame numbers. ``revise(window, rows)``, given a window's items and each
    one's rows, returns {position: item} to tag again (a beam centre its series settled,
    :class:`scattertag.prediction.series.SeriesPooling`); their new rows replace the old.
    Windows grow from ``first`` frames, doubling up to ``window``: a folder's set-up settles
    early, so its later frames can take the centre at a glance (``SeriesPooling.offer``).
    """
    from scattertag.prediction.pipeline import per_frame

    frames = per_frame(items, count)
    size = min(first, window)
    while part := list(islice(frames, size)):
        size = min(2 * size, window)
        order = [n for chunk in geometry_chunks(list(enumerate(part)), window) for n, _ in chunk]
        owned = _owned(part, order, tag([part[n] for n in order]))
        again = {} if revise is None else revise(part, owned)
        if again:
            redo = [again[n] for n in sorted(again)]
            fresh = _owned(redo, range(len(redo)), tag(redo))
            for n, item_rows in zip(sorted(again), fresh):
                owned[n] = item_rows
        for item_rows in owned:
            yield from item_rows


def _owned(part: list[Item], order: Iterable[int], rows: Iterator[dict]) -> list[list[dict]]:
    """Each item's rows (by position in ``part``) from ``rows``, tagged in ``order``."""
    rows = iter(list(rows))
    owned: list[list[dict]] = [[] for _ in part]
    row = next(rows, None)
    for n in order:
        if row is None:
            raise RuntimeError(f"{part[n].source}: no row")
        owned[n].append(row)
        row = next(rows, None)
        while (
            row is not None
            and part[n].frame is None
            and row["path"] == part[n].source
            and isinstance(row["frame"], int)
            and isinstance(owned[n][-1]["frame"], int)
            and row["frame"] > owned[n][-1]["frame"]
        ):
            owned[n].append(row)
            row = next(rows, None)
    return owned

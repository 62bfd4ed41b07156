"""Frames of one set-up share a beam centre: settle each window's estimates together.

Frames whose centre must come from the image (none given, no PONI file, none in the
header) are estimated one by one as they are tagged (in the workers). A window's frames
(:func:`scattertag.prediction.grouping.tag_by_geometry`) are then grouped into set-ups:
the same folder (the same array for in-memory stacks), the same frame shape, the same
geometry options (mask, dummy, detector values: ``GeometryOptions.key``) and the same
pixel size and distance where the files' headers state them
(:func:`scattertag.prediction.beam.setup_values`; files whose headers are silent join
the others when those agree, and stay apart when they state two set-ups). Each set-up's
estimates, one per file (the frames of one file share its estimate), are settled by
:func:`scattertag.beam.series.settle`: short arcs refitted with the pose of the set-up's
best cone fit, frames not found given the centre their set-up's found frames agree on.
The frames whose centre changed are tagged again with it (:class:`SeriesPooling`): their
rows' ``geometry_source`` is ``series`` and the warning names the frames it came from.

A set-up whose found centres agreed in a window offers that centre to its frames in
later windows (:meth:`SeriesPooling.offer`), judged at a glance
(:func:`scattertag.beam.center.settled_glance`, ~9-15 ms against ~65 ms for an estimate
at 1000 x 1000): a frame plainly isotropic about it takes it (and votes for it in its
window's series); a frame that shows nothing either way (flat, weak, dark) takes it
unseen (its note says so; no vote); a frame that shows another centre (a clearly more
isotropic point, a beamstop shadow elsewhere) is estimated as before and pooled with
its window. A window whose found frames show another centre twice
(:func:`scattertag.beam.series.shows_another`: the folder's set-up changed) has its
unseen frames tagged again without the offer (a full estimate each).

Memory: one window's estimates (each with at most 1000 arc points) and one centre per
set-up seen. Frames of a set-up in another window are not pooled with these.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

from scattertag.prediction.beam import UNSEEN, Estimated, SeriesCentre, merged_setups
from scattertag.prediction.prepare import Views
from scattertag.prediction.sources import Item


def _place(item: Item) -> tuple:
    """(folder, geometry options key) of an item: its folder (an array: its name)."""
    folder = os.path.dirname(item.location) if item.location else item.source
    return folder, None if item.options is None else item.options.key


def setup_key(item: Item, shape: tuple[int, int]) -> tuple:
    """What frames of one set-up share: the folder (an array: its name), the frame shape
    and the geometry options (then their headers' pixel size and distance: :func:`_by_header`)."""
    folder, options = _place(item)
    return folder, shape, options


def _listed(names: list[str], shown: int = 3) -> str:
    """The first ``shown`` of ``names`` joined by commas, and how many more."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _name(item: Item) -> str:
    """The file's name (an array's source) for notes."""
    return Path(item.source).name if item.location else item.source


class SeriesPooling:
    """Settles the beam centres of each window's set-ups (module docstring).

    ``see`` is given every frame's views as they are tagged (keeps their estimates);
    ``revise(part, owned)`` gives the items of the window ``part`` (rows ``owned``) whose
    centre their set-up changed, with that centre, to be tagged again.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled  # False: every frame's centre from its own image alone
        self._seen: dict[tuple[str, object], Estimated] = {}
        self._settled: dict[tuple, SeriesCentre] = {}  # (folder, options) -> its centre

    def offer(self, items: Iterable[Item]) -> Iterator[Item]:
        """``items``, those of a folder and options whose set-up settled a centre in an
        earlier window carrying it to be taken at a glance (:class:`SeriesCentre`);
        lazily, so each window sees what the windows before it settled."""
        if not self.enabled:
            yield from items
            return
        for item in items:
            offered = self._settled.get(_place(item))
            yield (
                item
                if offered is None or item.centre is not None
                else replace(item, centre=offered)
            )

    def see(self, views: list[Views]) -> None:
        """Keep the estimates of ``views`` (by path and frame) until their window is settled."""
        for v in views:
            self.keep(v.source, v.frame, v.estimated)

    def keep(self, source: str, frame: object, estimated: Estimated | None) -> None:
        """Keep one frame's estimate (None: its centre came from elsewhere)."""
        if estimated is not None and self.enabled:
            self._seen[(source, frame)] = estimated

    def revise(self, part: list[Item], owned: list[list[dict]]) -> dict[int, Item]:
        """{position in ``part``: the item with its settled centre} for the frames whose
        centre their set-up changed (frames of one row each), and the item without a
        centre for frames that took an offered centre unseen in a window that shows
        another set-up (module docstring)."""
        from scattertag.beam.series import settle, shows_another

        frames: dict[tuple, dict[str, list[int]]] = {}  # set-up -> file -> positions
        estimated: dict[str, Estimated] = {}
        for n, item in enumerate(part):
            if len(owned[n]) != 1:
                continue
            row = owned[n][0]
            got = self._seen.pop((row["path"], row["frame"]), None)
            if got is None or item.options is None:
                continue
            file = item.location or item.source
            estimated.setdefault(file, got)
            frames.setdefault(setup_key(item, got.shape), {}).setdefault(file, []).append(n)
        self._seen.clear()  # this window is done: frames not seen here belonged to it
        changed: dict[int, Item] = {}
        for key, files in _by_header(frames, estimated):
            unseen = [f for f in files if estimated[f].estimate.method == UNSEEN]
            names = [f for f in files if f not in unseen]  # unseen frames do not vote
            shape = estimated[next(iter(files))].shape
            settled = settle([estimated[f].estimate for f in names], shape)
            found = [i for i, s in enumerate(settled) if s.estimate.found]
            self._remember(key, [settled[i].estimate for i in found], [names[i] for i in found])
            offered = estimated[unseen[0]].estimate if unseen else None
            if offered is not None and shows_another(
                [settled[i].estimate for i in found], offered.x, offered.y, shape
            ):
                for n in (n for f in unseen for n in files[f]):
                    changed[n] = replace(part[n], centre=None)  # estimated after all
            for f, s in zip(names, settled):
                if s.how == "own":
                    continue
                own = estimated[f].estimate
                origin = [_name(part[files[names[i]][0]]) for i in s.origin]
                note = _note(s.how, origin, own.x, own.y, own.confidence)
                centre = SeriesCentre(s.estimate.x, s.estimate.y, note)
                for n in files[f]:
                    changed[n] = replace(part[n], centre=centre)
        return changed

    def _remember(self, key: tuple, found: list, names: list[str]) -> None:
        """Keep the centre the ``found`` estimates of set-up ``key`` agree on (at least
        MIN_FOUND of them) for later windows; forget it when they disagree."""
        from scattertag.beam.series import MIN_FOUND, agreeing_centre

        folder, shape, options, setup = key
        centre = agreeing_centre(found, shape) if len(found) >= MIN_FOUND else None
        if centre is None:
            if len(found) >= MIN_FOUND:
                self._settled.pop((folder, options), None)
            return
        where = (
            f"the centre ({centre[0]:.1f}, {centre[1]:.1f}) of earlier frames of the same "
            f"folder and shape ({_listed([Path(n).name for n in names])})"
        )
        note = f"beam centre from the series: the frame agrees at a glance with {where}"
        unseen = (
            f"beam centre from the series, taken without a full estimate: {where}; the "
            "frame shows no centre of its own (no clear isotropy peak, no beamstop shadow "
            "elsewhere)"
        )
        confidence = min(e.confidence for e in found)
        self._settled[(folder, options)] = SeriesCentre(
            *centre, note, True, shape, confidence, setup, unseen
        )


def _by_header(
    frames: dict[tuple, dict[str, list[int]]], estimated: dict[str, Estimated]
) -> list[tuple[tuple, dict[str, list[int]]]]:
    """The set-ups of ``frames`` (folder, shape, options -> file -> positions) split by what
    the files' headers say of pixel size and distance (:func:`merged_setups`): (set-up key
    with those values, its files)."""
    out: list[tuple[tuple, dict[str, list[int]]]] = []
    for key, files in frames.items():
        names = list(files)
        values = merged_setups([estimated[f].setup for f in names])
        parts: dict[tuple, dict[str, list[int]]] = {}
        for f, v in zip(names, values):
            parts.setdefault(v, {})[f] = files[f]
        out += [((*key, v), part) for v, part in parts.items()]
    return out


def _note(how: str, origin: list[str], x: float, y: float, confidence: float) -> str:
    """The warning of a frame whose centre its series settled."""
    alone = f"alone the image gave ({x:.1f}, {y:.1f}, confidence {confidence:.2f})"
    if how == "pose":
        return (
            f"beam centre from the series: this frame's arcs fitted as cones of the detector "
            f"pose (distance, tilt) of {origin[0]}; {alone}"
        )
    return (
        f"beam centre from the series: the median of {len(origin)} agreeing centres of "
        f"frames of the same folder and shape ({_listed(origin)}); {alone}"
    )

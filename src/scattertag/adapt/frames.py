"""The network views of the frames of a labels table, with their labels.

Each row's file is read and turned into the model's two views with the prediction
preprocessing (:class:`scattertag.prediction.prepare.Preparer`), so a labelled frame is
seen exactly as ``scattertag predict`` sees it. A multi-frame file without a ``frame``
gives one labelled frame per frame, all with the row's tags. Rows whose file cannot be
read or prepared are skipped and reported, never fatal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from scattertag.adapt.labels import LabelTable
from scattertag.cache import files_digest
from scattertag.errors import UserError
from scattertag.io.files import atomic_path
from scattertag.prediction.prepare import Preparer, Views
from scattertag.prediction.sources import Item

#: counts -> counts: an exposure augmentation applied before the views are made.
CountsMap = Callable[[np.ndarray, np.random.Generator], np.ndarray]


class NoFramesError(UserError):
    """Every labelled row failed: nothing left to score or train on."""


@dataclass
class LabelledFrames:
    """Views and labels of labelled frames, in table order.

    image : (n, C, H, W) float32; coeff : (n, C, N+1, K) float32;
    labels : (n, T) float, 1 / 0 / NaN (unknown) in the model's tag order;
    groups, sources : (n,) group and ``path[frame]`` of each frame;
    skipped : messages of the rows (or frames) that could not be used.
    """

    image: np.ndarray
    coeff: np.ndarray
    labels: np.ndarray
    groups: list[str]
    sources: list[str]
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, rows: np.ndarray | list[int]) -> LabelledFrames:
        """The frames at ``rows`` (indices or a boolean mask)."""
        rows = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows, int)
        pick = lambda seq: [seq[i] for i in rows]  # noqa: E731
        return LabelledFrames(
            self.image[rows],
            self.coeff[rows],
            self.labels[rows],
            pick(self.groups),
            pick(self.sources),
            list(self.skipped),
        )

    def dataset(self) -> Dataset:
        """A Dataset of {"image", "coeff", "labels"} tensors (labels may hold NaN)."""
        return TensorItems(self.image, self.coeff, self.labels)


class TensorItems(Dataset):
    """Items {"image", "coeff", "labels"} of in-memory arrays."""

    def __init__(self, image: np.ndarray, coeff: np.ndarray, labels: np.ndarray) -> None:
        self.image = torch.as_tensor(image, dtype=torch.float32)
        self.coeff = torch.as_tensor(coeff, dtype=torch.float32)
        self.labels = torch.as_tensor(labels, dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {
            "image": self.image[index],
            "coeff": self.coeff[index],
            "labels": self.labels[index],
        }


class VariantPreparer(Preparer):
    """A Preparer whose Views hold (1 + copies, ...) stacked image and coeff arrays.

    Variant 0 is the frame as read; the others pass the counts through ``counts_map``
    first. All use the same cached ViewMaker, so a variant costs a view, not a setup.
    """

    def __init__(self, view_spec, copies: int, counts_map: CountsMap | None, seed: int) -> None:
        super().__init__(view_spec)
        if copies and counts_map is None:
            raise ValueError("copies need a counts_map")
        self.copies = copies
        self.counts_map: CountsMap = counts_map or (lambda counts, rng: counts)
        self.rng = np.random.default_rng(seed)

    def _views(self, item, frame):
        views = [super()._views(item, frame)]
        for _ in range(self.copies if not views[0].error else 0):
            counts = self.counts_map(np.asarray(frame.counts), self.rng)
            views.append(super()._views(item, replace(frame, counts=counts)))
        bad = next((v for v in views if v.error), None)
        if bad is not None:
            return bad
        images = [np.asarray(v.image) for v in views]
        coeffs = [np.asarray(v.coeff) for v in views]
        return Views(item.source, frame.index, np.stack(images), np.stack(coeffs))


def labelled_frames(
    table: LabelTable,
    vocabulary: list[str],
    view_spec,
    progress: bool = False,
    cache: str | Path | None = None,
) -> LabelledFrames:
    """Read and prepare every row of ``table``; labels aligned to ``vocabulary``.

    Raises LabelsError for tags the model does not know and NoFramesError when no row is left.
    """
    return labelled_variants(table, vocabulary, view_spec, progress=progress, cache=cache)[0]


def labelled_variants(
    table: LabelTable,
    vocabulary: list[str],
    view_spec,
    copies: int = 0,
    counts_map: CountsMap | None = None,
    seed: int = 0,
    progress: bool = False,
    cache: str | Path | None = None,
) -> list[LabelledFrames]:
    """[frames as read, then ``copies`` variants through ``counts_map``], the same frames in each.

    A frame is kept only if all its variants could be made. With ``cache`` (a folder) the
    views are saved there and reused by any later call with the same table, geometry, view
    spec, variants and code (:func:`views_code`).
    """
    labels = table.aligned(vocabulary)
    key = _cache_key(table, view_spec, copies, counts_map, seed)
    cached = Path(cache) / f"views_{key}.npz" if cache is not None else None
    if cached is not None and cached.is_file():
        with np.load(cached) as z:
            rows, images, coeffs = list(z["rows"]), z["image"], z["coeff"]
            sources, skipped = list(z["sources"]), list(z["skipped"])
        return _variants(table, labels, rows, images, coeffs, sources, skipped)
    prepare = VariantPreparer(view_spec, copies, counts_map, seed)
    keep: list[tuple[int, Views]] = []
    skipped = list(table.skipped)
    rows = tqdm(list(enumerate(table.items)), desc="labelled frames", disable=not progress)
    for row, item in rows:
        for views in prepare(item):
            if views.error:
                skipped.append(f"{table.path.name} line {table.lines[row]}: {views.error}")
            else:
                keep.append((row, views))
    if not keep:
        raise NoFramesError(
            f"{table.path}: no labelled frame left ({len(skipped)} row(s) skipped: "
            + "; ".join(skipped[:5])
            + ")"
        )
    rows = [r for r, _ in keep]
    images = np.stack([np.asarray(v.image) for _, v in keep], axis=1)  # (1 + copies, n, ...)
    coeffs = np.stack([np.asarray(v.coeff) for _, v in keep], axis=1)
    sources = [_name(table.items[r], v) for r, v in keep]
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cached) as tmp, open(tmp, "wb") as f:
            np.savez(f, rows=rows, image=images, coeff=coeffs, sources=sources, skipped=skipped)
    return _variants(table, labels, rows, images, coeffs, sources, skipped)


def _variants(table, labels, rows, images, coeffs, sources, skipped) -> list[LabelledFrames]:
    """One LabelledFrames per variant from (1 + copies, n, ...) view stacks."""
    return [
        LabelledFrames(
            image=images[k],
            coeff=coeffs[k],
            labels=labels[rows],
            groups=[table.groups[r] for r in rows],
            sources=[str(s) for s in sources],
            skipped=[str(s) for s in skipped],
        )
        for k in range(len(images))
    ]


@cache
def views_code() -> str:
    """Digest of the code that makes the views (every module of the package, the beam-centre
    ranker's weights) and numpy's version: views kept by another version are made again."""
    import scattertag

    root = Path(str(scattertag.__file__)).parent
    files = [*sorted(root.rglob("*.py")), root / "pretrained" / "beam_center_ranker.json"]
    return files_digest(root, files, f"numpy {np.__version__}")


def _cache_key(table: LabelTable, view_spec, copies: int, counts_map, seed: int) -> str:
    """Digest of everything the views depend on: table bytes, items, spec, variants, code."""
    text = json.dumps(
        [
            views_code(),
            table.sha256,
            [repr(item) for item in table.items],
            view_spec.to_dict(),
            copies,
            getattr(counts_map, "__qualname__", None),
            seed,
        ],
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _name(item: Item, views: Views) -> str:
    """``path`` or ``path[frame]`` when the file has several frames."""
    return (
        item.source
        if item.frame is not None or not views.frame
        else f"{item.source}[{views.frame}]"
    )

"""The dataset manifest: ``manifest.json`` describing a directory of shards.

The manifest records what was built (format version, vocabulary, simulator recipe, seed,
view spec, sizes) and what is finished (per-shard counts, tag frequencies, SHA-256). It is
rewritten atomically after every finished shard, so a killed build can resume.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from scattertag.errors import UserError
from scattertag.io.files import read_json, write_json

#: Version of the dataset layout (manifest + HDF5 shards); bump on any incompatible change.
FORMAT_VERSION = 1

#: Number of shards; shard ``NUM_SHARDS - 1`` is the default test shard.
NUM_SHARDS = 10

MANIFEST_NAME = "manifest.json"

#: Manifest fields that define a dataset; a build may only resume if all of them agree.
CONFIG_FIELDS = (
    "format_version",
    "recipe",
    "seed",
    "experiments",
    "images_per_experiment",
    "view_spec",
    "keep_raw",
)


def shard_name(index: int) -> str:
    """File name of shard ``index``: ``shard_00.h5`` ... ``shard_09.h5``."""
    return f"shard_{index:02d}.h5"


def legacy_shard_name(index: int) -> str:
    """File name of shard ``index`` in datasets built before the rename: ``batch_NN.h5``."""
    return f"batch_{index:02d}.h5"


def shard_of_experiment(experiment: int) -> int:
    """Shard holding ``experiment``: experiment e goes to shard e mod 10 (whole experiments)."""
    return experiment % NUM_SHARDS


@dataclass
class ShardEntry:
    """One finished shard: its file, image count, experiments, tag counts, size and SHA-256."""

    file: str
    images: int
    experiments: list[int]
    tag_counts: dict[str, int]
    sha256: str
    bytes: int


@dataclass
class DatasetManifest:
    """What a dataset directory holds; ``shards[k]`` is None until shard k is finished.

    ``recipe`` is the simulator's Recipe and ``view_spec`` the ViewSpec, both as dicts;
    shapes are lists: ``image_shape`` (H, W) frames, ``input_shape`` (C, H, W) image view,
    ``coeff_shape`` (C, N+1, K) coefficient view.
    """

    recipe: dict[str, Any]
    seed: int
    experiments: int
    images_per_experiment: int
    view_spec: dict[str, Any]
    keep_raw: bool
    vocabulary: list[str]
    shards: list[ShardEntry | None] = field(default_factory=lambda: [None] * NUM_SHARDS)
    format_version: int = FORMAT_VERSION
    complete: bool = False
    image_shape: list[int] | None = None
    input_shape: list[int] | None = None
    coeff_shape: list[int] | None = None
    images: int = 0
    tag_counts: dict[str, int] = field(default_factory=dict)

    def config(self) -> dict[str, Any]:
        """The fields that define the dataset (:data:`CONFIG_FIELDS`), as JSON values."""
        return {k: getattr(self, k) for k in CONFIG_FIELDS}

    def shard_path(self, root: str | Path, index: int) -> Path:
        """Path of shard ``index``: the manifest's file name if finished, else the new name."""
        entry = self.shards[index]
        return Path(root) / (entry.file if entry is not None else shard_name(index))

    def finished(self) -> list[int]:
        """Indices of the finished shards."""
        return [k for k, entry in enumerate(self.shards) if entry is not None]

    def update_totals(self) -> None:
        """Recount ``images``, ``tag_counts`` and ``complete`` from the finished shards."""
        done = [s for s in self.shards if s is not None]
        self.images = sum(s.images for s in done)
        self.tag_counts = {t: sum(s.tag_counts[t] for s in done) for t in self.vocabulary}
        self.complete = len(done) == NUM_SHARDS

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the layout of ``manifest.json``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "manifest") -> DatasetManifest:
        """Inverse of :meth:`to_dict`; UserError naming ``source`` on a missing field."""
        missing = [k for k in (*CONFIG_FIELDS, "vocabulary", "shards") if k not in data]
        if missing:
            raise UserError(f"{source}: manifest lacks fields {', '.join(missing)}")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["shards"] = [None if s is None else ShardEntry(**s) for s in data["shards"]]
        return cls(**values)

    @classmethod
    def read(cls, root: str | Path) -> DatasetManifest:
        """Read and check ``root/manifest.json``; UserError naming the file on any problem."""
        path = Path(root) / MANIFEST_NAME
        if not path.is_file():
            raise UserError(f"{path}: no manifest; is {Path(root)} a scattertag dataset directory?")
        data = read_json(path)
        if not isinstance(data, dict) or "format_version" not in data:
            raise UserError(f"{path}: not a scattertag manifest (no format_version)")
        version = data["format_version"]
        if version != FORMAT_VERSION:
            raise UserError(
                f"{path}: dataset format version {version}, this scattertag reads version "
                f"{FORMAT_VERSION}; rebuild the dataset with this version"
            )
        return cls.from_dict(data, str(path))

    def write(self, root: str | Path) -> Path:
        """Write ``root/manifest.json`` atomically (temporary name, fsync, rename)."""
        return write_json(Path(root) / MANIFEST_NAME, self.to_dict())


def read_dataset_manifest(root: str | Path) -> DatasetManifest:
    """The checked manifest of dataset directory ``root`` (see :meth:`DatasetManifest.read`)."""
    return DatasetManifest.read(root)


def read_matching_manifests(roots: list[Path]) -> list[DatasetManifest]:
    """The manifests of ``roots``; UserError naming both unless all match the first's
    vocabulary, view spec and view shapes (their frames must mean the same to one network)."""
    manifests = [DatasetManifest.read(root) for root in roots]
    first = manifests[0]
    for root, other in zip(roots[1:], manifests[1:]):
        for name in ("vocabulary", "view_spec", "input_shape", "coeff_shape"):
            ours, theirs = getattr(first, name), getattr(other, name)
            if ours != theirs:
                raise UserError(
                    f"{name} mismatch: dataset {roots[0]} has {ours}, but {root} has {theirs}; "
                    "datasets used together must be built with the same views"
                )
    return manifests


def config_differences(existing: dict, requested: dict, prefix: str = "") -> list[str]:
    """Dotted names of the fields where two configurations differ, with both values."""
    diffs = []
    for key in sorted(set(existing) | set(requested)):
        name = f"{prefix}{key}"
        old, new = existing.get(key, "<absent>"), requested.get(key, "<absent>")
        if isinstance(old, dict) and isinstance(new, dict):
            diffs += config_differences(old, new, name + ".")
        elif old != new:
            diffs.append(f"{name}: {old!r} in the directory, {new!r} requested")
    return diffs

"""The dataset manifest: ``manifest.json`` describing a directory of shards.

The manifest records what was built (format version, vocabulary, recipe, seed, view
spec, sizes) and what is finished (per-shard counts, tag frequencies, SHA-256). It is
rewritten atomically after every finished shard, so a killed build can resume.
"""

from __future__ import annotations

from pathlib import Path

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
    """File name of shard ``index``: ``batch_00.h5`` ... ``batch_09.h5``."""
    return f"batch_{index:02d}.h5"


def shard_of_experiment(experiment: int) -> int:
    """Shard holding ``experiment``: experiment e goes to shard e mod 10 (whole experiments only)."""
    return experiment % NUM_SHARDS


def write_manifest(root: str | Path, manifest: dict) -> Path:
    """Write ``root/manifest.json`` atomically (temporary name, fsync, rename)."""
    return write_json(Path(root) / MANIFEST_NAME, manifest)


def read_manifest(root: str | Path) -> dict:
    """Read and check ``root/manifest.json``; ValueError naming the file on any problem."""
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no manifest; is {Path(root)} a scattertag dataset directory?"
        )
    manifest = read_json(path)
    if not isinstance(manifest, dict) or "format_version" not in manifest:
        raise ValueError(f"{path}: not a scattertag manifest (no format_version)")
    version = manifest["format_version"]
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{path}: dataset format version {version}, this scattertag reads version {FORMAT_VERSION}; "
            "rebuild the dataset with this version"
        )
    missing = [k for k in (*CONFIG_FIELDS, "vocabulary", "shards") if k not in manifest]
    if missing:
        raise ValueError(f"{path}: manifest lacks fields {', '.join(missing)}")
    return manifest


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

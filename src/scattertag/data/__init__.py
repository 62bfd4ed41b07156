"""Datasets: ten HDF5 shards built in parallel (``scattertag build``), inspected and read.

``ShardDataset`` imports torch, so it is loaded on first use: build workers stay light.
"""

from scattertag.data.manifest import DatasetManifest, read_dataset_manifest

__all__ = [
    "BuildConfig",
    "DatasetManifest",
    "ShardDataset",
    "build",
    "build_dataset",
    "fold_shards",
    "read_dataset_manifest",
]


def __getattr__(name: str):
    """Lazy exports: torch (dataset) and the build machinery load only when asked for."""
    if name in ("ShardDataset", "fold_shards"):
        from scattertag.data import dataset

        return getattr(dataset, name)
    if name in ("BuildConfig", "build", "build_dataset"):
        from scattertag.data import build

        return getattr(build, name)
    raise AttributeError(f"module 'scattertag.data' has no attribute {name!r}")

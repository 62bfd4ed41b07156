"""Datasets: ten HDF5 shards built in parallel (``scattertag build``), inspected and read.

``ShardDataset`` imports torch, so it is loaded on first use: build workers stay light.
"""

from scattertag.data.manifest import read_manifest

__all__ = ["ShardDataset", "build_dataset", "fold_shards", "read_manifest"]


def __getattr__(name: str):
    """Lazy exports: torch (dataset) and the build machinery load only when asked for."""
    if name in ("ShardDataset", "fold_shards"):
        from scattertag.data import dataset

        return getattr(dataset, name)
    if name == "build_dataset":
        from scattertag.data.build import build_dataset

        return build_dataset
    raise AttributeError(f"module 'scattertag.data' has no attribute {name!r}")

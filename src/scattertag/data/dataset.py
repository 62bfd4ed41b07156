"""A PyTorch Dataset over a directory of HDF5 shards, read lazily.

Each process opens each shard it reads once, on first access: the file handles are
dropped when the dataset is pickled or copied into a DataLoader worker (h5py handles
must not cross a fork or a pickle), so ``DataLoader(num_workers > 0)`` is safe.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from scattertag.data.manifest import NUM_SHARDS, DatasetManifest
from scattertag.data.shards import open_shard
from scattertag.data.verify import verify_shard
from scattertag.errors import UserError


def fold_shards(test_shard: int = NUM_SHARDS - 1) -> tuple[list[int], list[int]]:
    """k-fold split of the ten shards: (train shards = all others, [test_shard])."""
    if not (isinstance(test_shard, (int, np.integer)) and 0 <= test_shard < NUM_SHARDS):
        raise UserError(
            f"test_shard must be an integer in [0, {NUM_SHARDS - 1}], got {test_shard!r}"
        )
    return [k for k in range(NUM_SHARDS) if k != test_shard], [int(test_shard)]


class ShardDataset(Dataset):
    """Images, FB coefficients and labels of some shards of a dataset directory.

    ``ds[i]`` -> {"image": float32 (C, H, W) (frame (1, S, S) or cake (4, A, R)),
    "coeff": float32 (C, N+1, K),
    "labels": float32 (T,), "experiment": int}; ``ds.experiments`` (len(ds),) int array;
    ``ds.manifest`` the directory's DatasetManifest (vocabulary, view_spec, recipe, ...).
    """

    def __init__(self, root: str | Path, shards: list[int] | None = None) -> None:
        self.root = Path(root)
        self.manifest = DatasetManifest.read(self.root)
        self.shards = list(range(NUM_SHARDS)) if shards is None else [int(k) for k in shards]
        for k in self.shards:
            if not 0 <= k < NUM_SHARDS:
                raise UserError(f"shard {k} out of range [0, {NUM_SHARDS - 1}]")
            entry = self.manifest.shards[k]
            if entry is None:
                raise UserError(
                    f"{self.manifest.shard_path(self.root, k)}: shard not finished; "
                    "complete the build first"
                )
            verify_shard(self.manifest.shard_path(self.root, k), entry.sha256)
        experiments, rows = [], []
        for k in self.shards:
            with open_shard(self.manifest.shard_path(self.root, k)) as f:
                e = f["experiment"][:]
            experiments.append(e)
            rows.append(np.stack([np.full(len(e), k), np.arange(len(e))], axis=1))
        self.experiments = (
            np.concatenate(experiments).astype(np.int64) if experiments else np.zeros(0, np.int64)
        )
        self._rows = np.concatenate(rows) if rows else np.zeros((0, 2), np.int64)
        self._files: dict[int, h5py.File] = {}
        self._pid = os.getpid()

    @classmethod
    def folds(
        cls, root: str | Path, test_shard: int = NUM_SHARDS - 1
    ) -> tuple[ShardDataset, ShardDataset]:
        """(train, test) datasets: test = shard ``test_shard``, train = the nine others."""
        train, test = fold_shards(test_shard)
        return cls(root, train), cls(root, test)

    @property
    def vocabulary(self) -> list[str]:
        """Tag names in label order."""
        return list(self.manifest.vocabulary)

    def __len__(self) -> int:
        return len(self._rows)

    def _file(self, shard: int) -> h5py.File:
        """This process's open handle of ``shard`` (opened on first use)."""
        if (
            self._pid != os.getpid()
        ):  # forked into a DataLoader worker: the parent's handles are not ours
            self._files, self._pid = {}, os.getpid()
        if shard not in self._files:
            self._files[shard] = open_shard(self.manifest.shard_path(self.root, shard))
        return self._files[shard]

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        shard, row = self._rows[index]
        f = self._file(int(shard))
        return {
            "image": torch.from_numpy(f["image"][row]),
            "coeff": torch.from_numpy(f["coeff"][row]),
            "labels": torch.from_numpy(f["labels"][row].astype(np.float32)),
            "experiment": int(self.experiments[index]),
        }

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_files"] = {}  # open HDF5 handles do not pickle; each process opens its own
        return state

    def close(self) -> None:
        """Close this process's open shard files."""
        for f in self._files.values():
            f.close()
        self._files = {}


#: Experiment keys of the i-th of several datasets are ``i * EXPERIMENT_STRIDE + experiment``,
#: so experiments of different datasets never share a key (validation splits, grouping).
EXPERIMENT_STRIDE = 1_000_000


def joined_shards(roots: list[Path], shards: list[int]) -> tuple[Dataset, np.ndarray]:
    """``shards`` of every dataset in ``roots`` as one dataset, and its (len,) experiment keys.

    One root gives its :class:`ShardDataset` as is; several a ``ConcatDataset`` in ``roots``
    order. Check the roots with :func:`~scattertag.data.manifest.read_matching_manifests`.
    """
    parts = [ShardDataset(root, shards) for root in roots]
    keys = np.concatenate([i * EXPERIMENT_STRIDE + p.experiments for i, p in enumerate(parts)])
    return (parts[0] if len(parts) == 1 else ConcatDataset(parts)), keys

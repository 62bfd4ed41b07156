"""ShardDataset: lazy reads, k-fold shard selection, DataLoader workers."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from conftest import build_small
from scattertag.data import ShardDataset, fold_shards
from scattertag.data.manifest import legacy_shard_name, shard_name
from scattertag.errors import UserError


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    build_small(root, images_per_experiment=3, experiments=20)
    return root


def test_folds_and_items(root):
    assert fold_shards() == (list(range(9)), [9])
    assert fold_shards(0) == (list(range(1, 10)), [0])
    with pytest.raises(ValueError, match=r"test_shard must be an integer in \[0, 9\]"):
        fold_shards(10)
    train, test = ShardDataset.folds(root)
    assert len(train) == 9 * 6 and len(test) == 6
    assert set(test.experiments) == {9, 19} and not set(train.experiments) & set(test.experiments)
    item = test[4]
    with h5py.File(root / shard_name(9)) as f:
        assert torch.equal(item["image"], torch.from_numpy(f["image"][4]))
        assert torch.equal(item["labels"], torch.from_numpy(f["labels"][4].astype(np.float32)))
        assert item["experiment"] == f["experiment"][4]
    assert item["image"].dtype == torch.float32 and item["image"].shape == (1, 16, 16)
    assert item["coeff"].shape == (3, 5, 6) and item["labels"].shape == (17,)
    assert test.manifest.view_spec["input_size"] == 16 and len(test.vocabulary) == 17


def test_dataloader_workers_read_the_same(root):
    ds = ShardDataset(root, shards=[1, 2])
    ds[0]  # open a handle in the parent first: workers must not reuse it
    serial = [ds[i]["coeff"] for i in range(len(ds))]
    loader = DataLoader(ds, batch_size=4, num_workers=2, shuffle=False)
    parallel = torch.cat([batch["coeff"] for batch in loader])
    assert torch.equal(parallel, torch.stack(serial))
    assert torch.equal(
        torch.cat([b["experiment"] for b in loader]), torch.from_numpy(ds.experiments)
    )


def test_bad_shards(root, tmp_path):
    with pytest.raises(ValueError, match="shard 10 out of range"):
        ShardDataset(root, shards=[10])
    with pytest.raises(UserError, match="no manifest"):
        ShardDataset(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    path = copy / shard_name(5)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UserError, match="shard_05.h5: checksum mismatch"):  # verified first
        ShardDataset(copy, shards=[5])


def test_datasets_with_the_old_shard_names_still_read(root, tmp_path):
    """Datasets built before the rename hold batch_NN.h5; their manifest names the files."""
    old = tmp_path / "old"
    shutil.copytree(root, old)
    manifest = json.loads((old / "manifest.json").read_text())
    for k, entry in enumerate(manifest["shards"]):
        entry["file"] = legacy_shard_name(k)
        (old / shard_name(k)).rename(old / entry["file"])
    (old / "manifest.json").write_text(json.dumps(manifest))
    new, legacy = ShardDataset(root, [9]), ShardDataset(old, [9])
    assert torch.equal(new[3]["image"], legacy[3]["image"])

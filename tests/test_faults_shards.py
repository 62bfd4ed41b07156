"""Shards are verified before use: checksum against the manifest, documented value ranges."""

import json

import h5py
import pytest

from conftest import build_small
from scattertag.data import ShardDataset
from scattertag.data.verify import _VERIFIED
from scattertag.errors import UserError
from scattertag.io.files import sha256


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("d")
    build_small(root)
    return root


def corrupt(root, value):
    """Write ``value`` into shard 0's first coefficient; returns the shard path."""
    manifest = json.loads((root / "manifest.json").read_text())
    path = root / manifest["shards"][0]["file"]
    with h5py.File(path, "r+") as f:
        f["coeff"][0, 0, 0, 0] = value
    _VERIFIED.clear()
    return path, manifest


def test_a_changed_shard_fails_its_checksum(dataset, tmp_path):
    root = tmp_path / "copy"
    root.mkdir()
    for p in dataset.iterdir():
        (root / p.name).write_bytes(p.read_bytes())
    ShardDataset(root, [0])
    path, _ = corrupt(root, 0.5)
    with pytest.raises(UserError, match=f"{path}: checksum mismatch"):
        ShardDataset(root, [0])


def test_values_beyond_the_documented_bound_are_refused(dataset, tmp_path):
    root = tmp_path / "copy"
    root.mkdir()
    for p in dataset.iterdir():
        (root / p.name).write_bytes(p.read_bytes())
    path, manifest = corrupt(root, 73.5)
    manifest["shards"][0]["sha256"] = sha256(path)  # a consistent but wrong shard
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match=r"coeff of row 0 is 73.5, outside the documented range"):
        ShardDataset(root, [0])

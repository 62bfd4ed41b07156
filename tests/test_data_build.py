"""Dataset build: layout, determinism across workers and engines, resume, refusal, bad input."""

from __future__ import annotations

import json
import time

import h5py
import hdf5plugin
import numpy as np
import pytest

from conftest import SMALL_RECIPE, SMALL_SPEC, build_small
from scattertag.data import read_dataset_manifest
from scattertag.data.build import Pipeline
from scattertag.data.manifest import MANIFEST_NAME, NUM_SHARDS, shard_name
from scattertag.data.shards import sha256
from scattertag.features.views import ViewMaker, ViewSpec
from scattertag.geometry import Geometry
from scattertag.parallel import THREAD_VARIABLES
from scattertag.simulate import Recipe, draw_experiment, simulate_image
from scattertag.tags import DEFAULT_VOCABULARY


def disk_full_at_experiment_5(exp, i):
    """simulate_image that fails like a full disk on experiment 5 (a build killed mid-way)."""
    if exp.index == 5:
        raise OSError(28, "No space left on device")
    return simulate_image(exp, i)


def contents(root):
    """Every dataset of every shard, as arrays, for bit-for-bit comparison."""
    out = {}
    for k in range(NUM_SHARDS):
        with h5py.File(root / shard_name(k)) as f:
            for name, dset in f.items():
                out[k, name] = dset[()]
    return out


# ---- tests --------------------------------------------------------------------------------


def test_layout_and_manifest(tmp_path):
    manifest = build_small(tmp_path, keep_raw=True)
    assert manifest == read_dataset_manifest(tmp_path) and manifest.complete
    assert manifest.images == NUM_SHARDS * 5 and manifest.vocabulary == list(DEFAULT_VOCABULARY)
    assert (
        Recipe.from_dict(manifest.recipe) == SMALL_RECIPE
        and ViewSpec.from_dict(manifest.view_spec) == SMALL_SPEC
    )
    total = np.zeros(len(DEFAULT_VOCABULARY), int)
    for k, entry in enumerate(manifest.shards):
        assert entry.sha256 == sha256(tmp_path / shard_name(k))
        with h5py.File(tmp_path / shard_name(k)) as f:
            experiments = f["experiment"][:]
            assert set(experiments % NUM_SHARDS) == {k}  # whole experiments, e -> e mod 10
            assert f["image"].shape == (5, 1, 16, 16) and f["coeff"].shape == (5, 3, 5, 6)
            # rows ordered by (experiment, image)
            order = np.lexsort((f["image_index"][:], experiments))
            assert (order == np.arange(5)).all()
            e, i = int(experiments[2]), int(f["image_index"][2])
            sample = simulate_image(draw_experiment(SMALL_RECIPE, 3, e), i)
            assert (f["raw"][2] == sample.counts).all() and (f["mask"][2] == sample.mask).all()
            assert (f["labels"][2] == sample.labels).all()
            image, coeff = ViewMaker(SMALL_SPEC, sample.geometry, sample.mask)(
                sample.counts, sample.mask
            )
            assert np.array_equal(f["image"][2], image) and np.array_equal(f["coeff"][2], coeff)
            assert DEFAULT_VOCABULARY.tags_from_keys(json.loads(f["keys"][2])) == sample.tags
            assert Geometry.from_dict(json.loads(f["geometry"][2])) == sample.geometry
            assert f["raw"].chunks == (1, 32, 32)  # one frame a chunk, bitshuffle-LZ4
            assert f["raw"].id.get_create_plist().get_filter(0)[0] == hdf5plugin.BSHUF_ID
            counts = f["labels"][:].sum(axis=0, dtype=np.int64)
        assert list(entry.tag_counts.values()) == counts.tolist()
        total += counts
    assert list(manifest.tag_counts.values()) == total.tolist()
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.slow
def test_deterministic_across_worker_counts(tmp_path):
    build_small(tmp_path / "w1", workers=1)
    build_small(tmp_path / "w2", workers=2)
    build_small(tmp_path / "w8", workers=8)
    reference = contents(tmp_path / "w1")
    for name in ("w2", "w8"):
        other = contents(tmp_path / name)
        assert other.keys() == reference.keys()
        assert all(np.array_equal(other[key], reference[key]) for key in reference)
        # the files themselves are byte-identical: the manifests' checksums agree
        assert (
            read_dataset_manifest(tmp_path / name).shards
            == read_dataset_manifest(tmp_path / "w1").shards
        )


class ThreadReportingMaker(ViewMaker):
    """A real ViewMaker whose coefficient view holds 1 / (threads of this worker's BLAS pool)."""

    def __call__(self, counts, mask=None, geometry_known=None):
        from threadpoolctl import threadpool_info

        time.sleep(0.2)  # busy long enough that the pool starts its second worker
        image, coeff = super().__call__(counts, mask, geometry_known)
        threads = max(pool["num_threads"] for pool in threadpool_info())
        return image, np.full_like(coeff, 1.0 / threads)


def test_every_build_worker_runs_blas_on_one_thread(tmp_path, monkeypatch):
    """A BLAS call on two threads may round differently from one (the 1-ULP shard difference
    between 1 and 2 workers): a 'spawn' pool starts its later workers on demand, with the
    parent's environment, so each worker must set one thread itself."""
    for name in THREAD_VARIABLES:
        monkeypatch.setenv(name, "2")
    pipeline = Pipeline(draw_experiment, simulate_image, ThreadReportingMaker)
    build_small(tmp_path, workers=2, pipeline=pipeline, images_per_experiment=1)
    for k in range(NUM_SHARDS):
        with h5py.File(tmp_path / shard_name(k)) as f:
            assert np.all(f["coeff"][()] == 1.0), f"shard {k}: a worker ran BLAS on 2 threads"


def test_failed_build_keeps_finished_shards_and_resumes(tmp_path):
    broken = Pipeline(draw_experiment, disk_full_at_experiment_5, ViewMaker)
    with pytest.raises(OSError, match="No space left on device.*finished shards are kept"):
        build_small(tmp_path, pipeline=broken)
    manifest = read_dataset_manifest(tmp_path)
    assert [entry is not None for entry in manifest.shards] == [True] * 5 + [False] * 5
    assert not manifest.complete and not list(tmp_path.glob("*.tmp"))
    kept = {k: (tmp_path / shard_name(k)).stat().st_mtime_ns for k in range(5)}
    resumed = build_small(tmp_path)
    assert {k: (tmp_path / shard_name(k)).stat().st_mtime_ns for k in range(5)} == kept
    assert resumed.complete and resumed.shards == build_small(tmp_path / "fresh").shards


def test_corrupt_shard_is_rebuilt(tmp_path):
    first = build_small(tmp_path)
    path = tmp_path / shard_name(2)
    path.write_bytes(path.read_bytes()[:1000])  # truncated
    with pytest.warns(UserWarning, match="shard_02.h5"):
        again = build_small(tmp_path)
    assert again.shards == first.shards


def test_refuses_different_recipe(tmp_path):
    build_small(tmp_path)
    with pytest.raises(ValueError, match=r"seed: 3 in the directory, 4 requested"):
        build_small(tmp_path, seed=4)
    with pytest.raises(ValueError, match=r"images_per_experiment"):
        build_small(tmp_path, images_per_experiment=2)


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="experiments must be an integer >= 10"):
        build_small(tmp_path, experiments=3)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError, match="file/sub: cannot write the dataset directory"):
        build_small(blocker / "sub")
    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / shard_name(0)).write_text("")
    with pytest.raises(ValueError, match="no manifest.json"):
        build_small(tmp_path / "stray")
    build_small(tmp_path / "old")
    manifest = json.loads((tmp_path / "old" / MANIFEST_NAME).read_text())
    (tmp_path / "old" / MANIFEST_NAME).write_text(json.dumps({**manifest, "format_version": 0}))
    with pytest.raises(ValueError, match="manifest.json: dataset format version 0"):
        build_small(tmp_path / "old")


@pytest.mark.slow
def test_dask_local_cluster_matches_process_pool(tmp_path):
    build_small(tmp_path / "pool", workers=2, keep_raw=True)
    build_small(tmp_path / "dask", workers=2, keep_raw=True, dask="local")
    assert (
        read_dataset_manifest(tmp_path / "dask").shards
        == read_dataset_manifest(tmp_path / "pool").shards
    )

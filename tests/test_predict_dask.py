"""predict on a Dask LocalCluster: same CSV as a local run, rows in input order."""

import numpy as np
from fabio.tifimage import TifImage

import scattertag
from conftest import BEAM, frame
from scattertag.geometry import GeometryOptions
from scattertag.prediction.grouping import geometry_chunks
from scattertag.prediction.sources import Item


def test_chunks_group_geometries_in_first_seen_order():
    a, b = GeometryOptions((1.0, 2.0)), GeometryOptions((3.0, 4.0))
    c = GeometryOptions((1.0, 2.0))  # another object, the same geometry: grouped with a
    items = [(i, Item(str(i), str(i), options=s)) for i, s in enumerate([a, b, c, a, b])]
    chunks = geometry_chunks(items, 2)
    assert [[n for n, _ in c] for c in chunks] == [[0, 2], [3], [1, 4]]


def test_dask_local_cluster_matches_a_local_run(tmp_path, model_dir):
    """Two single-threaded worker processes, two geometries interleaved, a bad file."""
    paths = []
    for i in range(8):
        path = tmp_path / f"f{i}.tif"
        TifImage(data=frame(i)).write(str(path))
        paths.append(path)
    (tmp_path / "bad.tif").write_bytes(b"not a tiff")
    manifest = tmp_path / "files.csv"
    lines = ["path,beam_x,beam_y"] + [
        f"{p.name},{BEAM[0] + (i % 2)},{BEAM[1]}" for i, p in enumerate(paths)
    ]
    lines.insert(4, f"bad.tif,{BEAM[0]},{BEAM[1]}")
    manifest.write_text("\n".join(lines) + "\n")
    local = scattertag.predict(
        manifest=manifest, model=model_dir, batch_size=3, out=tmp_path / "a.csv"
    )
    from distributed import Client, LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        remote = scattertag.predict(
            manifest=manifest,
            model=model_dir,
            batch_size=3,
            dask=cluster.scheduler_address,
            out=tmp_path / "b.csv",
        )
        with Client(cluster) as client:  # two processes, one thread each
            assert list(client.nthreads().values()) == [1, 1]
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert [r["path"] for r in remote] == [r["path"] for r in local]
    names = [line.split(",")[0] for line in lines[1:]]  # two geometries interleaved: input order
    assert [r["path"].rsplit("/", 1)[-1] for r in local] == names
    assert len(remote.failed) == 1 and "bad.tif" in remote.failed[0]["path"]
    assert np.isfinite(remote["Ring"][0])

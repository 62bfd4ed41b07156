"""``scattertag serve --dask local``: folder frames and uploads tagged on a one-worker
LocalCluster come back into the store and the event stream with the local backend's tags."""

import asyncio
import json

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("distributed")
httpx = pytest.importorskip("httpx")

from conftest import BEAM, frame  # noqa: E402
from scattertag.geometry import GeometryOptions  # noqa: E402
from scattertag.serve.app import running  # noqa: E402
from scattertag.serve.config import ServeConfig  # noqa: E402
from test_serve import free_port, npy_bytes, wait_for, write_tif  # noqa: E402


def tagged(url: str, uploads: list[bytes]) -> tuple[dict, list, list]:
    """(frames by name, upload answers, replayed events) of a service on ``url``."""
    client = httpx.Client(base_url=url, timeout=60)
    answers = []
    for i, data in enumerate(uploads):
        r = client.post(
            "/api/tag/array",
            params={"name": f"up{i}", "beam_x": BEAM[0] + i, "beam_y": BEAM[1]},
            content=data,
            headers={"content-type": "application/octet-stream"},
        )
        assert r.status_code == 200, r.text
        answers += r.json()["frames"]
    body = wait_for(client, lambda b: b["total"] == 4 + len(uploads), "/api/frames")
    with httpx.stream("GET", url + "/api/events", params={"after": 0}, timeout=30) as r:
        events = []
        for line in r.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
                if len(events) == body["total"]:
                    break
    return {f["name"]: f for f in body["frames"]}, answers, events


def test_serve_on_a_local_cluster_tags_as_the_local_backend(tmp_path, model_dir, predictor):
    folder = tmp_path / "data"
    folder.mkdir()
    for i in range(3):
        write_tif(folder / f"f{i}.tif", i)
    (folder / "bad.tif").write_bytes(b"not a tiff")  # stored as a failed frame by both
    uploads = [npy_bytes(frame(20 + i)) for i in range(2)]  # two geometries
    results = {}
    for backend in (None, "local"):
        config = ServeConfig(
            folders=[folder],
            state=tmp_path / f"state-{backend}",
            setup=GeometryOptions(BEAM),
            port=free_port(),
            model=str(model_dir),
            dask=backend,
            workers=1 if backend else 0,  # Dask: one single-threaded worker process
        )
        with running(config, predictor) as url:
            results[backend] = tagged(url, uploads)
            if backend:
                health = httpx.get(url + "/api/health").json()
                assert sum(health["batches"]) == 6  # every frame went through the cluster
    (local, local_answers, _), (remote, remote_answers, events) = results[None], results["local"]
    assert (
        sorted(remote) == sorted(local) == ["bad.tif", "f0.tif", "f1.tif", "f2.tif", "up0", "up1"]
    )
    assert "bad.tif" in remote["bad.tif"]["error"] and remote["bad.tif"]["tags"] == []
    for name, f in remote.items():
        assert f["tags"] == local[name]["tags"], name
        assert f["beam_center_source"] == local[name]["beam_center_source"]
        assert f["beam_center"] == local[name]["beam_center"]
        if not f["error"]:
            a = np.array(list(f["probabilities"].values()))
            b = np.array(list(local[name]["probabilities"].values()))
            np.testing.assert_allclose(a, b, atol=1e-5)
    assert [f["beam_center"] for f in remote_answers] == [[BEAM[0] + i, BEAM[1]] for i in range(2)]
    assert [f["tags"] for f in remote_answers] == [f["tags"] for f in local_answers]
    assert sorted(e["name"] for e in events) == sorted(remote)  # the event stream has them all


def test_a_failed_cluster_task_tells_its_callers_and_frees_its_slot(tmp_path):
    from scattertag.prediction.sources import Item
    from scattertag.serve.cluster import ClusterError, ClusterTagger
    from scattertag.serve.tagger import Job

    class Broken:  # a client whose task fails as when its worker dies
        def submit(self, *args, **kwargs):
            async def lost():
                raise OSError("worker lost")

            return lost()

    async def main():
        tagger = ClusterTagger("tcp://127.0.0.1:1")
        tagger._client, tagger._free = Broken(), asyncio.Semaphore(0)
        item = Item("a.npy", str(tmp_path / "a.npy"), None, GeometryOptions(BEAM))
        jobs = [Job(item, asyncio.get_running_loop().create_future(), None) for _ in range(2)]
        await tagger._run(list(enumerate(jobs)), [(0, item), (1, item)])
        for job in jobs:
            with pytest.raises(ClusterError, match="127.0.0.1:1 failed.*worker lost"):
                await job.future
        return tagger._free.locked()

    assert asyncio.run(main()) is False  # the slot it held is free again

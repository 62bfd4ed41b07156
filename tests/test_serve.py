"""The tagging service: uploads, folder feed, filters, pictures, corrections, events, safety,
restarts, batching. One real uvicorn server on localhost with a tiny random-weight model."""

import asyncio
import csv
import io
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from fabio.tifimage import TifImage  # noqa: E402

from conftest import BEAM, frame  # noqa: E402
from scattertag.geometry import GeometryOptions  # noqa: E402
from scattertag.prediction.sources import Item  # noqa: E402
from scattertag.serve.app import running  # noqa: E402
from scattertag.serve.config import ServeConfig  # noqa: E402
from scattertag.serve.tagger import Tagger  # noqa: E402

KEY = "s3cret"
AUTH = {"X-API-Key": KEY}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npy_frames(folder: Path, count: int) -> list[str]:
    """Paths of ``count`` .npy frames written to ``folder``."""
    for i in range(count):
        np.save(folder / f"{i}.npy", frame(i))
    return [str(folder / f"{i}.npy") for i in range(count)]


def write_tif(path: Path, seed: int) -> Path:
    TifImage(data=frame(seed)).write(str(path))
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory, predictor):
    """A served, watched folder with three frames, a file outside it, and the server."""
    root = tmp_path_factory.mktemp("site")
    folder = root / "data"
    folder.mkdir()
    for i in range(3):
        write_tif(folder / f"f{i}.tif", i)
    write_tif(root / "secret.tif", 9)
    (folder / "link.tif").symlink_to(root / "secret.tif")
    config = ServeConfig(
        folders=[folder],
        watch=True,
        state=root / "state",
        setup=GeometryOptions(BEAM),
        port=free_port(),
        api_key=KEY,
        max_upload_bytes=200_000,
        interval_s=0.2,
    )
    with running(config, predictor) as url:
        client = httpx.Client(base_url=url, timeout=30)
        wait_for(client, lambda r: r["total"] >= 3, "/api/frames")
        yield {"url": url, "client": client, "folder": folder, "root": root, "config": config}


def wait_for(client, ok, path, timeout=30.0):
    """Poll GET ``path`` until ``ok(json)``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(path).json()
        if ok(body):
            return body
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting on {path}: {body}")


def test_folder_frames_listed_with_tags_geometry_and_source(site, predictor):
    body = site["client"].get("/api/frames", params={"folder": str(site["folder"])}).json()
    names = sorted(f["name"] for f in body["frames"])
    assert names == ["f0.tif", "f1.tif", "f2.tif"]  # link.tif points outside: not tagged
    for f in body["frames"]:
        assert f["beam_center"] == list(BEAM) and f["beam_center_source"] == "server"
        assert list(f["probabilities"]) == predictor.vocabulary
        thresholds = dict(zip(predictor.vocabulary, predictor.thresholds))
        assert f["tags"] == [t for t, p in f["probabilities"].items() if p >= thresholds[t]]
        assert isinstance(f["unfamiliarity"], float)  # the predictor's score, passed through
        assert "ood" not in f  # an output the predictor does not make is not invented


def test_upload_file_tags_it_once_and_uses_request_geometry(site, tmp_path):
    data = write_tif(tmp_path / "up.tif", 11).read_bytes()
    client = site["client"]
    files = {"file": ("up.tif", data, "image/tiff")}
    r = client.post("/api/tag/file", params={"beam_x": 21, "beam_y": 69}, files=files, headers=AUTH)
    assert r.status_code == 200, r.text
    first = r.json()["frames"]
    assert len(first) == 1 and first[0]["beam_center"] == [21.0, 69.0]
    assert first[0]["beam_center_source"] == "request" and first[0]["name"] == "up.tif"
    steps = dict(part.split(";dur=") for part in r.headers["server-timing"].split(", "))
    ms = {step: float(v) for step, v in steps.items()}
    tagging = ("parse", "arrive", "prepare", "network-wait", "network", "back")
    assert set(ms) == {*tagging, "flush", "store", "total"} and min(ms.values()) >= 0
    assert ms["prepare"] > 0 and ms["network"] > 0
    assert sum(ms[s] for s in tagging) <= ms["total"]  # steps one after the other
    again = client.post(
        "/api/tag/file", params={"beam_x": 21, "beam_y": 69}, files=files, headers=AUTH
    )
    assert again.json()["frames"][0]["id"] == first[0]["id"]  # seen before: not re-tagged
    assert again.json()["frames"][0]["tagged_at"] == first[0]["tagged_at"]
    evil = {"file": ("../../evil.tif", data, "image/tiff")}
    r = client.post("/api/tag/file", params={"frame": 3}, files=evil, headers=AUTH)
    assert r.status_code == 422 and "out of range" in r.json()["detail"]
    r = client.post("/api/tag/file", files=evil, headers=AUTH)  # a name is only a name
    assert r.status_code == 200 and r.json()["frames"][0]["name"] == "../../evil.tif"
    assert r.json()["frames"][0]["path"].startswith("uploads/")
    assert not (site["root"] / "evil.tif").exists()


def test_upload_arrays_npy_and_bare_bytes_agree(site):
    client, counts = site["client"], frame(12).astype(np.uint32)
    r1 = client.post(
        "/api/tag/array",
        content=npy_bytes(counts),
        headers={**AUTH, "content-type": "application/octet-stream"},
    )
    r2 = client.post(
        "/api/tag/array",
        params={"shape": "90,120", "dtype": "uint32"},
        content=counts.tobytes(),
        headers={**AUTH, "content-type": "application/octet-stream"},
    )
    assert r1.status_code == r2.status_code == 200, (r1.text, r2.text)
    a, b = r1.json()["frames"][0], r2.json()["frames"][0]
    assert a["beam_center_source"] == "server"
    assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-6)


def array(params=None, content=b"\x00" * 10, **kw):
    """Keyword arguments of an /api/tag/array request."""
    return {"content": content, "params": params or {}, **kw}


TEXT, JSON = {"content-type": "text/plain"}, {"content-type": "application/json"}
BAD_REQUESTS = [
    ("post", "/api/tag/file", {"files": {"file": ("x.tif", b"II*\x00garbage")}}, 422, "x.tif"),
    ("post", "/api/tag/file", {"files": {"file": ("x.txt", b"hello")}}, 415, "unsupported"),
    ("post", "/api/tag/file", {"files": {"file": ("x.h5", b"\x89HDF\r\n\x1a\njunk")}}, 422, "x.h5"),
    ("post", "/api/tag/file", {"files": {"file": ("x.cbf", b"###CBF: junk")}}, 422, "x.cbf"),
    ("post", "/api/tag/file", {"files": {"file": ("x.edf", b"{ junk")}}, 422, "x.edf"),
    ("post", "/api/tag/file", {"files": {"file": ("x.npy", b"")}}, 422, "x.npy"),
    ("post", "/api/tag/file", {"files": {"other": ("x.tif", b"abc")}}, 400, "'file'"),
    ("post", "/api/tag/array", array(content=b"\x93NUMPY\x01\x00junk"), 422, ""),
    ("post", "/api/tag/file", {"content": b"a", "headers": TEXT}, 415, "multipart"),
    ("post", "/api/tag/array", {"content": b"a", "headers": TEXT}, 415, "octet-stream"),
    ("post", "/api/tag/array", array({"shape": "5,5", "dtype": "uint8"}), 422, "at least 16"),
    ("post", "/api/tag/array", array({"shape": "20000,20000", "dtype": "uint32"}), 422, "limit"),
    ("post", "/api/tag/array", array({"shape": "16,16", "dtype": "uint8"}), 400, "needs 256"),
    ("post", "/api/tag/array", array({"shape": "a,b", "dtype": "uint8"}), 400, "shape"),
    ("post", "/api/tag/array", array({"shape": "16,16", "dtype": "object"}), 400, "dtype"),
    ("post", "/api/tag/array", array(content=b"\x00" * 300_000), 413, "limit"),
    ("post", "/api/tag/array", array({"beam_x": "nan", "beam_y": 1}), 400, "finite"),
    ("post", "/api/tag/array", array({"beam_x": 3}), 400, "both"),
    ("post", "/api/tag/path", {"params": {"path": "../secret.tif"}}, 403, "outside"),
    ("post", "/api/tag/path", {"params": {"path": "/etc/passwd"}}, 403, "outside"),
    ("post", "/api/tag/path", {"params": {"path": "link.tif"}}, 403, "outside"),
    ("post", "/api/tag/path", {"params": {"path": "nothere.tif"}}, 404, "no such file"),
    ("get", "/api/frames", {"params": {"tag": "Unicorn"}}, 400, "unknown tag"),
    ("get", "/api/frames", {"params": {"since": "yesterday"}}, 400, "ISO 8601"),
    ("get", "/api/frames", {"params": {"min_p": 0.5}}, 400, "give tag"),
    ("get", "/api/frames", {"params": {"limit": 0}}, 422, "limit"),
    ("get", "/api/frames/99999", {}, 404, "99999"),
    ("get", "/api/frames/99999/image.png", {}, 404, "99999"),
    ("get", "/static/../../../etc/passwd", {}, 404, ""),
    ("put", "/api/frames/1/labels", {"json": {"labels": {"Unicorn": 1}}}, 400, "Unicorn"),
    ("put", "/api/frames/1/labels", {"json": {"labels": {"Ring": 7}}}, 400, "Ring"),
    ("put", "/api/frames/1/labels", {"content": b"{no", "headers": JSON}, 422, ""),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "words"), BAD_REQUESTS)
def test_bad_requests_get_4xx_with_a_message_and_the_server_goes_on(
    site, method, path, kwargs, status, words
):
    client = site["client"]
    kwargs = {**kwargs, "headers": {**AUTH, **kwargs.get("headers", {})}}
    if path == "/api/tag/array" and "content-type" not in kwargs["headers"]:
        kwargs["headers"]["content-type"] = "application/octet-stream"
    r = getattr(client, method)(path, **kwargs)
    assert r.status_code == status, r.text
    if words:
        assert words in json.dumps(r.json()["detail"])
    assert client.get("/api/health").json()["ok"]


def test_huge_and_truncated_arrays_are_refused_before_tagging(site, tmp_path):
    client, headers = site["client"], {**AUTH, "content-type": "application/octet-stream"}
    huge = np.lib.format.header_data_from_array_1_0(np.zeros((1, 1), np.uint32))
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {**huge, "shape": (20000, 20000)})
    r = client.post("/api/tag/array", content=buffer.getvalue() + b"\x00" * 64, headers=headers)
    assert r.status_code == 422 and "20000 x 20000" in r.json()["detail"]
    truncated = npy_bytes(frame(5))[:-500]
    r = client.post("/api/tag/array", content=truncated, headers=headers)
    assert r.status_code == 422, r.text
    files = {"file": ("good.tif", write_tif(tmp_path / "good.tif", 20).read_bytes())}
    r = client.post("/api/tag/file", files=files, headers=AUTH)
    assert r.status_code == 200  # a good file right after bad ones is tagged


def test_api_key_needed_for_uploads_and_writes_not_reads(site):
    client = site["client"]
    r = client.post("/api/tag/path", params={"path": "f0.tif"})
    assert r.status_code == 401
    r = client.post("/api/tag/path", params={"path": "f0.tif"}, headers={"X-API-Key": "nope"})
    assert r.status_code == 403
    r = client.put("/api/frames/1/labels", json={"labels": {"Ring": 1}})
    assert r.status_code == 401
    r = client.post(
        "/api/tag/path", params={"path": "f0.tif"}, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert r.status_code == 200 and r.json()["frames"][0]["name"] == "f0.tif"
    assert client.get("/api/frames").status_code == 200


def test_filters_by_tag_probability_time_folder_and_paging(site, predictor):
    client = site["client"]
    everything = client.get("/api/frames", params={"limit": 500}).json()
    tag = predictor.vocabulary[0]
    ps = sorted(f["probabilities"][tag] for f in everything["frames"] if not f["error"])
    mid = ps[len(ps) // 2]
    r = client.get("/api/frames", params={"tag": tag, "min_p": mid, "limit": 500}).json()
    assert r["total"] == sum(p >= mid for p in ps) and 0 < r["total"] < len(ps) + 1
    assert all(f["probabilities"][tag] >= mid for f in r["frames"])
    tagged = client.get("/api/frames", params={"tag": tag, "limit": 500}).json()
    assert all(tag in f["tags"] for f in tagged["frames"])
    assert tagged["total"] == sum(tag in f["tags"] for f in everything["frames"])
    page1 = client.get("/api/frames", params={"limit": 2}).json()
    page2 = client.get("/api/frames", params={"limit": 2, "offset": 2}).json()
    ids = [f["id"] for f in page1["frames"] + page2["frames"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 4
    uploads = client.get("/api/frames", params={"folder": "uploads", "limit": 500}).json()
    assert all(f["folder"] == "uploads" for f in uploads["frames"])
    future = client.get("/api/frames", params={"since": "2999-01-01T00:00:00"}).json()
    assert future["total"] == 0
    since = min(f["time"] for f in everything["frames"])
    assert client.get("/api/frames", params={"since": since}).json()["total"] == everything["total"]
    counts = client.get("/api/counts", params={"bucket": 1e9}).json()
    assert sum(counts["frames"]) == everything["total"]
    assert sum(counts["counts"][tag]) == tagged["total"]


def test_pictures_are_pngs(site):
    client = site["client"]
    fid = client.get("/api/frames", params={"limit": 1}).json()["frames"][0]["id"]
    for kind in ("thumb", "image", "cake"):
        r = client.get(f"/api/frames/{fid}/{kind}.png")
        assert r.status_code == 200 and r.content.startswith(b"\x89PNG")
        assert r.headers["content-type"] == "image/png"


def test_correction_appended_to_labels_tsv(site, predictor):
    client = site["client"]
    f0 = next(
        f
        for f in client.get("/api/frames", params={"limit": 500}).json()["frames"]
        if f["name"] == "f0.tif"
    )
    tags = {t: int(t == "Ring") for t in predictor.vocabulary}
    tags["Halo"] = None
    r = client.put(
        f"/api/frames/{f0['id']}/labels", json={"labels": tags, "note": "checked"}, headers=AUTH
    )
    assert r.status_code == 200, r.text
    with open(r.json()["labels_table"], newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    header = list(rows[-1])
    assert header == ["path", *predictor.vocabulary, "note"]
    last = rows[-1]
    assert Path(last["path"]) == site["folder"] / "f0.tif"
    assert last["Ring"] == "1" and last["Halo"] == "" and last["BCC"] == "0"
    assert last["note"] == "checked"
    assert client.get(f"/api/frames/{f0['id']}").json()["labels"]["Ring"] == 1


def test_events_stream_new_frames_of_the_watched_folder(site):
    received, ready = [], threading.Event()

    def listen():
        with httpx.stream("GET", site["url"] + "/api/events", timeout=30) as r:
            ready.set()
            for line in r.iter_lines():
                if line.startswith("data:"):
                    received.append(json.loads(line[5:]))
                    return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    ready.wait(10)
    time.sleep(0.2)
    write_tif(site["folder"] / "new.tif", 30)
    thread.join(30)
    assert received and received[0]["name"] == "new.tif"
    # a reconnecting client replays what it missed
    with httpx.stream("GET", site["url"] + "/api/events", params={"after": 0}, timeout=30) as r:
        first = next(json.loads(line[5:]) for line in r.iter_lines() if line.startswith("data:"))
    ids = [
        f["id"] for f in site["client"].get("/api/frames", params={"limit": 500}).json()["frames"]
    ]
    assert first["id"] == min(ids)


def test_restart_keeps_every_result_and_does_not_retag(tmp_path, predictor):
    folder = tmp_path / "data"
    folder.mkdir()
    for i in range(2):
        write_tif(folder / f"a{i}.tif", i)
    config = {"folders": [folder], "state": tmp_path / "state", "setup": GeometryOptions(BEAM)}
    with running(ServeConfig(**config, port=free_port()), predictor) as url:
        before = wait_for(httpx.Client(base_url=url), lambda r: r["total"] == 2, "/api/frames")
        r = httpx.post(
            url + "/api/tag/array",
            content=npy_bytes(frame(40)),
            headers={"content-type": "application/octet-stream"},
        )
        assert r.status_code == 200  # no API key configured: writes are open
    with running(ServeConfig(**config, port=free_port()), predictor) as url:
        time.sleep(0.5)  # the folder feed has scanned
        after = httpx.get(url + "/api/frames").json()
        assert after["total"] == 3
        assert httpx.get(url + "/api/health").json()["batches"] == []  # nothing re-tagged
        ours = {f["id"]: f["tagged_at"] for f in after["frames"]}
        assert all(ours[f["id"]] == f["tagged_at"] for f in before["frames"])


@pytest.mark.parametrize("workers", [0, 2])
def test_frames_of_concurrent_callers_share_network_batches(predictor, tmp_path, workers):
    paths = npy_frames(tmp_path, 6)

    async def main():
        async with Tagger(predictor, workers, threads=3, batch_size=8, max_wait_s=0.3) as tagger:
            await tagger.rows(
                Item(paths[0], paths[0], None, GeometryOptions(BEAM))
            )  # set up a ViewMaker
            tagger.batches.clear()
            rows = await asyncio.gather(
                *(tagger.rows(Item(p, p, None, GeometryOptions(BEAM))) for p in paths)
            )
            return rows, list(tagger.batches)

    rows, batches = asyncio.run(main())
    assert sum(batches) == 6 and max(batches) > 1
    import scattertag

    table = scattertag.predict(paths, beam_center=BEAM, model=predictor)
    for (row,), expected in zip(rows, table):
        assert row["path"] == expected["path"]
        assert row["tags"] == expected["tags"]
        assert [row[t] for t in predictor.vocabulary] == pytest.approx(
            [expected[t] for t in predictor.vocabulary], abs=1e-5
        )


@pytest.mark.parametrize("threads, batches", [(1, [1, 1, 1]), (3, [3])])
def test_a_batch_waits_for_frames_being_prepared_not_for_items_waiting_for_a_thread(
    predictor, tmp_path, monkeypatch, threads, batches
):
    prepare = Tagger._prepare_here

    def slowly(self, item):  # every item takes 0.2 s to prepare
        time.sleep(0.2)
        return prepare(self, item)

    paths = npy_frames(tmp_path, 3)

    async def main():
        async with Tagger(predictor, threads=threads, batch_size=8, max_wait_s=60) as tagger:
            await tagger.rows(Item(paths[0], paths[0], None, GeometryOptions(BEAM)))  # set-up
            monkeypatch.setattr(Tagger, "_prepare_here", slowly)
            tagger.batches.clear()
            start = time.monotonic()
            await asyncio.gather(
                *(tagger.rows(Item(p, p, None, GeometryOptions(BEAM))) for p in paths)
            )
            return list(tagger.batches), time.monotonic() - start

    seen, seconds = asyncio.run(main())
    # one thread: each frame goes to the network while the next is prepared (the other
    # items were waiting for the thread); three threads: the frames prepared together
    assert seen == batches
    assert seconds < 30  # never the 60 s most a batch may wait


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_preparing_threads_run_behind_the_event_loop_and_the_model(predictor, tmp_path):
    import os

    from scattertag.serve.tagger import PREPARING_NICENESS

    (path,) = npy_frames(tmp_path, 1)

    async def main():
        async with Tagger(predictor, threads=1) as tagger:
            await tagger.rows(Item(path, path, None, GeometryOptions(BEAM)))
            (thread,) = tagger._pool._threads  # type: ignore[attr-defined]
            return os.getpriority(os.PRIO_PROCESS, thread.native_id)

    assert asyncio.run(main()) == os.getpriority(os.PRIO_PROCESS, 0) + PREPARING_NICENESS


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-process nice, kill")
def test_worker_processes_run_behind_and_a_dead_one_costs_only_its_item(predictor, tmp_path):
    import os
    import signal
    import socket

    from scattertag.serve.tagger import PIPE_BUFFER_BYTES, PREPARING_NICENESS

    paths = npy_frames(tmp_path, 3)
    item = lambda p: Item(p, p, None, GeometryOptions(BEAM))  # noqa: E731

    async def main():
        async with Tagger(predictor, workers=1) as tagger:
            (worker,) = tagger._processes
            niceness = os.getpriority(os.PRIO_PROCESS, worker.process.pid)
            with socket.socket(fileno=os.dup(worker.conn.fileno())) as pipe:
                buffer = pipe.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
            first = await tagger.rows(item(paths[0]))
            os.kill(worker.process.pid, signal.SIGKILL)  # as a decoder crashing would
            lost = await tagger.rows(item(paths[1]))
            after = await tagger.rows(item(paths[2]))  # prepared in the service from now on
            threads = len(tagger._pool._threads)  # type: ignore[attr-defined]
            return niceness, buffer, first, lost, after, threads

    niceness, buffer, first, lost, after, threads = asyncio.run(main())
    assert niceness == os.getpriority(os.PRIO_PROCESS, 0) + PREPARING_NICENESS
    # a frame's views fit in the pipe (Linux doubles what is asked, up to net.core.wmem_max)
    most = int(Path("/proc/sys/net/core/wmem_max").read_text())
    assert buffer >= min(PIPE_BUFFER_BYTES, most)
    assert threads == 2  # all started at once: one saves an upload while one waits
    assert not first[0]["error"] and not after[0]["error"]
    assert "the preparing process exited" in lost[0]["error"] and lost[0]["path"] == paths[1]
    import scattertag

    table = scattertag.predict(paths[2:], beam_center=BEAM, model=predictor)
    assert after[0]["tags"] == table[0]["tags"]


def test_an_item_given_by_a_function_is_made_in_the_preparing_thread(predictor, tmp_path):
    """An upload is saved in the thread that prepares it (one hand-off less); None: no rows,
    an error: the caller's."""
    (path,) = npy_frames(tmp_path, 1)
    ran_in = []

    def given(item):
        def arrive():
            ran_in.append(threading.current_thread().name)
            if isinstance(item, Exception):
                raise item
            return item

        return arrive

    async def main():
        async with Tagger(predictor, threads=2) as tagger:
            timings: dict[str, float] = {}
            item = Item(path, path, None, GeometryOptions(BEAM))
            rows = await tagger.rows(given(item), timings)
            direct = await tagger.rows(item)
            nothing = await tagger.rows(given(None))
            with pytest.raises(OSError, match="disk full"):
                await tagger.rows(given(OSError("disk full")))
            return rows, direct, nothing, timings

    rows, direct, nothing, timings = asyncio.run(main())
    assert rows == direct and len(rows) == 1 and nothing == []
    assert all(name.startswith("prepare") for name in ran_in) and len(ran_in) == 3
    assert {"arrive", "prepare", "network"} <= set(timings)


@pytest.mark.parametrize("cache", ["folder", "off"])
def test_threads_set_up_a_geometry_once_and_a_lone_frame_does_not_wait(
    predictor, tmp_path, monkeypatch, cache
):
    from scattertag.features import views

    built, computed = [], []

    class Counted(views.ViewMaker):
        def __init__(self, *args, **kwargs):
            built.append(1)
            super().__init__(*args, **kwargs)

        def _set_up(self, state, *args):
            computed.append(state is None)  # None: computed here, not read from the cache
            super()._set_up(state, *args)

    monkeypatch.setattr(views, "ViewMaker", Counted)
    monkeypatch.setenv("SCATTERTAG_CACHE", str(tmp_path / "cache") if cache == "folder" else "off")
    prepare = Tagger._prepare_here

    def slowly(self, item):  # items overlap, so the pool starts its second thread
        time.sleep(0.2)
        return prepare(self, item)

    monkeypatch.setattr(Tagger, "_prepare_here", slowly)
    paths = npy_frames(tmp_path, 4)

    async def main():
        async with Tagger(predictor, threads=2, batch_size=8, max_wait_s=60) as tagger:
            await asyncio.gather(
                *(tagger.rows(Item(p, p, None, GeometryOptions(BEAM))) for p in paths)
            )  # all four arrive while the first is setting up the geometry
            start = time.monotonic()
            await tagger.rows(Item(paths[0], paths[0], None, GeometryOptions(BEAM)))
            return time.monotonic() - start

    alone = asyncio.run(main())
    assert sum(computed) == 1  # set up once, by the first thread
    # the second thread read the set-up from the disk cache, or without one copied it
    assert len(built) == (2 if cache == "folder" else 1)
    assert alone < 30  # nothing else was being prepared: the batch did not wait max_wait_s


def test_an_upload_file_spoilt_on_disk_is_written_again(tmp_path):
    from scattertag.serve.uploads import UploadFolder

    uploads = UploadFolder(tmp_path)
    data = npy_bytes(frame(1))
    path = uploads.save(data, ".npy")
    uploads.sync(path)
    path.write_bytes(bytes(len(data)))  # same size, zeros: what a power cut may leave
    assert uploads.save(data, ".npy") == path and path.read_bytes() == data


def test_uploads_are_flushed_in_groups_and_a_failed_one_says_why(tmp_path, monkeypatch):
    import scattertag.serve.uploads as module

    folders, files = [], []
    monkeypatch.setattr(module, "fsync_folder", folders.append)
    real = module.fsync_file
    monkeypatch.setattr(module, "fsync_file", lambda p, folder: (files.append(p), real(p, folder)))
    uploads = module.UploadFolder(tmp_path)
    paths = [uploads.save(npy_bytes(frame(i)), ".npy") for i in range(3)]
    with uploads._wake:  # the flushing thread waits: all three are one group
        futures = [uploads.flush(p) for p in [*paths, tmp_path / "gone.npy"]]
    assert [f.result(10) for f in futures[:3]] == [None] * 3
    assert isinstance(futures[3].exception(10), FileNotFoundError)
    assert files == [*paths, tmp_path / "gone.npy"] and folders == [uploads.folder]
    uploads.close()
    with pytest.raises(RuntimeError, match="closed"):
        uploads.flush(paths[0])


def test_a_released_upload_has_its_page_cache_freed_once_flushed(tmp_path, monkeypatch):
    import scattertag.serve.uploads as module
    from scattertag.io.files import drop_cached

    dropped = []
    monkeypatch.setattr(module, "drop_cached", lambda p: (dropped.append(p), drop_cached(p)))
    uploads = module.UploadFolder(tmp_path)
    data = npy_bytes(frame(1))
    path = uploads.save(memoryview(data), ".npy")  # a view of a request body, as parse_form's
    uploads.flush(path).result(10)
    uploads.release(path)
    uploads.release(tmp_path / "gone.npy")  # a file that went away is no error
    assert dropped == []  # no wake-up of its own: freed when the thread next wakes
    uploads.close()
    assert dropped == [path, tmp_path / "gone.npy"]
    assert path.read_bytes() == data  # only the cache went: the file reads back whole


def test_command_line_maps_arguments_and_refuses_bad_ones(tmp_path):
    from scattertag.cli import build_parser, main
    from scattertag.cli.serve import config_from_args

    assert main(["serve", "--folder", str(tmp_path / "missing"), "--beam-center", "1", "2"]) == 2
    assert main(["serve", "--folder", str(tmp_path)]) == 2  # a folder needs a geometry
    assert main(["serve", "--port", "80", "--max-upload-mb", "0"]) == 2
    argv = ["serve", "--folder", str(tmp_path), "--watch", "--beam-center", "20", "70",
            "--api-key", "k", "--max-upload-mb", "2", "--state", str(tmp_path / "s")]  # fmt: skip
    parser, _ = build_parser("serve")
    config = config_from_args(parser.parse_args(argv))
    assert config.host == "127.0.0.1" and config.folders == [tmp_path.resolve()] and config.watch
    assert config.max_upload_bytes == 2 * 2**20 and config.api_key == "k"
    assert config.db == tmp_path / "s" / "scattertag.sqlite"
    assert config.symmetries == 1
    assert config_from_args(parser.parse_args([*argv, "--symmetries", "4"])).symmetries == 4


def test_the_traced_network_gives_the_eager_rows_and_an_untraceable_one_runs_as_is(
    predictor, tmp_path, monkeypatch
):
    import torch

    from scattertag.prediction.prepare import Preparer
    from scattertag.serve.tagger import traced

    prepare = Preparer(predictor.view_spec)
    views = [
        v for p in npy_frames(tmp_path, 3) for v in prepare(Item(p, p, None, GeometryOptions(BEAM)))
    ]
    fast = traced(predictor)
    assert isinstance(fast.model, torch.jit.ScriptModule) and fast.model is not predictor.model
    for batch in (views[:1], views):
        assert fast.rows(batch) == predictor.rows(batch)  # the same floats, not merely close

    def refuse(*args, **kwargs):
        raise RuntimeError("not traceable")

    monkeypatch.setattr(torch.jit, "trace", refuse)
    assert traced(predictor) is predictor


def test_a_request_geometry_is_resolved_once_and_bad_ones_still_refused(tmp_path, predictor):
    from scattertag.serve.service import Service

    service = Service(ServeConfig(state=tmp_path, setup=GeometryOptions(BEAM)), predictor)
    try:
        setup, source = service.request_setup(beam_x=21.0, beam_y=69.0, energy_kev=None)
        assert source == "request" and setup.beam_center == (21.0, 69.0)
        assert service.request_setup(beam_x=21.0, beam_y=69.0, energy_kev=None)[0] is setup
        assert service.setup_json(setup) is service.setup_json(setup)
        assert service.request_setup(beam_x=None, beam_y=None)[1] == "server"
        for _ in range(2):  # an error is not kept as an answer
            with pytest.raises(ValueError, match="both beam_x and beam_y"):
                service.request_setup(beam_x=21.0, beam_y=None)
    finally:
        service.store.close()

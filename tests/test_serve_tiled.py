"""Tiled round trip: frames written to a real local Tiled server come back tagged, and the
tags are readable as the nodes' metadata from the Tiled client."""

import csv
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # starts a Tiled server: ~10 s alone, a minute on a busy machine
pytest.importorskip("tiled.client")
pytest.importorskip("tiled.server")
httpx = pytest.importorskip("httpx")

import scattertag  # noqa: E402
from conftest import BEAM, frame  # noqa: E402
from scattertag.cli import main  # noqa: E402
from scattertag.geometry import GeometryOptions  # noqa: E402
from scattertag.serve.app import running  # noqa: E402
from scattertag.serve.config import ServeConfig  # noqa: E402
from scattertag.serve.tiled import connect, predict_tiled  # noqa: E402

KEY = "tiledsecret0"  # Tiled accepts only letters and digits


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tiled_server(tmp_path_factory):
    """``tiled serve catalog --temp`` on localhost with a few detector arrays written to it."""
    exe = shutil.which("tiled") or str(Path(sys.executable).parent / "tiled")
    port = free_port()
    log = tmp_path_factory.mktemp("tiled") / "tiled.log"
    command = [exe, "serve", "catalog", "--temp", "--api-key", KEY, "--host", "127.0.0.1"]
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [*command, "--port", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/api/v1/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Tiled server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.3)
        client = connect(url, api_key=KEY)
        scan = client.create_container(key="scan1", metadata={"sample": "test"})
        scan.write_array(frame(1), key="single")
        run = scan.create_container(key="run").create_container(key="primary")
        run.write_array(np.stack([frame(2), frame(3)])[:, None], key="pilatus_image")  # Bluesky 4-D
        scan.write_array(np.zeros(10), key="not_an_image")
        yield url
    finally:
        proc.terminate()
        proc.wait(20)


def test_predict_tiled_node_tags_frames_and_writes_metadata(tiled_server, predictor, tmp_path):
    table = predict_tiled(
        f"tiled+{tiled_server}/scan1", api_key=KEY, beam_center=BEAM, model=predictor
    )
    uris = sorted({row["path"] for row in table})
    assert [u.rsplit("/", 1)[-1] for u in uris] == ["pilatus_image", "single"]
    assert len(table) == 3 and not table.failed
    np.save(tmp_path / "single.npy", frame(1))  # the same frame from a file
    local = scattertag.predict([tmp_path / "single.npy"], beam_center=BEAM, model=predictor)[0]
    single = next(row for row in table if row["path"].endswith("single"))
    assert single["tags"] == local["tags"] and single["Ring"] == pytest.approx(local["Ring"])
    client = connect(tiled_server, api_key=KEY)
    nodes = {
        "single": client["scan1"]["single"],
        "pilatus_image": client["scan1"]["run"]["primary"]["pilatus_image"],
    }
    for row in table:
        frames = nodes[row["path"].rsplit("/", 1)[-1]].metadata["scattertag"]["frames"]
        written = next(f for f in frames if f["frame"] == row["frame"])
        assert ";".join(written["tags"]) == row["tags"]
        assert written["probabilities"]["Ring"] == pytest.approx(row["Ring"])


def test_serve_tiled_feed_tags_each_array_once(tiled_server, predictor, tmp_path):
    uri = f"tiled+{tiled_server}/scan1"
    config = ServeConfig(
        tiled=[uri], tiled_api_key=KEY, state=tmp_path / "state", setup=GeometryOptions(BEAM),
        port=free_port(),
    )  # fmt: skip
    with running(config, predictor) as url:
        deadline = time.monotonic() + 60
        while (body := httpx.get(url + "/api/frames").json())["total"] < 3:
            assert time.monotonic() < deadline, body
            time.sleep(0.2)
        assert {f["folder"] for f in body["frames"]} == {tiled_server + "/scan1"}
        image = httpx.get(url + f"/api/frames/{body['frames'][0]['id']}/thumb.png")
        assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    client = connect(tiled_server, api_key=KEY)
    meta = client["scan1"]["run"]["primary"]["pilatus_image"].metadata["scattertag"]
    served = {(f["name"], f["frame"]): f["tags"] for f in body["frames"]}
    assert [f["tags"] for f in meta["frames"]] == [
        served["pilatus_image", 0],
        served["pilatus_image", 1],
    ]


def test_predict_command_on_a_tiled_node(tiled_server, model_dir, tmp_path, capsys):
    """``scattertag predict tiled+http://...``: one CSV row per frame, named by its URI."""
    out = tmp_path / "tiled.csv"
    argv = ["predict", f"tiled+{tiled_server}/scan1", "--beam-center", str(BEAM[0]), str(BEAM[1])]
    argv += ["--model", str(model_dir), "--tiled-api-key", KEY, "--out", str(out)]
    assert main(argv) == 0
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and not any(r["error"] for r in rows)
    assert all(r["path"].startswith(tiled_server) for r in rows)
    assert main([*argv[:2], str(tmp_path / "local.npy"), *argv[2:]]) == 2  # not mixed with files

"""Odd and corrupt inputs: a seeded fuzz of every reader, and the small cases one by one."""

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from fabio.cbfimage import CbfImage
from fabio.edfimage import EdfImage
from PIL import Image

from conftest import BEAM, frame
from scattertag.geometry import GeometryOptions
from scattertag.prediction.pipeline import Workers, tag_items
from scattertag.prediction.sources import FileListError, items_from_paths, read_file_list

SHAPE = (48, 64)
CBF_BINARY = b"\x0c\x1a\x04\xd5"


def write_formats(folder: Path) -> dict[str, tuple[Path, list[tuple[int, int]]]]:
    """One file per format: name -> (path, byte ranges of checksummed/compressed pixel data)."""
    counts = frame(7, shape=SHAPE)
    files = {}
    path = folder / "raw.tif"
    Image.fromarray(counts).save(path)
    files["tiff"] = (path, [])
    for name, compression in (("tiff-deflate", "tiff_adobe_deflate"), ("tiff-lzw", "tiff_lzw")):
        path = folder / f"{name}.tif"
        Image.fromarray(counts).save(path, compression=compression)
        with Image.open(path) as im:
            files[name] = (path, list(zip(im.tag_v2[273], im.tag_v2[279])))
    path = folder / "frame.cbf"
    CbfImage(data=counts).write(str(path))
    start = path.read_bytes().index(CBF_BINARY) + len(CBF_BINARY)
    files["cbf"] = (path, [(start, path.stat().st_size - start - 64)])
    path = folder / "frame.edf"
    EdfImage(data=counts).write(str(path))
    files["edf"] = (path, [])
    path = folder / "stack.h5"
    with h5py.File(path, "w") as f:
        data = np.stack([counts, frame(8, shape=SHAPE)])
        d = f.create_dataset(
            "entry/data/data", data=data, chunks=(1, *SHAPE), compression="gzip", fletcher32=True
        )
        chunks = [d.id.get_chunk_info(i) for i in range(d.id.get_num_chunks())]
    files["hdf5"] = (path, [(c.byte_offset, c.size) for c in chunks])
    path = folder / "frame.npy"
    np.save(path, counts)
    files["npy"] = (path, [])
    return files


def mutate(raw: bytes, rng: np.random.Generator) -> tuple[bytes, int, bool]:
    """A seeded corruption of ``raw``: (bytes, first byte changed, all bytes after it lost?)."""
    kind = rng.integers(4)
    at = int(rng.integers(len(raw)))
    data = bytearray(raw)
    if kind == 0:  # one bit
        data[at] ^= 1 << int(rng.integers(8))
    elif kind == 1:  # a run of random bytes
        data[at : at + 8] = rng.integers(0, 256, len(data[at : at + 8]), dtype=np.uint8).tobytes()
    elif kind == 2:  # truncated
        data = data[:at]
    else:  # a zeroed block (a lost disk sector)
        data[at : at + 512] = bytes(len(data[at : at + 512]))
    return bytes(data), at, kind == 2


def lzw_stream_is_sound(data: bytes, size: int) -> bool:
    """Plain sequential TIFF LZW decoder (the oracle): well formed and ``size`` bytes long?"""
    bits, pos, width, table, prev, out = 8 * len(data), 0, 9, [1] * 258, -1, 0
    number = int.from_bytes(data, "big")
    while pos + width <= bits:
        code = (number >> (bits - pos - width)) & ((1 << width) - 1)
        pos += width
        if code == 257:  # end of information
            break
        if code == 256:  # clear
            table, width, prev = [1] * 258, 9, -1
            continue
        if prev < 0:
            if code > 255:
                return False
            out, prev = out + 1, code
            continue
        if code > len(table) or len(table) >= 4096 + 1024:
            return False
        length = table[prev] + 1 if code == len(table) else table[code]
        table.append(table[prev] + 1)
        out, prev = out + length, code
        if len(table) + 1 >= 1 << width and width < 12:
            width += 1
    return out == size


#: Mutations of the fuzz, spread over the formats (SCATTERTAG_FUZZ_MUTANTS=1000 for a long run).
FUZZ_MUTANTS = int(os.environ.get("SCATTERTAG_FUZZ_MUTANTS", "280"))


def test_fuzz_every_reader_no_crash_and_no_silently_tagged_corruption(tmp_path, predictor):
    """Seeded byte mutations of one file per format: every mutant gets a row, and none whose
    checksummed or compressed pixel data changed is tagged, except LZW mutants that stay
    well formed at the right length (no checksum: no reader can see them; checked by the
    plain decoder above). Prints, by format: mutants, pixel data hit, error rows, silently
    tagged."""
    base = write_formats(tmp_path)
    rng = np.random.default_rng(2026)
    folder = tmp_path / "mutants"
    folder.mkdir()
    hit: dict[str, set[int]] = {}  # mutant -> frames whose checksummed pixel data it changed
    undetectable: set[str] = set()  # LZW mutants whose strips still decode soundly
    per_format = -(-FUZZ_MUTANTS // len(base))
    for name, (path, ranges) in base.items():
        raw = path.read_bytes()
        for k in range(per_format):
            data, at, cut = mutate(raw, rng)
            if data == raw:
                continue
            mutant = folder / f"{name}_{k:03d}{path.suffix}"
            mutant.write_bytes(data)
            hit[str(mutant)] = {
                i
                for i, (start, size) in enumerate(ranges)
                if start <= at < start + size or (cut and at < start)
            }
            if name == "tiff-lzw":
                with Image.open(path) as im:
                    row_bytes = im.width * 4
                    sizes = [
                        row_bytes * min(im.tag_v2[278], SHAPE[0] - i * im.tag_v2[278])
                        for i in range(len(ranges))
                    ]
                if all(
                    lzw_stream_is_sound(data[start : start + size], n)
                    for (start, size), n in zip(ranges, sizes)
                ):
                    undetectable.add(str(mutant))
    items = items_from_paths(sorted(hit), GeometryOptions(BEAM))
    start = time.time()
    with Workers(predictor.view_spec, workers=2, timeout=5) as prepare:  # a few mutants hang HDF5
        rows = list(tag_items(items, predictor, prepare))
    assert time.time() - start < 100 * FUZZ_MUTANTS / 280
    assert {r["path"] for r in rows} == set(hit)  # every file has a row: nothing lost
    for row in rows:
        if row["error"]:
            assert row["error"].startswith(row["path"]), row["error"]
    silently_tagged = [
        r["path"] for r in rows if int(r["frame"] or 0) in hit[r["path"]] and not r["error"]
    ]
    print(f"\n{'format':>13} {'mutants':>8} {'pixels hit':>11} {'error rows':>11} {'silent':>7}")
    for name in base:
        mine = [r for r in rows if Path(r["path"]).name.startswith(name + "_")]
        files = {r["path"] for r in mine}
        print(
            f"{name:>13} {len(files):8d} {sum(bool(hit[f]) for f in files):11d} "
            f"{sum(bool(r['error']) for r in mine):11d} "
            f"{sum(p in files for p in silently_tagged):7d}"
        )
    assert sum(map(bool, hit.values())) >= 30
    assert [p for p in silently_tagged if p not in undetectable] == []


def predict_rows(predictor, paths, workers=0):
    items = items_from_paths([str(p) for p in paths], GeometryOptions(BEAM))
    with Workers(predictor.view_spec, workers=workers) as prepare:
        return list(tag_items(items, predictor, prepare))


def test_manifest_with_a_byte_order_mark_is_read(tmp_path):
    (tmp_path / "m.csv").write_bytes("path,beam_x,beam_y\na.npy,1,2\n".encode("utf-8-sig"))
    assert read_file_list(tmp_path / "m.csv")[0].source == "a.npy"


def test_duplicate_manifest_columns_are_refused(tmp_path):
    (tmp_path / "m.csv").write_text("path,beam_x,beam_y,beam_x\na.npy,1,2,3\n")
    with pytest.raises(FileListError, match=r"\['beam_x'\] appear more than once"):
        read_file_list(tmp_path / "m.csv")


@pytest.mark.parametrize("workers", [0, 1])
def test_an_empty_stack_gives_an_error_row(tmp_path, predictor, workers):
    np.save(tmp_path / "empty.npy", np.zeros((0, *SHAPE), np.int32))
    rows = predict_rows(predictor, [tmp_path / "empty.npy"], workers)
    assert len(rows) == 1 and "holds no frames" in rows[0]["error"]


def test_complex_and_bool_pixels_are_refused(tmp_path, predictor):
    np.save(tmp_path / "c.npy", frame(0, shape=SHAPE).astype(np.complex64))
    np.save(tmp_path / "b.npy", frame(0, shape=SHAPE) > 20)
    rows = predict_rows(predictor, [tmp_path / "c.npy", tmp_path / "b.npy"])
    assert "pixel type complex64 is not counts" in rows[0]["error"]
    assert "pixel type bool is not counts" in rows[1]["error"]
    assert all(r["error"].startswith(str(tmp_path)) for r in rows)


def test_eiger_pixel_mask_of_the_wrong_shape_is_an_error(tmp_path, predictor):
    path = tmp_path / "master.h5"
    with h5py.File(path, "w") as f:
        f["entry/data/data_000001"] = frame(0, shape=SHAPE)[None]
        f["entry/instrument/detector/detectorSpecific/pixel_mask"] = np.zeros((10, 10), np.uint32)
    rows = predict_rows(predictor, [path])
    assert "pixel_mask is (10, 10), frames are (48, 64)" in rows[0]["error"]


def test_symlink_loop_is_named_as_such(tmp_path, predictor):
    os.symlink(tmp_path / "loop.npy", tmp_path / "loop.npy")
    rows = predict_rows(predictor, [tmp_path / "loop.npy"])
    assert "symbolic link loop" in rows[0]["error"]


def test_messages_name_the_file(tmp_path, predictor):
    path = tmp_path / "tiny_disk.npy"
    np.save(path, frame(0, shape=SHAPE))
    items = items_from_paths([str(path)], GeometryOptions((1e300, 1e300)))
    with Workers(predictor.view_spec) as prepare:
        rows = list(tag_items(items, predictor, prepare))
    assert rows[0]["error"].startswith(f"{path} frame 0: ")


def traced_peak_of_views(shape: tuple[int, int]) -> int:
    """Bytes numpy allocates at peak to set up and make both views of one ``shape`` frame."""
    import tracemalloc

    from scattertag.features.views import ViewMaker, ViewSpec
    from scattertag.geometry import Geometry

    counts = np.random.default_rng(0).poisson(50, shape).astype(np.uint32)
    tracemalloc.start()
    try:
        ViewMaker(ViewSpec(), Geometry(shape, (shape[1] / 2, shape[0] / 2)))(counts)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_long_strip_takes_no_more_memory_than_a_square_of_as_many_pixels():
    """Frames are not padded to a square: a 32 x 2048 strip's views (65,536 pixels) take no
    more memory than a 256 x 256 frame's (padded to 2048 x 2048 they took 356 MB vs 49 MB)."""
    assert traced_peak_of_views((32, 2048)) <= traced_peak_of_views((256, 256))


def test_a_256_x_8192_strip_is_tagged_within_the_documented_memory_bound(tmp_path):
    """The header check counts pixels, not a padded square: ``scattertag predict`` tags a
    256 x 8192 strip (6.8 GB padded to 8192 x 8192 before) within ``memory_bound``."""
    from conftest import SRC
    from scattertag.io.readers import memory_bound

    path = tmp_path / "strip.npy"
    strip = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint16, shape=(256, 8192))
    strip[:, :] = frame(3, shape=(256, 512)).astype(np.uint16)[:, np.arange(8192) % 512]
    strip.flush()
    del strip
    argv = [sys.executable, "-m", "scattertag", "predict", str(path), "--workers", "0"]
    argv += ["--beam-center", "4000", "128", "--out", str(tmp_path / "rows.csv")]
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    # Linux keeps the high-water RSS across execve, so a child forked from this (large)
    # pytest process would report pytest's size: measure it from a small launcher instead.
    launcher = (
        "import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", launcher, *argv], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "rows.csv") as f:
        row = next(csv.DictReader(f))
    assert row["error"] == "" and 0 < float(row["Ring"]) < 1
    assert int(proc.stdout.split()[-1]) * 1024 <= memory_bound(256, 8192)

"""Readers: every detector format gives back the pixels written; bad files give clear errors."""

import struct
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np
import pytest
from fabio.cbfimage import CbfImage
from fabio.edfimage import EdfImage
from fabio.tifimage import TifImage
from PIL import Image

from scattertag.io.masks import dummy_valid, mask_digest, read_mask, same_mask, valid_pixels
from scattertag.io.readers import (
    MAX_PIXELS,
    MIN_SIDE,
    ReadError,
    count_frames,
    detector_files,
    is_detector_file,
    read_frames,
    split_source,
)

REAL = Path(__file__).resolve().parents[2] / "shared" / "real-samples"


#: Formats fabio writes, by file name: its writer (compressed ones are written whole first).
FORMATS = {
    "a.mccd": "marccdimage.MarccdImage",
    "a.adsc.img": "adscimage.AdscImage",
    "a.dtrek.img": "dtrekimage.DtrekImage",
    "a.sfrm": "bruker100image.Bruker100Image",
    "a.edf.gz": "edfimage.EdfImage",
    "a.cbf.bz2": "cbfimage.CbfImage",
    "a.spe": None,  # fabio reads SPE but does not write it: written here
}


def write_fabio(path: Path, data: np.ndarray) -> Path:
    """Write ``data`` in the format ``path``'s name implies, through fabio's own writers."""
    import bz2
    import gzip
    import importlib

    name = path.name
    if name.endswith(".spe"):
        return write_spe(path, data)
    if name.endswith((".gz", ".bz2")):
        inner = path.with_name(path.stem)
        write_fabio(inner, data)
        pack = gzip.compress if name.endswith(".gz") else bz2.compress
        path.write_bytes(pack(inner.read_bytes()))
        inner.unlink()
        return path
    simple = {".tif": TifImage, ".cbf": CbfImage, ".edf": EdfImage}
    if path.suffix in simple and name.count(".") == 1:
        cls = simple[path.suffix]
    else:
        module, _, klass = FORMATS[name.split("_", 1)[-1]].rpartition(".")
        cls = getattr(importlib.import_module(f"fabio.{module}"), klass)
    cls(data=data.astype(np.int32) if "cbf" in name else data, header={}).write(str(path))
    return path


def write_spe(path: Path, data: np.ndarray) -> Path:
    """A Princeton Instruments SPE (version 2) file of uint16 frames: 4100-byte header."""
    header = bytearray(4100)
    struct.pack_into("<h", header, 0, 6)  # controller version
    struct.pack_into("<H", header, 42, data.shape[1])  # x dim
    struct.pack_into("<H", header, 656, data.shape[0])  # y dim
    struct.pack_into("<h", header, 108, 3)  # data type: uint16
    struct.pack_into("<i", header, 1446, 1)  # frames
    header[20:29], header[172:178] = b"01Jan2020", b"120000"
    path.write_bytes(bytes(header) + data.astype("<u2").tobytes())
    return path


@pytest.mark.parametrize("name", list(FORMATS))
def test_formats_fabio_detects_are_read(tmp_path, name):
    """SPE, MarCCD, ADSC, d*TREK, Bruker and compressed files, by fabio's own detection."""
    data = stack(1, shape=(64, 64), dtype=np.uint16)[0]  # MarCCD needs a 4 kB file at least
    path = write_fabio(tmp_path / name, data)
    ((index, got),) = frames_of(path)
    assert index == 0 and np.array_equal(got, data)
    assert is_detector_file(path)
    bare = tmp_path / "no_extension"  # found by magic bytes alone where the format has them
    if not name.endswith((".gz", ".bz2", ".spe", ".mccd")):
        bare.write_bytes(path.read_bytes())
        assert np.array_equal(frames_of(bare)[0][1], data)


def test_folder_lists_detector_files_not_notes_nor_eiger_data(tmp_path):
    data = stack(1, shape=(40, 48))[0]
    TifImage(data=data).write(str(tmp_path / "a.tif"))
    np.save(tmp_path / "b.npy", data)
    (tmp_path / "README.md").write_text("notes")
    (tmp_path / "labels.tsv").write_text("a\tb\n")
    (tmp_path / "sub").mkdir()
    EdfImage(data=data).write(str(tmp_path / "sub" / "c.edf"))
    with h5py.File(tmp_path / "s_data_000001.h5", "w") as f:
        f.create_dataset("entry/data/data", data=data[None])
    with h5py.File(tmp_path / "s_master.h5", "w") as f:
        f["entry/data/data_000001"] = h5py.ExternalLink("s_data_000001.h5", "entry/data/data")
    names = [p.name for p in detector_files(tmp_path)]
    assert names == ["a.tif", "b.npy", "s_master.h5"]
    assert [p.name for p in detector_files(tmp_path, recursive=True)][-1] == "c.edf"


def test_headers_give_the_geometry(tmp_path):
    data = stack(1, shape=(40, 48), dtype=np.int32)[0]
    contents = (
        "# Detector: PILATUS 1M\r\n# Pixel_size 172e-6 m x 172e-6 m\r\n"
        "# Detector_distance 1.5000 m\r\n# Wavelength 1.0000 A\r\n"
        "# Beam_xy (12.50, 30.25) pixels\r\n"
    )
    CbfImage(data=data, header={"_array_data.header_contents": contents}).write(
        str(tmp_path / "p.cbf")
    )
    header = next(read_frames(tmp_path / "p.cbf")).header
    assert header.beam_center == (12.5, 30.25) and header.pixel_size == pytest.approx(172e-6)
    assert header.distance == 1.5 and header.energy == pytest.approx(12.398, abs=1e-3)
    esrf = {"Center_1": "20.5", "Center_2": "10.5", "PSize_1": "1e-4", "SampleDistance": "2.0"}
    EdfImage(data=data, header={**esrf, "WaveLength": "1e-10"}).write(str(tmp_path / "e.edf"))
    header = next(read_frames(tmp_path / "e.edf")).header
    assert header.beam_center == (20.0, 10.0) and header.pixel_size == 1e-4  # centre at 0.5
    assert header.distance == 2.0 and header.energy == pytest.approx(12.398, abs=1e-3)
    with h5py.File(tmp_path / "n.h5", "w") as f:
        det = f.create_group("entry/instrument/detector")
        det.attrs["NX_class"] = "NXdetector"
        det["data"] = data[None]
        det["beam_center_x"], det["beam_center_y"] = 7.0, 8.5
        det["x_pixel_size"] = 75e-6
        det["detector_distance"] = 120.0
        det["detector_distance"].attrs["units"] = "mm"
        f["entry/instrument/beam/incident_wavelength"] = 1.5406
        det["pixel_mask"] = np.zeros((40, 48), np.uint32)
        det["pixel_mask"][0, :5] = 1
    frame = next(read_frames(tmp_path / "n.h5"))
    assert frame.header.beam_center == (7.0, 8.5) and frame.header.distance == pytest.approx(0.12)
    assert frame.header.pixel_size == 75e-6 and frame.header.energy == pytest.approx(8.0478, 1e-4)
    assert frame.valid.sum() == 40 * 48 - 5  # the NeXus detector's pixel_mask
    with h5py.File(tmp_path / "n.h5", "a") as f:
        del f["entry/instrument/detector/pixel_mask"]
        f["entry/instrument/detector/pixel_mask"] = np.zeros((4, 4), np.uint32)
    with pytest.raises(ReadError, match="pixel_mask is \\(4, 4\\), frames are \\(40, 48\\)"):
        frames_of(tmp_path / "n.h5")


def stack(n=3, shape=(40, 50), dtype=np.uint32):
    """n distinct frames: frame i is a ramp plus 1000 i."""
    ramp = np.arange(shape[0] * shape[1]).reshape(shape) % 997
    return np.stack([ramp + 1000 * i for i in range(n)]).astype(dtype)


def frames_of(source, frame=None):
    return [(f.index, f.counts) for f in read_frames(source, frame)]


# ---- formats --------------------------------------------------------------------------
def test_tiff_uint32(tmp_path):
    data = stack(1)[0]
    TifImage(data=data).write(str(tmp_path / "a.tif"))
    ((index, counts),) = frames_of(tmp_path / "a.tif")
    assert index == 0 and counts.dtype == np.uint32
    np.testing.assert_array_equal(counts, data)


def test_multipage_tiff_gives_every_frame(tmp_path):
    data = stack(3, dtype=np.int32)
    Image.fromarray(data[0]).save(
        tmp_path / "m.tif", save_all=True, append_images=[Image.fromarray(x) for x in data[1:]]
    )
    got = frames_of(tmp_path / "m.tif")
    assert [i for i, _ in got] == [0, 1, 2] and count_frames(tmp_path / "m.tif") == 3
    for (_, counts), expected in zip(got, data):
        np.testing.assert_array_equal(counts, expected)
    ((i, counts),) = frames_of(tmp_path / "m.tif", frame=2)
    assert i == 2 and np.array_equal(counts, data[2])


@pytest.mark.parametrize("compression", ["tiff_lzw", "tiff_adobe_deflate"])
def test_compressed_tiff_strips_read_and_a_corrupt_one_is_named(tmp_path, compression):
    """A sound LZW/Deflate TIFF of several strips (the last one short) reads as written; a
    corrupt last strip is an error naming the file and the strip (libtiff only warns)."""
    data = np.random.default_rng(5).poisson(40, (300, 257)).astype(np.int32)
    path = tmp_path / "c.tif"
    Image.fromarray(data).save(path, compression=compression)
    ((_, counts),) = frames_of(path)
    np.testing.assert_array_equal(counts, data)
    with Image.open(path) as im:
        offsets, sizes = im.tag_v2[273], im.tag_v2[279]
    assert len(offsets) > 1 and 300 % im.tag_v2[278]
    raw = bytearray(path.read_bytes())
    middle = offsets[-1] + sizes[-1] // 2
    raw[middle : middle + 4] = b"\xff\xff\xff\xff"
    path.write_bytes(bytes(raw))
    with pytest.raises(
        ReadError,
        match=f"{path}: compressed pixel data of page 0, strip {len(offsets) - 1} are corrupt",
    ):
        frames_of(path)


def test_cbf_and_multiframe_edf(tmp_path):
    data = stack(3, dtype=np.int32)
    CbfImage(data=data[1]).write(str(tmp_path / "a.cbf"))
    np.testing.assert_array_equal(frames_of(tmp_path / "a.cbf")[0][1], data[1])
    edf = EdfImage(data=data[0])
    for x in data[1:]:
        edf.append_frame(data=x)
    edf.write(str(tmp_path / "a.edf"))
    got = frames_of(tmp_path / "a.edf")
    assert len(got) == 3 == count_frames(tmp_path / "a.edf") and np.array_equal(got[2][1], data[2])


def test_npy_stack_and_frame(tmp_path):
    data = stack(4, dtype=np.float32)
    np.save(tmp_path / "s.npy", data)
    assert len(frames_of(tmp_path / "s.npy")) == 4 == count_frames(tmp_path / "s.npy")
    ((i, counts),) = frames_of(tmp_path / "s.npy", frame=3)
    assert i == 3 and np.array_equal(counts, data[3])


def test_hdf5_plain_dataset_and_path_syntax(tmp_path):
    data = stack(2)
    with h5py.File(tmp_path / "p.h5", "w") as f:
        f.create_dataset("images/stack", data=data, chunks=(1, 40, 50), **hdf5plugin.Bitshuffle())
        f.create_dataset("other/dark", data=data[0])
    # two image datasets: the reader will not guess
    with pytest.raises(ReadError, match="several image datasets"):
        frames_of(tmp_path / "p.h5")
    got = frames_of(f"{tmp_path / 'p.h5'}::/images/stack")
    assert len(got) == 2 and np.array_equal(got[1][1], data[1])
    ((_, dark),) = frames_of(f"{tmp_path / 'p.h5'}::/other/dark")
    assert np.array_equal(dark, data[0])
    with pytest.raises(ReadError, match="no dataset '/nope'"):
        frames_of(f"{tmp_path / 'p.h5'}::/nope")


def test_eiger_master_links_data_files_and_pixel_mask(tmp_path):
    data = stack(5)
    for k, part in enumerate([data[:3], data[3:]], start=1):
        with h5py.File(tmp_path / f"scan_data_{k:06d}.h5", "w") as f:
            f.create_dataset(
                "entry/data/data",
                data=part,
                chunks=(1, 40, 50),
                **hdf5plugin.Bitshuffle(cname="lz4"),
            )
    pixel_mask = np.zeros((40, 50), np.uint32)
    pixel_mask[5, 7] = 1  # dead pixel
    with h5py.File(tmp_path / "scan_master.h5", "w") as f:
        for k in (1, 2):
            f[f"entry/data/data_{k:06d}"] = h5py.ExternalLink(
                f"scan_data_{k:06d}.h5", "/entry/data/data"
            )
        f.create_dataset("entry/instrument/detector/detectorSpecific/pixel_mask", data=pixel_mask)
    frames = list(read_frames(tmp_path / "scan_master.h5"))
    assert [f.index for f in frames] == [0, 1, 2, 3, 4] and count_frames(
        tmp_path / "scan_master.h5"
    ) == 5
    np.testing.assert_array_equal(frames[4].counts, data[4])  # second data file
    assert frames[0].valid.sum() == 40 * 50 - 1 and not frames[0].valid[5, 7]
    (f3,) = read_frames(tmp_path / "scan_master.h5", frame=3)
    assert np.array_equal(f3.counts, data[3])
    (tmp_path / "scan_data_000002.h5").unlink()
    with pytest.raises(ReadError, match="external data file is missing"):
        list(read_frames(tmp_path / "scan_master.h5"))


def test_nexus_detector_data_is_found(tmp_path):
    data = stack(2)
    with h5py.File(tmp_path / "n.nxs", "w") as f:
        det = f.create_group("entry/instrument/detector")
        det.attrs["NX_class"] = "NXdetector"
        det.create_dataset("data", data=data)
        f.create_dataset("entry/instrument/flatfield", data=np.ones((40, 50)))
    got = frames_of(tmp_path / "n.nxs")
    assert len(got) == 2 and np.array_equal(got[1][1], data[1])


def test_mask_file_uses_pyfai_convention(tmp_path):
    excluded = np.zeros((40, 50), np.uint8)
    excluded[:, :10] = 1
    TifImage(data=excluded).write(str(tmp_path / "mask.tif"))
    valid = read_mask(tmp_path / "mask.tif")
    assert valid.dtype == bool and not valid[:, :10].any() and valid[:, 10:].all()


def test_split_source():
    assert split_source("a/b.h5::/entry/data") == ("a/b.h5", "/entry/data")
    assert split_source("a/b.tif") == ("a/b.tif", None)


@pytest.mark.skipif(not REAL.is_dir(), reason="shared/real-samples not beside the repository")
def test_real_pilatus_frames():
    (cbf,) = read_frames(REAL / "gisaxs_pilatus2m_00005.cbf")
    assert cbf.counts.shape == (1679, 1475) and cbf.counts.dtype == np.int32
    (tif,) = read_frames(REAL / "rings_mn23_0170.tif")
    assert tif.counts.shape == (1043, 981)
    # Pilatus module gaps are marked -1 (and bad pixels -2): whole rows of them
    assert (cbf.counts == -1).sum() > 100_000 and (tif.counts == -1).sum() > 10_000


# ---- bad input ------------------------------------------------------------------------
def test_missing_directory_and_unknown_format(tmp_path):
    with pytest.raises(ReadError, match="file not found"):
        frames_of(tmp_path / "nope.tif")
    with pytest.raises(ReadError, match="not a regular file"):
        frames_of(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ReadError, match=r"unknown format '\.txt'"):
        frames_of(tmp_path / "notes.txt")


CUTS = (0.1, 0.5, 0.9, 0.995)


@pytest.mark.parametrize("name", ["a.tif", "a.cbf", "a.edf", "a.npy", "a.h5", *FORMATS])
def test_truncated_files_are_errors_at_every_cut(tmp_path, name):
    """A file cut anywhere (a tenth, half, nine tenths, a few bytes short) is never read as
    a frame: the error names the file."""
    data = stack(1, shape=(64, 64), dtype=np.uint16)[0]
    whole = tmp_path / name
    if name.endswith(".npy"):
        np.save(whole, data)
    elif name.endswith(".h5"):
        with h5py.File(whole, "w") as f:
            f.create_dataset("data", data=data)
    else:
        write_fabio(whole, data)
    raw = whole.read_bytes()
    for cut in CUTS:
        path = tmp_path / f"cut{cut}_{name}"
        path.write_bytes(raw[: int(len(raw) * cut)])
        with pytest.raises(ReadError, match=path.name):
            frames_of(path)


def test_garbage_with_a_known_suffix(tmp_path):
    for name in ["g.tif", "g.cbf", "g.edf", "g.h5", "g.npy"]:
        (tmp_path / name).write_bytes(bytes(range(256)) * 8)
        with pytest.raises(ReadError, match=name):
            frames_of(tmp_path / name)


def test_frame_out_of_range(tmp_path):
    np.save(tmp_path / "s.npy", stack(2))
    with pytest.raises(ReadError, match=r"frame 2 out of range; the file has 2 frame\(s\), 0 to 1"):
        frames_of(tmp_path / "s.npy", frame=2)


def test_tiny_frame_is_refused(tmp_path):
    np.save(tmp_path / "one.npy", np.ones((1, 1), np.uint32))
    with pytest.raises(ReadError, match=f"1 x 1 pixels; each side must be at least {MIN_SIDE}"):
        frames_of(tmp_path / "one.npy")


def huge_tiff_header(path, rows, cols):
    """A little-endian TIFF whose header announces rows x cols uint32 pixels but holds none."""
    tags = [
        (256, 4, cols),
        (257, 4, rows),
        (258, 3, 32),
        (259, 3, 1),
        (262, 3, 1),
        (273, 4, 8 + 2 + 12 * 9 + 4),
        (278, 4, rows),
        (279, 4, rows * cols * 4 % 2**32),
        (339, 3, 1),
    ]
    ifd = struct.pack("<H", len(tags)) + b"".join(
        struct.pack("<HHII", t, kind, 1, v) for t, kind, v in tags
    )
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00" * 4)


def test_huge_frames_are_refused_from_the_header(tmp_path):
    """A 20,000 x 20,000 frame is refused by MAX_PIXELS before its pixels are read."""
    message = f"20000 x 20000 = 400,000,000 pixels; the limit is {MAX_PIXELS:,}"
    huge_tiff_header(tmp_path / "huge.tif", 20_000, 20_000)  # 130 bytes on disk
    with pytest.raises(ReadError, match=message):
        frames_of(tmp_path / "huge.tif")
    with h5py.File(tmp_path / "huge.h5", "w") as f:  # chunked and never written: tiny on disk
        f.create_dataset("data", shape=(20_000, 20_000), dtype=np.uint32, chunks=(1000, 1000))
    with pytest.raises(ReadError, match=message):
        frames_of(tmp_path / "huge.h5")
    with open(tmp_path / "huge.npy", "wb") as f:  # header only
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<u4", "fortran_order": False, "shape": (20_000, 20_000)}
        )
    with pytest.raises(ReadError, match=message):
        frames_of(tmp_path / "huge.npy")


def test_valid_pixel_rule_by_dtype():
    values = [0, 5, -1, -2]
    assert valid_pixels(np.array(values, np.int32)).tolist() == [True, True, False, False]
    floats = np.array([0.0, 2.5, -0.5, np.nan, np.inf, -np.inf], np.float32)
    assert valid_pixels(floats).tolist() == [True, True, False, False, False, False]
    for dtype in (np.uint8, np.uint16, np.uint32):
        top = np.iinfo(dtype).max
        assert valid_pixels(np.array([0, top - 1, top], dtype)).tolist() == [True, True, False]
    keep = np.array([True, False, True])
    assert valid_pixels(np.array([1, 2, -3]), keep, None).tolist() == [True, False, False]
    counts = np.array([0.0, 6.4, 7.0, 7.5, 9.0])  # pyFAI masks |counts - dummy| <= delta
    assert dummy_valid(counts, 7.0, 0.5).tolist() == [True, True, False, False, True]
    assert dummy_valid(counts, 7.0).tolist() == [True, True, False, True, True]
    assert dummy_valid(counts, None) is None


def test_mask_digest():
    a = np.zeros((8, 9), bool)
    b = a.copy()
    b[3, 4] = True
    assert mask_digest(a) == mask_digest(a.copy()) != mask_digest(b)
    assert mask_digest(np.zeros((9, 8), bool)) != mask_digest(a)  # same bits, other shape


def test_same_mask_compares_every_pixel():
    a = np.ones((16, 24), bool)
    for b in (a, a.copy(), a[:, ::2], np.ones((24, 16), bool)):
        assert same_mask(a, b) == (b.shape == a.shape)  # 8 pixels a step, or element-wise
    for i in (0, 100, a.size - 1):  # any pixel, in any 8-pixel word
        b = a.copy()
        b.reshape(-1)[i] = False
        assert not same_mask(a, b)
        assert same_mask(a[:, 1:], b[:, 1:]) == (i % 24 == 0)  # strided: element-wise

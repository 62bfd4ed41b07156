"""Read detector frames from the files beamlines write.

* every format fabio detects (its magic bytes, then the name): TIFF (incl. Pilatus), CBF,
  EDF, SPE, mar345, MarCCD, ADSC/SMV, Bruker, d*TREK, ..., also ``.gz``/``.bz2``-compressed;
* HDF5 through h5py with hdf5plugin (bitshuffle-LZ4 and friends): Eiger master files
  (``/entry/data/data_NNNNNN`` links to data files), Eiger data files, NeXus
  ``NXdetector``/``NXdata`` groups, or any dataset named as ``file.h5::/path``;
* NumPy ``.npy``.

A file holds one frame (2-D) or a stack (3-D, frames first); :func:`read_frames` yields
them one at a time so a long stack never sits in memory whole. A frame's shape is checked
against :data:`MIN_SIDE` and :data:`MAX_PIXELS` from the file's header *before* its pixels
are read. Every problem raises :class:`ReadError` naming the file and what is wrong.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scattertag.geometry import DetectorValues
from scattertag.io.headers import from_fabio_header, from_nexus
from scattertag.io.integrity import check_tiff_strips

#: Largest frame accepted, in pixels rows x cols (2**25 = 33.5 Mpx: a 5792 x 5792 frame, a
#: 2048 x 16384 strip; an Eiger2 16M frame, 4148 x 4362, is 18 Mpx). Tagging one frame takes
#: at most :func:`memory_bound` bytes, which grows with the pixel count, whatever the shape.
MAX_PIXELS = 2**25
#: Peak resident memory of ``scattertag predict`` (one process, the shipped tagger loaded), in
#: bytes: this much, plus :data:`BYTES_PER_PIXEL` per pixel of the largest frame
#: (benchmarks/bench_memory.py measures both; README, "Tagging in depth").
BASE_BYTES = 512 * 2**20
BYTES_PER_PIXEL = 32
#: Smallest frame side accepted, in pixels.
MIN_SIDE = 16

#: Suffixes read through fabio without asking it first; any other file fabio detects (SPE,
#: mar345, MarCCD, ADSC/SMV, Bruker, d*TREK, Rayonix, RAXIS, .gz/.bz2, ...) is read too.
FABIO_SUFFIXES = (".tif", ".tiff", ".cbf", ".edf")
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".nxs", ".nx5")
NUMPY_SUFFIXES = (".npy",)
SUFFIXES = FABIO_SUFFIXES + HDF5_SUFFIXES + NUMPY_SUFFIXES

#: Separates a file from an HDF5 dataset path: ``scan.h5::/entry/data/data``.
DATASET_SEPARATOR = "::"

#: Where Eiger master files keep their frames and their pixel mask (nonzero = bad pixel).
EIGER_DATA_GROUP = "/entry/data"
EIGER_PIXEL_MASK = "/entry/instrument/detector/detectorSpecific/pixel_mask"


class ReadError(ValueError):
    """A file that cannot be read as a detector frame; the message names file and problem."""


@dataclass(frozen=True)
class Frame:
    """One detector frame as read.

    counts : (rows, cols) array in the file's own dtype.
    valid : (rows, cols) bool, True where the file itself marks a pixel usable
        (an Eiger pixel mask), or None when the file carries no mask.
    index : frame number within the file (0 for single-frame files).
    header : what the file's header says of the geometry (beam centre, pixel size,
        distance, energy), or None.
    """

    counts: np.ndarray
    valid: np.ndarray | None
    index: int
    header: DetectorValues | None = None


def split_source(text: str) -> tuple[str, str | None]:
    """Split ``'file.h5::/entry/data'`` into ``('file.h5', '/entry/data')``; no '::' -> None."""
    path, sep, dataset = str(text).partition(DATASET_SEPARATOR)
    return path, (dataset or None) if sep else None


def check_shape(path: str | Path, shape: tuple[int, ...]) -> tuple[int, int]:
    """The (rows, cols) of a frame of ``shape`` (2-D, or 3-D frames-first), if within limits."""
    if len(shape) not in (2, 3):
        raise ReadError(
            f"{path}: expected a 2-D frame or a 3-D stack of frames, got shape {tuple(shape)}"
        )
    rows, cols = (int(s) for s in shape[-2:])
    if min(rows, cols) < MIN_SIDE:
        raise ReadError(
            f"{path}: frame is {rows} x {cols} pixels; each side must be at least {MIN_SIDE}"
        )
    if rows * cols > MAX_PIXELS:
        raise ReadError(
            f"{path}: frame is {rows} x {cols} = {rows * cols:,} pixels; "
            f"the limit is {MAX_PIXELS:,} (scattertag.io.readers.MAX_PIXELS)"
        )
    return rows, cols


def memory_bound(rows: int, cols: int) -> int:
    """Bytes that tagging one rows x cols frame may take at peak: base + per-pixel cost."""
    return BASE_BYTES + BYTES_PER_PIXEL * rows * cols


def check_frame(path: str | Path, frame: int | None, count: int) -> None:
    """Raise ReadError unless ``frame`` is None or in [0, count)."""
    if frame is not None and not 0 <= frame < count:
        raise ReadError(
            f"{path}: frame {frame} out of range; the file has {count} frame(s), 0 to {count - 1}"
        )


def read_frames(source: str | Path, frame: int | None = None) -> Iterator[Frame]:
    """Yield the frames of ``source`` (all of them, or only ``frame``), one at a time.

    ``source`` is a path, optionally followed by ``::/dataset`` for HDF5 files.
    """
    path, dataset, kind = _locate(source)
    if kind == "hdf5":
        yield from _read_hdf5(path, dataset, frame)
    elif kind == "fabio":
        yield from _read_fabio(path, frame)
    else:
        yield from _read_npy(path, frame)


def load_readers() -> None:
    """Import the format libraries (fabio with its HDF5 formats, h5py, hdf5plugin) now: about
    a second, which a long-running reader would otherwise spend on its first frame."""
    import fabio  # noqa: F401
    import h5py  # noqa: F401
    import hdf5plugin  # noqa: F401


def count_frames(source: str | Path) -> int:
    """Number of frames in ``source``, from its header alone (cheap: no pixels are read)."""
    path, dataset, kind = _locate(source)
    if kind == "hdf5":
        with _open_hdf5(path) as f:
            return sum(_frame_counts(_hdf5_parts(f, path, dataset)))
    if kind == "fabio":
        shape, count = _fabio_header(path)
        check_shape(path, shape)
        return count
    npy_shape, _ = _npy_header(path)
    return npy_shape[0] if len(npy_shape) == 3 else 1


def _locate(source: str | Path) -> tuple[Path, str | None, str]:
    """(path, HDF5 dataset or None, reader kind 'hdf5' | 'fabio' | 'npy'), or ReadError."""
    path_text, dataset = split_source(str(source))
    path = Path(path_text)
    if not path.exists():
        if path.is_symlink():
            try:
                path.resolve(strict=True)
            except (OSError, RuntimeError) as exc:
                if "loop" in str(exc).lower():
                    raise ReadError(
                        f"{path}: symbolic link loop (the link leads back to itself)"
                    ) from None
            raise ReadError(f"{path}: broken symbolic link (its target does not exist)")
        raise ReadError(f"{path}: file not found")
    if not path.is_file():
        raise ReadError(f"{path}: not a regular file (a directory?)")
    suffix = path.suffix.lower()
    if suffix in HDF5_SUFFIXES or _is_hdf5(path):
        return path, dataset, "hdf5"
    if dataset is not None:
        raise ReadError(
            f"{path}: '{DATASET_SEPARATOR}{dataset}' names an HDF5 dataset, "
            "but this is not an HDF5 file"
        )
    if suffix in NUMPY_SUFFIXES or _starts_with(path, b"\x93NUMPY"):
        return path, None, "npy"
    if suffix in FABIO_SUFFIXES or _fabio_knows(path):
        return path, None, "fabio"
    raise ReadError(
        f"{path}: unknown format '{suffix}' (not HDF5, NumPy, nor any format fabio detects)"
    )


def _starts_with(path: Path, magic: bytes) -> bool:
    """True if the file starts with ``magic``."""
    with open(path, "rb") as f:
        return f.read(len(magic)) == magic


def _fabio_knows(path: Path) -> bool:
    """True if fabio's own detection (magic bytes, then the name) takes the file."""
    import fabio

    try:
        fabio.openheader(str(path))
    except Exception:  # fabio raises many types on what it does not know
        return False
    return True


#: Names that are never detector frames (notes, tables, calibrations, partial downloads).
NOT_FRAMES = (".md", ".txt", ".csv", ".tsv", ".json", ".poni", ".py", ".log", ".part", ".tmp")
#: An Eiger data file: ``<prefix>_data_000001.h5``, read through ``<prefix>_master.h5``.
_EIGER_DATA = re.compile(r"^(?P<prefix>.+)_data_\d{6}\.h5$")


def is_detector_file(path: str | Path) -> bool:
    """True if ``path`` is a file of frames: HDF5, NumPy or a format fabio detects, and
    not an Eiger data file whose master file is beside it (the master reads it)."""
    path = Path(path)
    name = path.name.lower()
    if name.startswith(".") or name.endswith(NOT_FRAMES) or not path.is_file():
        return False
    eiger = _EIGER_DATA.match(path.name)
    if eiger and (path.parent / f"{eiger['prefix']}_master.h5").is_file():
        return False
    try:
        _locate(path)
    except (ReadError, OSError):
        return False
    return True


def detector_files(folder: str | Path, recursive: bool = False) -> list[Path]:
    """The detector files in ``folder`` (and its subfolders if ``recursive``), sorted."""
    folder = Path(folder)
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if is_detector_file(p))


# ---- fabio: TIFF, CBF, EDF ------------------------------------------------------------
def _fabio_header(path: Path) -> tuple[tuple[int, int], int]:
    """(rows, cols) and frame count from the header alone (TIFF through Pillow, else fabio)."""
    suffix = path.suffix.lower()
    if suffix in (".gz", ".bz2"):
        _check_stream(path)  # fabio reads what a cut stream holds without complaint
    elif suffix == ".cbf":
        _check_cbf(path)  # fabio may search a cut CBF for its binary section forever
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            # fabio's Pilatus TIFF header reader reports a wrong shape; Pillow reads tags lazily
            from PIL import Image

            # check_shape applies our own size limit, with a clearer message than Pillow's
            limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                with Image.open(path) as im:
                    return (im.size[1], im.size[0]), int(getattr(im, "n_frames", 1))
            finally:
                Image.MAX_IMAGE_PIXELS = limit
        import fabio

        header = fabio.openheader(str(path))
        try:
            shape = tuple(header.shape[-2:])
        except (AttributeError, TypeError):  # a header reader that leaves out the shape
            header = fabio.open(str(path))
            shape = tuple(header.shape[-2:])
        return shape, int(header.nframes)
    except Exception as exc:  # both libraries raise many types on corrupt headers
        raise ReadError(
            f"{path}: not a readable {path.suffix} file ({type(exc).__name__}: {exc})"
        ) from exc


def _read_fabio(path: Path, frame: int | None) -> Iterator[Frame]:
    """Frames of a file fabio reads (TIFF, CBF, EDF, SPE, mar345, ...), whole files only."""
    import fabio

    shape, count = _fabio_header(path)
    check_shape(path, shape)
    check_frame(path, frame, count)
    errors = _LogErrors("fabio")
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            check_tiff_strips(path)  # Pillow decodes corrupt Deflate strips silently
        with errors:
            image = fabio.open(str(path))
        _check_complete(path, image, count)
        header = from_fabio_header(dict(image.header))
        for i in range(image.nframes) if frame is None else [frame]:
            with errors:
                data = image.data if i == image.currentframe else image.getframe(i).data
            yield Frame(_as_frame(path, data, shape), None, i, header)
    except ReadError:
        raise
    except Exception as exc:  # truncated or corrupt pixel data
        raise ReadError(
            f"{path}: not a readable {path.suffix} file ({type(exc).__name__}: {exc})"
        ) from exc


#: fabio classes that store pixels raw after a header of ``HEADER_BYTES`` (or a fixed size).
_RAW_AFTER_HEADER = {"DtrekImage": None, "AdscImage": None, "SpeImage": 4100, "RaxisImage": None}


def _check_complete(path: Path, image, count: int) -> None:
    """ReadError if the file is shorter than its header promises (fabio and libtiff may
    return a partly filled array from a cut file without an error)."""
    size = path.stat().st_size
    name = type(image).__name__
    if path.suffix.lower() in (".gz", ".bz2", ".cbf"):
        return  # checked before fabio opened it (_fabio_header)
    if name in ("TifImage", "MarccdImage", "PilatusImage") or path.suffix.lower() in (
        ".tif",
        ".tiff",
    ):
        need = _tiff_extent(path)
    elif name in _RAW_AFTER_HEADER:
        fixed = _RAW_AFTER_HEADER[name]
        start = fixed if fixed is not None else int(image.header.get("HEADER_BYTES", 0) or 0)
        need = start + image.data.nbytes * count
    elif name == "EdfImage":
        need = max(
            (f.start + f.size for f in getattr(image, "_frames", []) if f.start is not None),
            default=0,
        )
    else:
        return
    if need > size:
        raise ReadError(
            f"{path}: truncated file: its header promises {need:,} bytes, the file has {size:,}"
        )


#: Start of the binary section of a CBF file.
_CBF_BINARY = b"\x0c\x1a\x04\xd5"


def _check_cbf(path: Path) -> None:
    """ReadError unless the CBF file holds the whole binary section its header announces."""
    raw = path.read_bytes()
    start = raw.find(_CBF_BINARY)
    size = re.search(rb"X-Binary-Size:\s*(\d+)", raw[: max(start, 0)])
    if start < 0 or size is None:
        raise ReadError(
            f"{path}: not a readable .cbf file (cut short or corrupt: no binary section)"
        )
    need = start + len(_CBF_BINARY) + int(size[1])
    if need > len(raw):
        raise ReadError(
            f"{path}: truncated file: its header promises {need:,} bytes, the file has {len(raw):,}"
        )
    if raw.find(b"--CIF-BINARY-FORMAT-SECTION----", need) < 0:
        raise ReadError(f"{path}: truncated file: the binary section has no closing boundary")


def _check_stream(path: Path) -> None:
    """ReadError unless a .gz or .bz2 file decompresses to its end marker."""
    import bz2
    import gzip

    opener = gzip.open if path.suffix.lower() == ".gz" else bz2.open
    try:
        with opener(path, "rb") as stream:
            while stream.read(2**20):
                pass
    except (EOFError, OSError, ValueError) as exc:
        raise ReadError(f"{path}: truncated or corrupt compressed file ({exc})") from exc


def _tiff_extent(path: Path) -> int:
    """The end of the last strip or tile of every page of a TIFF file, in bytes."""
    from PIL import Image, TiffImagePlugin

    end = 0
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with Image.open(path) as im:
            if not isinstance(im, TiffImagePlugin.TiffImageFile):
                raise ReadError(f"{path}: not a TIFF file (Pillow reads it as {im.format})")
            for page in range(getattr(im, "n_frames", 1)):
                im.seek(page)
                tags = im.tag_v2
                for offsets, counts in ((273, 279), (324, 325)):
                    if offsets in tags and counts in tags:
                        pairs = zip(tags[offsets], tags[counts])
                        end = max([end, *(int(o) + int(c) for o, c in pairs)])
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    return end


class _LogErrors(logging.Handler):
    """Context manager raising the first ERROR that ``logger`` logged inside it.

    fabio reports some broken files (a truncated EDF data block, which it zero-fills) only
    by logging an error, so listening to its log is how those are caught.
    """

    def __init__(self, logger: str) -> None:
        super().__init__(logging.ERROR)
        self.logger = logging.getLogger(logger)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def __enter__(self) -> None:
        self.messages.clear()
        self.logger.addHandler(self)

    def __exit__(self, exc_type, *exc) -> None:
        self.logger.removeHandler(self)
        if exc_type is None and self.messages:
            raise RuntimeError(self.messages[0])


def _as_frame(path: Path, data: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    """Check that decoded pixel data has the header's shape (truncated files do not)."""
    if data is None or tuple(np.shape(data)) != tuple(shape):
        got = None if data is None else np.shape(data)
        raise ReadError(
            f"{path}: pixel data has shape {got}, header says {tuple(shape)} (truncated file?)"
        )
    return data


# ---- NumPy ---------------------------------------------------------------------------
def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of a .npy file from its header, shape checked against the limits."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_header(f)
    except Exception as exc:
        raise ReadError(f"{path}: not a readable .npy file ({type(exc).__name__}: {exc})") from exc
    check_shape(path, shape)
    if dtype.hasobject:
        raise ReadError(f"{path}: .npy holds Python objects, not pixel values")
    return shape, dtype


def _read_npy(path: Path, frame: int | None) -> Iterator[Frame]:
    """Frames of a .npy file (2-D or 3-D), memory-mapped so one frame is read at a time."""
    shape, _ = _npy_header(path)
    count = shape[0] if len(shape) == 3 else 1
    check_frame(path, frame, count)
    try:
        array = np.load(path, mmap_mode="r")
    except Exception as exc:  # truncated data: mmap is larger than the file
        raise ReadError(f"{path}: not a readable .npy file ({type(exc).__name__}: {exc})") from exc
    stack = array if array.ndim == 3 else array[None]
    for i in range(count) if frame is None else [frame]:
        yield Frame(np.asarray(stack[i]), None, i)


# ---- HDF5: Eiger, NeXus, plain datasets -------------------------------------------------
def _is_hdf5(path: Path) -> bool:
    """True if the file starts with the HDF5 signature."""
    with open(path, "rb") as f:
        return f.read(8) == b"\x89HDF\r\n\x1a\n"


def _open_hdf5(path: Path):
    """An open h5py.File (with the Eiger compression filters registered), or ReadError."""
    import h5py
    import hdf5plugin  # noqa: F401  (registers bitshuffle-LZ4 and friends with h5py)

    try:
        return h5py.File(path, "r")
    except Exception as exc:
        raise ReadError(f"{path}: not a readable HDF5 file ({type(exc).__name__}: {exc})") from exc


def _hdf5_parts(f, path: Path, dataset: str | None) -> list:
    """The datasets holding the frames (the named one, else found), all of one checked shape."""
    parts = [_named_dataset(f, path, dataset)] if dataset else _find_image_datasets(f, path)
    shape = check_shape(path, parts[0].shape)
    for part in parts:
        if len(part.shape) not in (2, 3) or tuple(part.shape[-2:]) != shape:
            raise ReadError(
                f"{path}: {part.name} has shape {part.shape}, expected frames of {shape}"
            )
    return parts


def _frame_counts(parts: list) -> list[int]:
    """Frames in each dataset (3-D: the first axis; 2-D: one)."""
    return [p.shape[0] if p.ndim == 3 else 1 for p in parts]


def _read_hdf5(path: Path, dataset: str | None, frame: int | None) -> Iterator[Frame]:
    """Frames of an HDF5 file: the named dataset, else Eiger stack, NeXus detector or sole image."""
    with _open_hdf5(path) as f:
        parts = _hdf5_parts(f, path, dataset)
        counts = _frame_counts(parts)
        check_frame(path, frame, sum(counts))
        valid = _pixel_mask(f, path, parts[0], tuple(parts[0].shape[-2:]))
        header = from_nexus(f, parts[0].name)
        starts = np.cumsum([0] + counts)
        for i in range(starts[-1]) if frame is None else [frame]:
            k = int(np.searchsorted(starts, i, side="right") - 1)
            part, j = parts[k], i - starts[k]
            try:
                data = part[j] if part.ndim == 3 else part[()]
            except Exception as exc:  # corrupt chunk, missing filter
                raise ReadError(
                    f"{path}: cannot read frame {i} of {part.name} ({type(exc).__name__}: {exc})"
                ) from exc
            yield Frame(data, valid, i, header)


def _named_dataset(f, path: Path, name: str):
    """The dataset ``name`` of open file ``f``, or ReadError."""
    import h5py

    try:
        obj = f[name]
    except KeyError:
        raise ReadError(
            f"{path}: no dataset '{name}' (or its external data file is missing)"
        ) from None
    if not isinstance(obj, h5py.Dataset):
        raise ReadError(f"{path}: '{name}' is a group, not a dataset")
    return obj


def _find_image_datasets(f, path: Path) -> list:
    """The image datasets of a file with no dataset named: Eiger stack, NeXus, or the only one."""
    import h5py

    group = f.get(EIGER_DATA_GROUP)
    if isinstance(group, h5py.Group):
        names = sorted(n for n in group if n.startswith("data_"))
        if names:
            return [_named_dataset(f, path, f"{EIGER_DATA_GROUP}/{n}") for n in names]
    found: list = []
    nexus: list = []

    def visit(name: str, obj) -> None:
        if not isinstance(obj, h5py.Dataset) or obj.ndim not in (2, 3):
            return
        found.append(obj)
        parent = obj.parent
        nx_class = _text(parent.attrs.get("NX_class"))
        if (nx_class == "NXdetector" and name.rsplit("/", 1)[-1] == "data") or (
            nx_class == "NXdata" and _text(parent.attrs.get("signal")) == name.rsplit("/", 1)[-1]
        ):
            nexus.append(obj)

    f.visititems(visit)
    if nexus:
        return nexus[:1]
    if len(found) == 1:
        return found
    if not found:
        raise ReadError(f"{path}: no 2-D or 3-D image dataset in this HDF5 file")
    listed = ", ".join(d.name for d in found[:5])
    raise ReadError(
        f"{path}: several image datasets ({listed}); name one as '{path}{DATASET_SEPARATOR}/path'"
    )


def _pixel_mask(f, path: Path, data, shape: tuple[int, int]) -> np.ndarray | None:
    """Valid pixels from the ``pixel_mask`` of the Eiger master or of the NeXus detector
    holding ``data`` (nonzero = bad pixel), or None; ReadError if its shape is wrong."""
    import h5py

    candidates = [EIGER_PIXEL_MASK, f"{data.parent.name}/pixel_mask"]
    for name in candidates:
        mask = f.get(name)
        if isinstance(mask, h5py.Dataset):
            if tuple(mask.shape) != shape:
                raise ReadError(f"{path}: {mask.name} is {tuple(mask.shape)}, frames are {shape}")
            return np.asarray(mask[()]) == 0
    return None


def _text(value) -> str | None:
    """An HDF5 attribute as str (h5py gives bytes or str)."""
    return value.decode() if isinstance(value, bytes) else (None if value is None else str(value))

"""HDF5 shards: the per-image record, the shard layout, its writer, reader and checksum.

Layout of ``shard_NN.h5`` (``batch_NN.h5`` in datasets built before the rename), ``n``
images ordered by (experiment, image index)::

    attrs        format_version, shard, vocabulary (JSON list), view_spec, recipe (JSON), seed
    image        float32 (n, C, H, W)      image view (frame (1, S, S) or cake (4, A, R)),
                                           one chunk per image
    coeff        float32 (n, C, N+1, K)    Fourier-Bessel coefficient matrix
    labels       uint8   (n, T)            multi-hot tags in vocabulary order
    experiment   int32   (n,)              experiment index
    image_index  int32   (n,)              image index within the experiment
    geometry     str     (n,)              JSON of Geometry.to_dict() (full-size frame)
    keys         str     (n,)              JSON of the hierarchical tag keys -> values
    params       str     (n,)              JSON of every simulation parameter drawn
    raw          uint32  (n, H, W)         with keep_raw: detector counts (bitshuffle-LZ4,
                                           one frame a chunk)
    mask         bool    (n, H, W)         with keep_raw: True = valid pixel (likewise)

The raw frame and mask are compressed by the worker that simulated them (an in-memory HDF5
file does the filter) and written with ``write_direct_chunk``, so the single writer
process only copies bytes.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np

from scattertag.data.manifest import FORMAT_VERSION
from scattertag.io.files import publish, sha256, temporary_name

#: Bitshuffle + LZ4: the Eiger detectors' own compression; shrinks Poisson frames several-fold.
RAW_FILTER = hdf5plugin.Bitshuffle(cname="lz4")

#: Per-image JSON text fields.
TEXT_FIELDS = ("geometry", "keys", "params")


@dataclass
class CompressedFrame:
    """One (H, W) frame already passed through :data:`RAW_FILTER`, ready for write_direct_chunk."""

    shape: tuple[int, int]
    dtype: str
    data: bytes
    filter_mask: int

    @classmethod
    def compress(cls, frame: np.ndarray) -> CompressedFrame:
        """Compress ``frame`` with the shard's raw filter in an in-memory HDF5 file."""
        with h5py.File(io.BytesIO(), "w") as f:
            dset = f.create_dataset("x", data=frame, chunks=frame.shape, **RAW_FILTER)
            filter_mask, data = dset.id.read_direct_chunk((0,) * frame.ndim)
        return cls(tuple(frame.shape), frame.dtype.str, bytes(data), filter_mask)


@dataclass
class Record:
    """Everything a shard stores about one simulated image (built by a worker)."""

    experiment: int
    image_index: int
    image: np.ndarray  # float32 (C, H, W): ViewSpec.image_shape
    coeff: np.ndarray  # float32 (C, N+1, K)
    labels: np.ndarray  # uint8 (T,)
    geometry: str  # JSON
    keys: str  # JSON
    params: str  # JSON
    raw: CompressedFrame | None = None  # uint32 (H, W)
    mask: CompressedFrame | None = None  # bool (H, W)


def shard_bytes(count: int, first: Record) -> int:
    """Upper estimate of a shard's size in bytes from its first record (raw sizes vary: x2)."""
    row = first.image.nbytes + first.coeff.nbytes + first.labels.nbytes + 8
    row += 2 * sum(len(getattr(first, name).encode()) for name in TEXT_FIELDS) + 256
    row += sum(2 * len(f.data) + 64 for f in (first.raw, first.mask) if f is not None)
    return count * row + (1 << 20)


#: Shards whose HDF5 file could not be closed (a full disk); the HDF5 library then crashes
#: when Python exits normally, so the command line ends with os._exit instead.
UNCLOSED: list[Path] = []


class ShardWriter:
    """Writes one shard of a known number of images under ``NAME.tmp``; ``close`` renames it.

    Rows are written in the order given; the builder passes them ordered by
    (experiment, image), so the file is byte-identical whatever the worker count.
    """

    def __init__(
        self,
        path: str | Path,
        count: int,
        first: Record,
        frame_shape: tuple[int, int] | None,
        attrs: dict,
    ) -> None:
        self.path = Path(path)
        self.tmp = temporary_name(self.path)
        self.count = count
        self.row = 0
        self.tag_counts = np.zeros(first.labels.shape, dtype=np.int64)
        need = shard_bytes(count, first)
        free = shutil.disk_usage(self.path.parent).free
        if free < need:  # HDF5 cannot recover from a full disk: refuse before writing
            raise OSError(
                errno.ENOSPC,
                f"{self.tmp}: not enough space for this shard: need about {need / 1e6:.1f} MB, "
                f"{free / 1e6:.1f} MB free",
            )
        try:
            self.file = h5py.File(self.tmp, "w")
        except OSError as exc:
            raise OSError(f"{self.tmp}: cannot create shard ({exc})") from exc
        try:  # reserve the space now, so that the disk cannot fill up under HDF5
            fd = os.open(self.tmp, os.O_WRONLY)
            try:
                os.posix_fallocate(fd, 0, need)
            finally:
                os.close(fd)
        except OSError as exc:  # file systems without fallocate go on unreserved
            if exc.errno == errno.ENOSPC:
                self.abort()
                raise OSError(
                    errno.ENOSPC, f"{self.tmp}: cannot reserve {need / 1e6:.1f} MB for this shard"
                ) from None
        f = self.file
        f.attrs["format_version"] = FORMAT_VERSION
        for name, value in attrs.items():
            f.attrs[name] = value if isinstance(value, (int, float, str)) else json.dumps(value)
        f.create_dataset(
            "image", (count, *first.image.shape), np.float32, chunks=(1, *first.image.shape)
        )
        f.create_dataset(
            "coeff", (count, *first.coeff.shape), np.float32, chunks=(1, *first.coeff.shape)
        )
        f.create_dataset("labels", (count, *first.labels.shape), np.uint8)
        f.create_dataset("experiment", (count,), np.int32)
        f.create_dataset("image_index", (count,), np.int32)
        for name in TEXT_FIELDS:
            f.create_dataset(name, (count,), h5py.string_dtype())
        if frame_shape is not None:
            f.create_dataset(
                "raw", (count, *frame_shape), np.uint32, chunks=(1, *frame_shape), **RAW_FILTER
            )
            f.create_dataset(
                "mask", (count, *frame_shape), bool, chunks=(1, *frame_shape), **RAW_FILTER
            )

    def write(self, record: Record) -> None:
        """Append one image's record as the next row."""
        f, i = self.file, self.row
        if i >= self.count:
            raise ValueError(f"{self.tmp}: more than {self.count} images written")
        f["image"][i] = record.image
        f["coeff"][i] = record.coeff
        f["labels"][i] = record.labels
        f["experiment"][i] = record.experiment
        f["image_index"][i] = record.image_index
        for name in TEXT_FIELDS:
            f[name][i] = getattr(record, name)
        if "raw" in f:
            for name in ("raw", "mask"):
                frame = getattr(record, name)
                f[name].id.write_direct_chunk((i, 0, 0), frame.data, frame.filter_mask)
        self.tag_counts += record.labels
        self.row += 1

    def close(self) -> str:
        """Finish the shard: flush, cut the unused reserved space, fsync, rename; its SHA-256."""
        if self.row != self.count:
            raise ValueError(f"{self.tmp}: {self.row} of {self.count} images written")
        self.file.flush()
        end = self.file.id.get_filesize()  # HDF5's end of data; the reservation may reach past it
        self.file.close()
        if os.path.getsize(self.tmp) > end:
            os.truncate(self.tmp, end)
        publish(self.tmp, self.path)
        return sha256(self.path)

    def abort(self) -> None:
        """Close and delete the unfinished temporary file."""
        try:
            self.file.close()
        except Exception:  # the disk is full: HDF5 cannot flush, the file stays half-open
            UNCLOSED.append(self.tmp)
        finally:
            self.tmp.unlink(missing_ok=True)


def open_shard(path: str | Path) -> h5py.File:
    """Open a finished shard read-only; OSError/ValueError naming the file if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: shard not found")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise OSError(f"{path}: not a readable HDF5 shard (corrupt or truncated?): {exc}") from exc
    version = f.attrs.get("format_version")
    if version != FORMAT_VERSION:
        f.close()
        raise ValueError(f"{path}: shard format version {version}, expected {FORMAT_VERSION}")
    return f

"""Shards checked before training or evaluation uses them: checksum and value ranges.

A shard whose bytes changed since it was built (a bad disk, a partial copy) would train
silently on wrong numbers, so :func:`verify_shard` compares its SHA-256 with the one the
manifest recorded and reads it through once, block by block, checking the documented
ranges: the coefficient view is bounded by 1 in magnitude, the image view (log-scaled
counts, valid fractions, radial coordinate) lies in [0, 1] (cake) or is finite, and labels
are 0 or 1. Each shard is verified once per process (cached by size and mtime).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scattertag.errors import UserError
from scattertag.io.files import sha256

#: Slack on the documented bounds for float32 rounding.
TOLERANCE = 1e-5

_VERIFIED: set[tuple[str, int, int, str]] = set()


def verify_shard(path: str | Path, expected_sha256: str, block: int = 256) -> None:
    """Raise UserError naming ``path`` if its SHA-256 or any stored value is out of range."""
    import h5py

    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, expected_sha256)
    if key in _VERIFIED:
        return
    actual = sha256(path)
    if actual != expected_sha256:
        raise UserError(
            f"{path}: checksum mismatch (SHA-256 {actual[:12]}..., the manifest records "
            f"{expected_sha256[:12]}...); the shard is corrupt or was replaced: rebuild it "
            "(re-run the same build command)"
        )
    with h5py.File(path, "r") as f:
        n = f["coeff"].shape[0]
        for start in range(0, n, block):
            rows = slice(start, min(n, start + block))
            _check_range(path, "coeff", f["coeff"][rows], -1.0, 1.0, start)
            _check_range(path, "image", f["image"][rows], -np.inf, np.inf, start)
            labels = f["labels"][rows]
            if not np.isin(labels, (0, 1)).all():
                raise UserError(f"{path}: labels other than 0 and 1 near row {start}")
    _VERIFIED.add(key)


def _check_range(path: Path, name: str, values: np.ndarray, low: float, high: float, start: int):
    """UserError naming shard, dataset and row unless ``values`` are finite and in [low, high]."""
    bad = ~np.isfinite(values)
    if np.isfinite(low):
        bad |= values < low - TOLERANCE
    if np.isfinite(high):
        bad |= values > high + TOLERANCE
    if bad.any():
        row = start + int(np.argwhere(bad)[0][0])
        worst = values[bad].flat[0]
        raise UserError(
            f"{path}: {name} of row {row} is {float(worst):g}, outside the documented range "
            f"[{low:g}, {high:g}] (corrupt shard): rebuild it"
        )

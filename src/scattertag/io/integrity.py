"""Checks that compressed pixel data decode whole, for formats whose decoders stay silent.

Pillow and fabio decode a corrupt compressed TIFF strip without an error: libtiff prints a
warning and fills the strip as best it can, so a bit flipped on disk becomes wrong pixels
and then wrong tags. :func:`check_tiff_strips` checks every strip or tile before the
pixels are used:

* Deflate: decompressed with zlib, which verifies the Adler-32 checksum;
* LZW (no checksum): parsed as a TIFF LZW code stream (:func:`lzw_decoded_length`), which
  must be well formed (no code beyond the string table, a literal after each clear code);
* both must decode to exactly the bytes the strip or tile holds (its rows x row bytes).

An LZW bit flip that turns one code into another valid code of the same decoded length
(e.g. a literal byte into another literal) leaves a well-formed stream of the right length:
without a checksum no reader can see it.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np

#: TIFF compression codes of LZW, and of Deflate (Adobe and the old PKZIP code).
LZW = 5
DEFLATE = (8, 32946)
STRIP_OFFSETS, STRIP_BYTES, TILE_OFFSETS, TILE_BYTES, COMPRESSION = 273, 279, 324, 325, 259
WIDTH, LENGTH, BITS, SAMPLES, ROWS_PER_STRIP, PLANAR = 256, 257, 258, 277, 278, 284
TILE_WIDTH, TILE_LENGTH = 322, 323

#: TIFF LZW: clear code, end of information, first string-table code; the table may grow
#: 1024 codes past 12 bits before a clear code, as libtiff allows.
CLEAR, EOI, FIRST = 256, 257, 258
TABLE_LIMIT = 4096 + 1024


def _code_widths() -> np.ndarray:
    """Bits of the i-th code after a clear code: 9, then one more each time the table
    (258 + i - 1 entries when code i >= 1 is read) reaches 2^bits - 1 ("early change")."""
    size = FIRST + np.maximum(np.arange(TABLE_LIMIT - FIRST + 2) - 1, 0)
    widths = np.full(len(size), 9, np.int64)
    for bits in (10, 11, 12):
        widths[size >= (1 << (bits - 1)) - 1] = bits
    return widths


_WIDTHS = _code_widths()
_ENDS = np.cumsum(_WIDTHS)


def _segment_length(codes: np.ndarray) -> int:
    """Decoded bytes of the codes between two clear codes; ValueError if malformed.

    Code i >= 1 adds table entry 258 + i - 1 = (string of code i - 1) + one byte, so a
    table code c decodes to 1 + the length of code c - 258: lengths by pointer doubling.
    """
    if codes[0] >= CLEAR:
        raise ValueError(f"code {int(codes[0])} where a literal byte must follow a clear code")
    index = np.arange(len(codes))
    late = np.flatnonzero(codes[1:] > FIRST - 1 + index[1:])
    if len(late):
        i = int(late[0]) + 1
        raise ValueError(f"code {int(codes[i])} is not yet in the table ({FIRST + i - 1} entries)")
    table = codes >= FIRST
    hop = np.where(table, codes.astype(np.int64) - FIRST, index)
    depth = table.astype(np.int64)
    while table[hop].any():  # some still point at a table code, not at a literal
        depth += depth[hop]
        hop = hop[hop]
    return len(codes) + int(depth.sum())


def lzw_decoded_length(data: bytes) -> int:
    """Bytes that a TIFF LZW strip (MSB-first codes of 9-12 bits) decodes to.

    Raises ValueError if the code stream is malformed. A stream that ends without its
    end-of-information code counts up to its last whole code (as libtiff reads it).
    """
    buf = np.frombuffer(bytes(data) + b"\0\0", np.uint8).astype(np.uint32)
    window = (buf[:-2] << 16) | (buf[1:-1] << 8) | buf[2:]  # 24 bits from each byte on
    bits, pos, out = 8 * len(data), 0, 0
    while True:
        n = int(np.searchsorted(_ENDS, bits - pos, side="right"))  # whole codes left
        if n == 0:
            return out
        starts = pos + _ENDS[:n] - _WIDTHS[:n]
        shift = (24 - (starts & 7) - _WIDTHS[:n]).astype(np.uint32)
        codes = (window[starts >> 3] >> shift) & ((1 << _WIDTHS[:n]) - 1).astype(np.uint32)
        marks = np.flatnonzero((codes == CLEAR) | (codes == EOI))
        end = int(marks[0]) if len(marks) else n
        if end:
            out += _segment_length(codes[:end])
        if not len(marks):
            if n == len(_WIDTHS):
                raise ValueError(f"more than {TABLE_LIMIT} codes without a clear code")
            return out  # the stream ends without an end-of-information code
        if codes[end] == EOI:
            return out
        pos += int(_ENDS[end])  # past the clear code: a new table


def chunk_sizes(tags, count: int) -> list[int]:
    """Bytes each of the ``count`` strips or tiles of a TIFF page holds once decoded."""
    bits = tags.get(BITS, 1)
    bits = int(bits[0] if isinstance(bits, tuple) else bits)
    samples = 1 if tags.get(PLANAR, 1) == 2 else int(tags.get(SAMPLES, 1))
    width, length = int(tags[WIDTH]), int(tags[LENGTH])
    if TILE_OFFSETS in tags:
        row = math.ceil(int(tags[TILE_WIDTH]) * bits * samples / 8)
        return [row * int(tags[TILE_LENGTH])] * count
    rows = min(int(tags.get(ROWS_PER_STRIP, length)), length)
    per_plane = math.ceil(length / rows)
    row = math.ceil(width * bits * samples / 8)
    return [row * min(rows, length - (k % per_plane) * rows) for k in range(count)]


def decoded_length(data: bytes, compression: int) -> int:
    """Bytes a Deflate or LZW strip decodes to; ValueError if it is corrupt."""
    if compression == LZW:
        return lzw_decoded_length(data)
    try:
        return len(zlib.decompress(data))
    except zlib.error as exc:
        raise ValueError(str(exc)) from None


def check_tiff_strips(path: str | Path) -> None:
    """Raise ValueError naming ``path`` if an LZW or Deflate strip or tile of any page is
    corrupt or decodes to other than its size."""
    from PIL import Image

    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with Image.open(path) as im, open(path, "rb") as raw:
            for page in range(int(getattr(im, "n_frames", 1))):
                im.seek(page)
                tags = im.tag_v2  # type: ignore[attr-defined]
                compression = tags.get(COMPRESSION)
                if compression != LZW and compression not in DEFLATE:
                    continue
                offsets = tags.get(STRIP_OFFSETS) or tags.get(TILE_OFFSETS) or ()
                counts = tags.get(STRIP_BYTES) or tags.get(TILE_BYTES) or ()
                sizes = chunk_sizes(tags, len(offsets))
                for k, (offset, count, size) in enumerate(zip(offsets, counts, sizes)):
                    raw.seek(offset)
                    try:
                        got = decoded_length(raw.read(count), compression)
                        if got != size:
                            raise ValueError(f"decodes to {got} bytes, not {size}")
                    except ValueError as exc:
                        raise ValueError(
                            f"{path}: compressed pixel data of page {page}, strip {k} are "
                            f"corrupt ({exc})"
                        ) from None
    finally:
        Image.MAX_IMAGE_PIXELS = limit

"""Checks that compressed pixel data decode whole, for formats whose decoders stay silent.

Pillow and fabio decode a Deflate-compressed TIFF strip that fails zlib's Adler-32
checksum, or ends early, without an error: a bit flipped on disk becomes wrong pixels and
then wrong tags. :func:`check_tiff_strips` decompresses every strip or tile with zlib,
which verifies the checksum, before the pixels are used.
"""

from __future__ import annotations

import zlib
from pathlib import Path

#: TIFF compression codes of Deflate (Adobe and the old PKZIP code).
DEFLATE = (8, 32946)
STRIP_OFFSETS, STRIP_BYTES, TILE_OFFSETS, TILE_BYTES, COMPRESSION = 273, 279, 324, 325, 259


def check_tiff_strips(path: str | Path) -> None:
    """Raise ValueError naming ``path`` if a Deflate strip or tile of any page fails zlib."""
    from PIL import Image

    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with Image.open(path) as im, open(path, "rb") as raw:
            for page in range(int(getattr(im, "n_frames", 1))):
                im.seek(page)
                tags = im.tag_v2  # type: ignore[attr-defined]
                if tags.get(COMPRESSION) not in DEFLATE:
                    continue
                offsets = tags.get(STRIP_OFFSETS) or tags.get(TILE_OFFSETS) or ()
                counts = tags.get(STRIP_BYTES) or tags.get(TILE_BYTES) or ()
                for k, (offset, count) in enumerate(zip(offsets, counts)):
                    raw.seek(offset)
                    try:
                        zlib.decompress(raw.read(count))
                    except zlib.error as exc:
                        raise ValueError(
                            f"{path}: compressed pixel data of page {page}, strip {k} are "
                            f"corrupt ({exc})"
                        ) from None
    finally:
        Image.MAX_IMAGE_PIXELS = limit

"""Files written atomically (temporary name, fsync, rename) and JSON read with clear errors.

PONI files, manifests, model cards, evaluations and study tables all go through here, so a
crash never leaves half a file where a complete one stood.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path``: temporary name, fsync, rename (never half a file)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def write_json(path: str | Path, obj: object) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    return write_text(path, json.dumps(obj, indent=1) + "\n")


def read_json(path: str | Path) -> object:
    """The parsed content of ``path``; ValueError naming the file if it is not valid JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None

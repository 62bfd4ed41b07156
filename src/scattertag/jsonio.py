"""JSON files that are written atomically and read with errors naming the file.

Manifests, model cards, evaluations and study tables all go through these two functions.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_json(path: str | Path, obj: object) -> Path:
    """Write ``obj`` as indented JSON: temporary name, fsync, rename (never half a file)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def read_json(path: str | Path) -> object:
    """The parsed content of ``path``; ValueError naming the file if it is not valid JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None

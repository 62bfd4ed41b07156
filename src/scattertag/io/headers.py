"""The geometry a detector file states about itself: beam centre, pixel size, distance, energy.

* Pilatus CBF (``_array_data.header_contents``): ``# Beam_xy (x, y) pixels``,
  ``# Pixel_size 172e-6 m x 172e-6 m``, ``# Detector_distance 0.2 m``,
  ``# Wavelength 1.0332 A``; the centre is taken as pixel-centre coordinates.
* EDF (ESRF SAXS keys, also written by Xenocs instruments): ``Center_1``, ``Center_2``
  (pixel coordinates with the first pixel's centre at 0.5, so x = Center_1 - 0.5),
  ``PSize_1``, ``PSize_2`` (m), ``SampleDistance`` (m), ``WaveLength`` (m).
* NeXus / Eiger (an ``NXdetector`` group, e.g. ``/entry/instrument/detector``):
  ``beam_center_x``, ``beam_center_y`` (pixels), ``x_pixel_size``, ``detector_distance``
  (``units`` attribute honoured, metres by default) and ``incident_wavelength`` of the beam
  (Angstrom by default).

Values a header does not give, or gives as zero or nonsense, are None.
"""

from __future__ import annotations

import math
import re

import numpy as np

from scattertag.geometry import HC_KEV_A, DetectorValues

#: Length units as NeXus and Eiger write them, in metres.
_LENGTH = {"m": 1.0, "mm": 1e-3, "um": 1e-6, "µm": 1e-6, "micron": 1e-6, "cm": 1e-2, "nm": 1e-9}
_LENGTH.update({"angstrom": 1e-10, "a": 1e-10, "å": 1e-10})

_NUMBER = r"([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)"


def _positive(value: object) -> float | None:
    """A finite positive float, else None."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _values(
    centre: tuple[object, object] | None,
    pixel_m: object = None,
    distance_m: object = None,
    wavelength_m: object = None,
) -> DetectorValues | None:
    """DetectorValues from raw numbers (None where missing or not sensible); None if empty."""
    beam = None
    if centre is not None:
        try:
            x, y = (float(c) for c in centre)  # type: ignore[arg-type]
            beam = (x, y) if math.isfinite(x) and math.isfinite(y) and (x, y) != (0, 0) else None
        except (TypeError, ValueError):
            beam = None
    wavelength = _positive(wavelength_m)
    energy = None if wavelength is None else HC_KEV_A / (wavelength * 1e10)
    values = DetectorValues(beam, _positive(pixel_m), _positive(distance_m), energy)
    return None if values == DetectorValues() else values


def from_fabio_header(header: dict) -> DetectorValues | None:
    """What a fabio image's header says of the geometry (Pilatus CBF or EDF keys)."""
    text = header.get("_array_data.header_contents")
    if isinstance(text, str):
        return _pilatus(text)
    if "Center_1" in header or "PSize_1" in header or "SampleDistance" in header:
        centre = None
        if "Center_1" in header and "Center_2" in header:
            try:
                centre = (float(header["Center_1"]) - 0.5, float(header["Center_2"]) - 0.5)
            except ValueError:
                centre = None
        return _values(
            centre, header.get("PSize_1"), header.get("SampleDistance"), header.get("WaveLength")
        )
    return None


def _pilatus(text: str) -> DetectorValues | None:
    """The geometry in a Pilatus CBF header's text."""

    def find(pattern: str) -> re.Match | None:
        return re.search(pattern, text, re.IGNORECASE)

    beam = find(rf"Beam_xy\s*\(\s*{_NUMBER}\s*,\s*{_NUMBER}\s*\)")
    pixel = find(rf"Pixel_size\s+{_NUMBER}\s*m")
    distance = find(rf"Detector_distance\s+{_NUMBER}\s*m")
    wavelength = find(rf"Wavelength\s+{_NUMBER}\s*A")
    return _values(
        None if beam is None else (beam[1], beam[2]),
        None if pixel is None else pixel[1],
        None if distance is None else distance[1],
        None if wavelength is None else float(wavelength[1]) * 1e-10,
    )


def from_nexus(f, detector_path: str | None = None) -> DetectorValues | None:
    """What an open HDF5 file's NeXus/Eiger detector group says of the geometry."""
    group = _detector_group(f, detector_path)
    if group is None:
        return None

    def read(name: str, default_unit: str | None, where=group) -> float | None:
        """A scalar dataset, in metres unless ``default_unit`` is None (pixels)."""
        item = where.get(name)
        if item is None or not hasattr(item, "shape") or item.size != 1:
            return None
        try:
            value = float(np.asarray(item[()]).reshape(()))
        except (TypeError, ValueError):
            return None
        if default_unit is None:
            return value
        unit = item.attrs.get("units", default_unit)
        unit = (unit.decode() if isinstance(unit, bytes) else str(unit)).strip().lower()
        return value * _LENGTH.get(unit or default_unit, math.nan)

    x = read("beam_center_x", None)
    y = read("beam_center_y", None)
    beam = None if x is None or y is None else (x, y)
    wavelength = None
    for path in (
        "/entry/instrument/beam/incident_wavelength",
        "/entry/sample/beam/incident_wavelength",
    ):
        parent, _, name = path.rpartition("/")
        if parent in f:
            wavelength = wavelength or read(name, "angstrom", f[parent])
    return _values(beam, read("x_pixel_size", "m"), read("detector_distance", "m"), wavelength)


def _detector_group(f, detector_path: str | None):
    """The NXdetector group holding ``detector_path`` (a dataset), else the file's first one."""
    import h5py

    if detector_path:
        parent = f.get(detector_path.rsplit("/", 1)[0] or "/")
        if isinstance(parent, h5py.Group) and _nx_class(parent) == "NXdetector":
            return parent
    default = f.get("/entry/instrument/detector")
    if isinstance(default, h5py.Group):
        return default
    found = []
    f.visititems(
        lambda n, o: (
            found.append(o) if isinstance(o, h5py.Group) and _nx_class(o) == "NXdetector" else None
        )
    )
    return found[0] if found else None


def _nx_class(group) -> str | None:
    """A group's NX_class attribute as str."""
    value = group.attrs.get("NX_class")
    return value.decode() if isinstance(value, bytes) else value

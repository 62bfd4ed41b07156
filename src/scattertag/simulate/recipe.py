"""The recipe: every knob of the simulator, validated when it is made.

A :class:`Recipe` fixes the frame size, the tag vocabulary, the reference geometry and the
probabilities with which experiments and samples draw each term. Bad values fail at once
with a message naming the parameter and its allowed range.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

from scattertag.geometry import REFERENCE_DISTANCE, REFERENCE_ENERGY, REFERENCE_PIXEL_SIZE
from scattertag.simulate.catalogue import CATALOGUE
from scattertag.tags import DEFAULT_VOCABULARY, GISAXS_VOCABULARY, Vocabulary

#: Frame side of the reference geometry (75 um pixels, 0.594 m, 8.8984 keV).
REFERENCE_SIZE = 1000

#: Default probabilities of each image kind (normalised when drawn).
DEFAULT_KINDS = {"sample": 0.90, "calibrant": 0.04, "dark": 0.03, "direct beam": 0.03}

#: Default probabilities of the beam-centre placements (normalised when drawn); "far":
#: 0.35-1.5 detector sides off the frame (WAXS strips).
DEFAULT_PLACEMENTS = {"corner": 0.35, "center": 0.25, "edge": 0.28, "off": 0.12, "far": 0.0}

#: Default probabilities of the setups of catalogue experiments (normalised when drawn).
DEFAULT_SETUPS = {"saxs": 0.7, "waxs": 0.3}

#: Fraction of grazing-incidence experiments when ``gisaxs_fraction`` is not given:
#: catalogue experiments include some (tagged with the default 17 tags), the reference
#: detector none (as before).
DEFAULT_GISAXS_FRACTION = {"catalogue": 0.1, "reference": 0.0}

#: Default probabilities of the beamstop of an experiment with the beam on the frame.
DEFAULT_BEAMSTOPS = {
    "linear": 0.16,
    "circular": 0.16,
    "wedge": 0.20,
    "none": 0.12,
    "rod": 0.12,  # thin bar from any direction
    "paddle": 0.10,  # rectangle on an arm
    "disk": 0.14,  # disk on an arm from any direction, small to large
}

#: Default probability that an image of kind "sample" contains each term.
DEFAULT_TERMS = {
    "diffuse low-q": 0.55,  # power law, Ornstein-Zernike, Debye-Bueche, Guinier
    "form factor": 0.15,  # sphere form factor (a low-q diffuse term)
    "diffuse high-q": 0.30,
    "ring": 0.45,  # one to three rings
    "halo": 0.30,
    "lattice": 0.36,  # BCC, FCC, hexagonal, lamellar nanoparticle lattice
    "mesostructure": 0.05,  # single crystal / rotated grains of a 2-D lattice: Bragg spots
    "structured background": 0.30,
    "windowed background": 0.10,
    "parasitic": 0.15,
    "zingers": 0.15,
    "saturation": 0.03,
    "specular rod": 0.7,  # grazing-incidence experiments only
    "bragg rods": 0.5,  # grazing-incidence experiments only
    # per experiment, drawn from their own stream
    "environment shadow": 0.12,  # a stage edge or a cell's aperture shades part of the frame
    "sensitivity": 0.5,  # flat field: gradient, module gains, pixel gains
    "detector tilt": 0.35,  # WAXS only: the detector turned 5-40 degrees (tilt.py)
    # per image, drawn from their own stream (artefacts.py)
    "exposure": 0.2,  # a very weak (1e-3-0.1) or very long (10-1000) exposure
    "air": 0.4,  # air scattering along the beam path near the beamstop
    "kapton": 0.25,  # Kapton window: peaks at q 0.4 and 1.2 1/A (absolute q)
    "fluorescence": 0.2,  # isotropic, flat per solid angle
    "cosmic rays": 0.15,  # tracks on integrating detectors, single hits on counting ones
    "fibre": 0.06,  # oriented fibre: equatorial and meridional arcs, layer lines
    "single crystal": 0.05,  # Bragg spots of a crystal in a zone axis, over a halo
    "powder": 0.12,  # crystalline powder: lattice rings, textured or spotty (coarse grains)
}


#: Entries of the first version (Recipe.legacy turns the others off).
V1_PLACEMENTS = {"corner": 0.35, "center": 0.25, "edge": 0.28, "off": 0.12}
V1_BEAMSTOPS = {"linear": 0.30, "circular": 0.30, "wedge": 0.28, "none": 0.12}
V1_TERMS = (
    "diffuse low-q",
    "form factor",
    "diffuse high-q",
    "ring",
    "halo",
    "lattice",
    "mesostructure",
    "structured background",
    "windowed background",
    "parasitic",
    "zingers",
    "saturation",
    "specular rod",
    "bragg rods",
)


def _v1(table: dict, v1: dict | tuple) -> dict:
    """``table`` as the first version had it: its own values for v1 entries (a dict), the
    defaults for v1 names (a tuple), 0 for entries added since."""
    return {k: (v1[k] if isinstance(v1, dict) else table[k]) if k in v1 else 0.0 for k in table}


def _check_probabilities(name: str, table: dict, allowed: dict, normalised: bool) -> dict:
    """Validate a {name: probability} table against the allowed names; return a plain dict."""
    table = dict(table)
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise ValueError(f"Recipe.{name}: unknown entries {unknown}; allowed: {sorted(allowed)}")
    for key, p in table.items():
        if not (isinstance(p, (int, float)) and 0.0 <= float(p) <= 1.0):
            raise ValueError(f"Recipe.{name}[{key!r}] must be a probability in [0, 1], got {p!r}")
    merged = {**allowed, **{k: float(v) for k, v in table.items()}}
    if normalised and sum(merged.values()) <= 0.0:
        raise ValueError(f"Recipe.{name}: probabilities must not all be zero")
    return merged


def _check_detectors(value: object) -> str | dict:
    """ "catalogue", "reference", or a {catalogue name or "reference": weight} table."""
    if isinstance(value, str):
        if value not in ("catalogue", "reference"):
            raise ValueError(
                "Recipe.detectors must be 'catalogue', 'reference' or a {name: weight} table, "
                f"got {value!r}"
            )
        return value
    if not isinstance(value, dict):
        raise ValueError(f"Recipe.detectors must be a string or a dict, got {value!r}")
    allowed = dict.fromkeys([*CATALOGUE, "reference"], 0.0)
    return _check_probabilities("detectors", value, allowed, True)


def _check_range(name: str, value: object, lo: float, hi: float) -> float:
    """A finite float in [lo, hi], or ValueError naming the parameter and the range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"Recipe.{name} must be a number in [{lo:g}, {hi:g}], got {value!r}")
    if not lo <= float(value) <= hi:
        raise ValueError(f"Recipe.{name} must be in [{lo:g}, {hi:g}], got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Recipe:
    """All simulator settings; validated on construction.

    Attributes
    ----------
    size : frame side (int) or (rows, cols); 16 to 8192 pixels a side. Every frame has
        this shape; a catalogue detector is resampled to fill its longer side.
    detectors : "catalogue" (default: each experiment draws a real detector from
        ``catalogue.CATALOGUE``), "reference" (the single detector of the first version:
        ``distance``, ``energy``, ``pixel_size``, Pilatus-like gaps), or a
        {name: weight} table over catalogue names and "reference".
    vocabulary : tag vocabulary; default: the 17 tags, or the GISAXS vocabulary when
        ``gisaxs_fraction > 0`` is given explicitly.
    gisaxs_fraction : fraction of experiments in grazing incidence, [0, 1]; default
        DEFAULT_GISAXS_FRACTION (0.1 with catalogue detectors, 0 with the reference one).
    module_gap_fraction : fraction of reference-detector experiments with Pilatus-like
        module gaps (masked), [0, 1].
    distance, energy : reference sample-detector distance (m) and photon energy (keV).
    pixel_size : reference pixel edge (m) at 1000 pixels across; at size S it is
        pixel_size * 1000 / S, so every size sees the same q range.
    kinds, placements, beamstops, setups : probabilities of the image kinds, beam-centre
        placements, beamstop types and (catalogue) setups (normalised).
    terms : probability that a sample image contains each term, each in [0, 1].
    """

    size: int | tuple[int, int] = 256
    detectors: str | dict = "catalogue"
    vocabulary: Vocabulary | None = None
    gisaxs_fraction: float | None = None
    module_gap_fraction: float = 0.35
    distance: float = REFERENCE_DISTANCE
    energy: float = REFERENCE_ENERGY
    pixel_size: float = REFERENCE_PIXEL_SIZE
    kinds: dict = field(default_factory=dict)
    placements: dict = field(default_factory=dict)
    beamstops: dict = field(default_factory=dict)
    terms: dict = field(default_factory=dict)
    setups: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        size: Any = self.size  # as given; checked here
        given = (size, size) if isinstance(size, (int,)) and not isinstance(size, bool) else size
        try:
            shape = tuple(given)
            ok = len(shape) == 2 and all(
                isinstance(s, int) and not isinstance(s, bool) for s in shape
            )
        except TypeError:
            ok = False
        if not ok or not all(16 <= s <= 8192 for s in shape):
            raise ValueError(
                "Recipe.size must be an integer or (rows, cols) of integers in [16, 8192], "
                f"got {size!r}"
            )
        set_("size", shape[0] if shape[0] == shape[1] else shape)
        set_("detectors", _check_detectors(self.detectors))
        explicit_gisaxs = self.gisaxs_fraction is not None
        if not explicit_gisaxs:
            mode = self.detectors if isinstance(self.detectors, str) else "catalogue"
            set_("gisaxs_fraction", DEFAULT_GISAXS_FRACTION[mode])
        for name, lo, hi in (
            ("gisaxs_fraction", 0.0, 1.0),
            ("module_gap_fraction", 0.0, 1.0),
            ("distance", 0.05, 20.0),
            ("energy", 2.0, 100.0),
            ("pixel_size", 1e-6, 1e-3),
        ):
            set_(name, _check_range(name, getattr(self, name), lo, hi))
        set_("kinds", _check_probabilities("kinds", self.kinds, DEFAULT_KINDS, True))
        set_(
            "placements",
            _check_probabilities("placements", self.placements, DEFAULT_PLACEMENTS, True),
        )
        # the reference detector keeps the first version's beamstops and terms by default
        v1 = self.detectors == "reference"
        stops = {**DEFAULT_BEAMSTOPS, **_v1(DEFAULT_BEAMSTOPS, V1_BEAMSTOPS)} if v1 else None
        terms = {**DEFAULT_TERMS, **_v1(DEFAULT_TERMS, V1_TERMS)} if v1 else None
        set_(
            "beamstops",
            _check_probabilities("beamstops", self.beamstops, stops or DEFAULT_BEAMSTOPS, True),
        )
        set_("terms", _check_probabilities("terms", self.terms, terms or DEFAULT_TERMS, False))
        set_("setups", _check_probabilities("setups", self.setups, DEFAULT_SETUPS, True))
        vocab = self.vocabulary
        if vocab is None:
            gisaxs = explicit_gisaxs and float(self.gisaxs_fraction or 0.0) > 0
            vocab = GISAXS_VOCABULARY if gisaxs else DEFAULT_VOCABULARY
        elif not isinstance(vocab, Vocabulary):
            vocab = Vocabulary(tuple(vocab))
        # grazing-incidence frames are tagged with whatever the vocabulary holds; their
        # GISAXS keys (horizon, Yoneda, rods) stay in Sample.keys either way
        set_("vocabulary", vocab)

    def __hash__(self) -> int:
        """Hash of the settings (the dict fields make the generated hash unusable)."""
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of every frame."""
        return (self.size, self.size) if isinstance(self.size, int) else self.size

    @property
    def pixel_size_at_shape(self) -> float:
        """Pixel edge (m) at this frame size: the reference detector area resampled."""
        return self.pixel_size * REFERENCE_SIZE / max(self.shape)

    def to_dict(self) -> dict:
        """JSON-serialisable dictionary; :meth:`from_dict` inverts it."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["size"] = list(self.size) if isinstance(self.size, tuple) else self.size
        assert self.vocabulary is not None  # set by __post_init__
        d["vocabulary"] = self.vocabulary.to_list()
        if isinstance(self.detectors, dict):
            d["detectors"] = dict(self.detectors)
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> Recipe:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"Recipe: unknown settings {unknown}; allowed: {sorted(names)}")
        d = dict(d)
        d.setdefault("detectors", "reference")  # recipes from before the catalogue
        if isinstance(d.get("size"), list):
            d["size"] = tuple(d["size"])
        if d.get("vocabulary") is not None:
            d["vocabulary"] = Vocabulary.from_list(d["vocabulary"])
        return cls(**d)

    @classmethod
    def legacy(cls, size: int | tuple[int, int] = 256) -> Recipe:
        """The first version's simulator, bit for bit: ``Recipe(size, detectors="reference")``
        (the reference detector, no grazing incidence and none of the terms, placements or
        beamstops added since, unless asked for)."""
        return cls(size=size, detectors="reference")

"""An experiment: what stays fixed while the samples change.

:func:`draw_experiment` fixes the detector (a real one from the catalogue, or the reference
detector), the setup (distance, energy: SAXS or WAXS), the beam centre and the beamstop.
The per-experiment index maps that make each image cheap (radial bin, chi
bin, pixels sorted by radius, observed pixels) are built once, on first use, and cached on
the :class:`Experiment`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from scattertag.geometry import Geometry
from scattertag.simulate import gisaxs
from scattertag.simulate.beamstops import Beamstop, draw_beamstop, draw_shadow
from scattertag.simulate.catalogue import CATALOGUE, DetectorModel, detector_mask, place
from scattertag.simulate.detector import (
    dead_pixels,
    draw_mask,
    sensitivity_map,
    sensitivity_params,
)
from scattertag.simulate.recipe import REFERENCE_SIZE, Recipe
from scattertag.simulate.tilt import Tilt, draw_tilt, equivalent_radius, frame_maps
from scattertag.simulate.tilt import detector_xy as tilt_xy

#: Counts are clipped here (24-bit counters).
COUNT_LIMIT = 2**24 - 1
#: Radial bin width (pixels) of the 1-D profiles; finer than any ring.
RADIAL_STEP = 0.25
#: Number of azimuthal bins of the angular tables (0.18 degree each).
CHI_BINS = 2048
#: A pixel counts as observed (for visibility) if valid and at least this transparent.
OBSERVED_TRANSMISSION = 0.95
#: Cached maps that the detector alone fixes: a shifted experiment keeps them.
DETECTOR_CACHES = ("gain_map", "invalid_index")
#: Sample-detector distance (m, log-uniform) and photon energy (keV, uniform) of each setup.
SETUPS = {
    "saxs": {"distance": (0.8, 8.0), "energy": (6.0, 18.0)},
    "waxs": {"distance": (0.05, 0.5), "energy": (5.0, 30.0)},
}
#: Detectors at least this elongated (strips) sit far from the beam in WAXS, mostly.
STRIP_ASPECT, STRIP_FAR = 2.5, 0.7
#: Integrating detectors' readout per experiment: gain (ADU / photon, log-uniform),
#: offset (ADU) and read noise (ADU rms).
READOUT = {
    "ccd": {"gain": (0.5, 4.0), "offset": (10.0, 200.0), "noise": (1.0, 10.0)},
    "flat panel": {"gain": (0.3, 3.0), "offset": (100.0, 1500.0), "noise": (2.0, 15.0)},
    "image plate": {"gain": (0.5, 2.0), "offset": (0.0, 20.0), "noise": (0.5, 3.0)},
}


def seed_sequence(seed: int, *key: int) -> np.random.SeedSequence:
    """The SeedSequence of a (seed, ...) key: independent of process and call order."""
    return np.random.SeedSequence(int(seed), spawn_key=tuple(int(k) for k in key))


def choose(rng: np.random.Generator, table: dict) -> str:
    """One name of a {name: weight} table, drawn with normalised weights."""
    names = list(table)
    weights = np.array([table[n] for n in names], dtype=float)
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


def draw_beam_center(rng: np.random.Generator, placement: str) -> tuple[float, float]:
    """Beam centre (x, y) as fractions of the frame (cols, rows) for a placement.

    corner: within a quarter of the frame of a corner (as in the prior work); center;
    edge: near one edge; off: outside the frame by 2-35 % of its side; far: outside it
    by 35-150 % of its side.
    """
    u = rng.uniform
    if placement == "far":
        near, along = -u(0.35, 1.5), u(0.15, 0.85)
        near = near if rng.random() < 0.5 else 1 - near
        return (near, along) if rng.random() < 0.5 else (along, near)
    if placement == "corner":
        fx, fy = u(0.03, 0.25), u(0.03, 0.25)
        return (fx if rng.random() < 0.5 else 1 - fx, fy if rng.random() < 0.5 else 1 - fy)
    if placement == "center":
        return (u(0.35, 0.65), u(0.35, 0.65))
    near, along = (u(0.03, 0.2) if placement == "edge" else -u(0.02, 0.35)), u(0.15, 0.85)
    near = near if rng.random() < 0.5 else 1 - near
    return (near, along) if rng.random() < 0.5 else (along, near)


@dataclass(eq=False)
class Experiment:
    """Detector, geometry, mask and beamstop shared by all images of one experiment."""

    recipe: Recipe
    seed: int
    index: int
    geometry: Geometry
    mask: np.ndarray  # bool (rows, cols), True = valid
    beamstop: Beamstop
    gisaxs: dict | None = None  # incidence parameters of a grazing-incidence experiment
    params: dict = field(default_factory=dict)
    detector: DetectorModel | None = None  # None: the reference detector
    q_scale: float = 1.0  # the frame's q extent / the reference one; sample q ranges scale so
    extent: int | None = None  # the detector's longer side in frame pixels (None: frame's)
    bad_index: np.ndarray | None = None  # flat indices of bad (dead) pixels, within ~mask
    readout: dict | None = None  # gain, offset, noise of an integrating detector
    shadow: Beamstop | None = None  # a sample-environment shadow (no tag)
    sensitivity: dict | None = None  # flat-field parameters (detector.sensitivity_params)
    tilt: Tilt | None = None  # a WAXS detector turned out of the plane normal to the beam

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the frame."""
        return self.geometry.shape

    @property
    def incidence(self) -> dict:
        """The grazing-incidence parameters (``gisaxs``); an error for a transmission experiment."""
        if self.gisaxs is None:
            raise ValueError(f"experiment {self.index} is not a grazing-incidence experiment")
        return self.gisaxs

    @property
    def scale(self) -> float:
        """Detector side / 1000 frame pixels: lengths in reference pixels are multiplied by this."""
        return (self.extent or max(self.shape)) / REFERENCE_SIZE

    @property
    def intensity_scale(self) -> float:
        """Pixel area / reference pixel area: counts per pixel scale with solid angle."""
        return 1.0 / self.scale**2

    def shifted(self, dx: float, dy: float, distance: float = 1.0, **stop: float) -> Experiment:
        """The same experiment with the beam centre moved by (dx, dy) pixels, and with it
        what the simulator centres on the beam (the beamstop, re-shaded with its parameters,
        ``stop`` replacing some; the pattern's maps; the GISAXS horizon); the detector stays
        (mask, bad pixels, readout, flat field, tilt, the sample environment's shadow).
        ``distance`` multiplies the sample-detector distance (the sample's q ranges stay)."""
        cx, cy = self.geometry.beam_center
        geometry = replace(
            self.geometry,
            beam_center=(cx + dx, cy + dy),
            distance=self.geometry.distance * distance,
        )
        beamstop = self.beamstop.moved(geometry, **stop)
        params = {**self.params, "beamstop": beamstop.params}
        moved = replace(self, geometry=geometry, beamstop=beamstop, params=params)
        for name in DETECTOR_CACHES:  # built once: they do not follow the beam
            if name in self.__dict__:
                moved.__dict__[name] = self.__dict__[name]
        return moved

    # ---- where each pixel looks: the geometry's maps, or a tilted detector's ---------
    @cached_property
    def _tilted(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        assert self.tilt is not None
        two_theta, chi, solid = frame_maps(self.geometry, self.tilt)
        return equivalent_radius(self.geometry, two_theta).astype(np.float32), chi, solid

    @property
    def r_map(self) -> np.ndarray:
        """(rows, cols) float32 radius (pixels) of each pixel's scattering angle: its distance
        from the beam centre, or on a tilted detector d tan(2 theta) / s (tilt.py)."""
        return self.geometry.r_map if self.tilt is None else self._tilted[0]

    @cached_property
    def chi_map(self) -> np.ndarray:
        """(rows, cols) float32 azimuth chi (radians) of each pixel's scattering direction."""
        if self.tilt is None:
            return self.geometry.chi_map
        return self._tilted[1].astype(np.float32)

    @cached_property
    def q_map(self) -> np.ndarray:
        """(rows, cols) float32 q (1/A) of each pixel."""
        if self.tilt is None:
            return self.geometry.q_map
        q = self.geometry.q_of_radius(self.r_map.astype(np.float64))
        return np.asarray(q, dtype=np.float32)

    def detector_xy(self, dx: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Detector point (x, y), pixels, of the scattering direction that an untilted
        detector at the same distance sees at offset (dx, dy) pixels from the beam centre
        (the same point when untilted; NaN where it misses a tilted detector)."""
        cx, cy = self.geometry.beam_center
        if self.tilt is None:
            return cx + dx, cy + dy
        return tilt_xy(self.geometry, self.tilt, np.hypot(dx, dy), np.arctan2(dy, dx))

    # ---- cached index maps ----------------------------------------------------------
    @cached_property
    def rbin(self) -> np.ndarray:
        """(rows*cols,) int32 radial bin of each pixel, r = rbin * RADIAL_STEP."""
        return np.rint(self.r_map.ravel() / RADIAL_STEP).astype(np.int32)

    @cached_property
    def r_grid(self) -> np.ndarray:
        """(n_bins,) radius (pixels) of each radial bin."""
        return np.arange(int(self.rbin.max()) + 2) * RADIAL_STEP

    @cached_property
    def q_grid(self) -> np.ndarray:
        """(n_bins,) q (1/A) of each radial bin."""
        return np.asarray(self.geometry.q_of_radius(self.r_grid), dtype=np.float64)

    @cached_property
    def chibin(self) -> np.ndarray:
        """(rows*cols,) int16 azimuthal bin of each pixel."""
        chi = self.chi_map.ravel().astype(np.float64)
        return (
            np.floor((chi + np.pi) / (2 * np.pi) * CHI_BINS).astype(np.int32) % CHI_BINS
        ).astype(np.int16)

    @cached_property
    def chi_grid(self) -> np.ndarray:
        """(CHI_BINS,) azimuth (rad) at the centre of each chi bin."""
        return -np.pi + (np.arange(CHI_BINS) + 0.5) * (2 * np.pi / CHI_BINS)

    @cached_property
    def _by_radius(self) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(self.rbin, kind="stable").astype(np.int32)
        return order, self.rbin[order]

    def annulus(self, r_lo: float, r_hi: float) -> tuple[np.ndarray, np.ndarray]:
        """Flat indices and radial bins of the pixels with r_lo <= r <= r_hi (pixels)."""
        order, sorted_bins = self._by_radius
        lo = np.searchsorted(sorted_bins, int(np.ceil(max(r_lo, 0.0) / RADIAL_STEP)), "left")
        hi = np.searchsorted(sorted_bins, int(np.floor(r_hi / RADIAL_STEP)), "right")
        return order[lo:hi], sorted_bins[lo:hi]

    @cached_property
    def observed(self) -> np.ndarray:
        """(rows*cols,) bool: valid, not behind the beamstop and (GISAXS) above the horizon."""
        seen = self.mask.ravel().copy()
        for stop in (self.beamstop, self.shadow):
            if stop is not None:
                seen[stop.index[stop.transmission < OBSERVED_TRANSMISSION]] = False
        if self.gisaxs is not None:
            seen &= gisaxs.above_horizon(self.geometry, self.gisaxs).ravel()
        return seen

    @cached_property
    def observed_bins(self) -> np.ndarray:
        """(rows*cols,) radial bin of observed pixels, n_bins for the others (a dump bin)."""
        return np.where(self.observed, self.rbin, len(self.r_grid)).astype(np.int32)

    @cached_property
    def observed_per_bin(self) -> np.ndarray:
        """(n_bins,) number of observed pixels in each radial bin."""
        return np.bincount(self.observed_bins, minlength=len(self.r_grid) + 1)[:-1].astype(
            np.float64
        )

    @property
    def count_limit(self) -> int:
        """Largest count a frame pixel holds: COUNT_LIMIT (2^24 - 1) for the reference detector;
        a photon counter's limit x f^2 (a frame pixel sums f x f native counters; at most
        COUNT_LIMIT); an integrating detector's ADC limit (it bins charge before reading)."""
        if self.detector is None:
            return COUNT_LIMIT
        if not self.detector.counting:
            return self.detector.limit
        factor = float(self.params["detector"]["factor"])
        return int(min(max(self.detector.limit * factor**2, 1.0), COUNT_LIMIT))

    @cached_property
    def obliquity(self) -> np.ndarray | None:
        """(rows*cols,) solid angle x polarisation of each pixel relative to the beam's own,
        cos^3(2 theta) x [1 + cos^2(2 theta) - p sin^2(2 theta) cos(2 chi)] / 2 (pyFAI's
        polarisation factor, p the degree of horizontal polarisation: about 0.95 at a
        synchrotron, 0 for a lab source; a tilted detector's solid angle is tilt.py's);
        None for the reference detector (small angles)."""
        if self.detector is None:
            return None
        p = self.params.get("polarization", 0.0)
        r = self.r_map.ravel().astype(np.float64) * self.geometry.pixel_size
        cos2 = self.geometry.distance / np.hypot(r, self.geometry.distance)  # cos(2 theta)
        chi = self.chi_map.ravel().astype(np.float64)
        polarisation = 0.5 * (1 + cos2**2 - p * (1 - cos2**2) * np.cos(2 * chi))
        solid = cos2**3 if self.tilt is None else self._tilted[2].ravel()
        return solid * polarisation

    @cached_property
    def obliquity_radial(self) -> np.ndarray:
        """(n_bins,) mean obliquity of the observed pixels of each radial bin (1 where none)."""
        assert self.obliquity is not None
        mean = self.radial_mean(self.obliquity)
        return np.where(self.observed_per_bin > 0, mean, 1.0)

    @cached_property
    def gain_map(self) -> np.ndarray | None:
        """(rows*cols,) relative sensitivity of each pixel, or None (a perfect flat field)."""
        if self.sensitivity is None:
            return None
        module = None
        if self.detector is not None and self.detector.gap != (0, 0):
            fit = self.params["detector"]
            factor = fit["factor"]
            period = [(m + g) / factor for m, g in zip(self.detector.module, self.detector.gap)]
            module = (period[0], period[1], fit["offset"][0], fit["offset"][1])
        return sensitivity_map(self.shape, self.sensitivity, module)

    @cached_property
    def invalid_index(self) -> np.ndarray:
        """Flat indices of masked (invalid) pixels."""
        return np.flatnonzero(~self.mask.ravel())

    def radial_mean(self, image: np.ndarray) -> np.ndarray:
        """(n_bins,) mean of a flat image over the observed pixels of each radial bin (0: none)."""
        sums = np.bincount(self.observed_bins, weights=image, minlength=len(self.r_grid) + 1)[:-1]
        return sums / np.maximum(self.observed_per_bin, 1.0)

    def prepare(self) -> Experiment:
        """Build every cached map now (they are otherwise built on first use)."""
        _ = (
            self.q_map,
            self.q_grid,
            self.chi_grid,
            self.chibin,
            self._by_radius,
            self.observed_per_bin,
            self.invalid_index,
        )
        return self

    def to_dict(self) -> dict:
        """JSON-serialisable description (geometry, beamstop, mask and GISAXS parameters)."""
        return {
            "seed": self.seed,
            "index": self.index,
            "geometry": self.geometry.to_dict(),
            **self.params,
        }


def draw_experiment(recipe: Recipe, seed: int, experiment_index: int) -> Experiment:
    """The experiment fixed by (recipe, seed, experiment_index); the same in any process.

    Every draw is made in fractions of the frame or in reference pixels, so one seed gives
    the same experiment (in q) at every frame size.
    """
    rng = np.random.default_rng(seed_sequence(seed, 0, experiment_index, 0))
    if recipe.detectors == "reference":
        return _draw_reference(recipe, seed, experiment_index, rng)
    table = recipe.detectors if isinstance(recipe.detectors, dict) else dict.fromkeys(CATALOGUE, 1)
    name = choose(rng, table)
    if name == "reference":
        return _draw_reference(recipe, seed, experiment_index, rng)
    return _draw_catalogue(recipe, seed, experiment_index, rng, CATALOGUE[name])


def _draw_reference(
    recipe: Recipe, seed: int, experiment_index: int, rng: np.random.Generator
) -> Experiment:
    """An experiment on the reference detector (the first version's single detector)."""
    rows, cols = recipe.shape
    is_gisaxs = bool(rng.random() < float(recipe.gisaxs_fraction or 0.0))
    if is_gisaxs:
        placement = "gisaxs"
        fx, fy = rng.uniform(0.3, 0.7), rng.uniform(0.78, 0.95)
    else:
        placement = choose(rng, recipe.placements)
        fx, fy = draw_beam_center(rng, placement)
    geometry = Geometry(
        shape=(rows, cols),
        beam_center=(fx * cols - 0.5, fy * rows - 0.5),
        pixel_size=recipe.pixel_size_at_shape,
        distance=recipe.distance,
        energy=recipe.energy,
    )
    # no beamstop can be seen when the beam misses the frame
    stop_kind = choose(rng, recipe.beamstops) if geometry.beam_on_frame else "none"
    scale = max(rows, cols) / REFERENCE_SIZE
    beamstop = draw_beamstop(geometry, stop_kind, rng, scale)
    incidence = gisaxs.draw_incidence(rng) if is_gisaxs else None
    with_gaps = bool(rng.random() < recipe.module_gap_fraction)
    # the mask has its own stream: its dead-pixel count depends on the frame size
    mask, mask_params = draw_mask(
        (rows, cols), np.random.default_rng(seed_sequence(seed, 0, experiment_index, 1)), with_gaps
    )
    params = {
        "placement": placement,
        "beamstop": beamstop.params,
        "mask": mask_params,
        "gisaxs": incidence,
    }
    exp = Experiment(
        recipe, int(seed), int(experiment_index), geometry, mask, beamstop, incidence, params
    )
    return _draw_environment(exp)


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A draw uniform in log between lo and hi."""
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def q_extent(geometry: Geometry, side: float) -> float:
    """q (1/A) at ``side`` pixels from the beam: how far in q a detector side reaches."""
    return float(geometry.q_of_radius(side))


def _draw_catalogue(
    recipe: Recipe, seed: int, index: int, rng: np.random.Generator, model: DetectorModel
) -> Experiment:
    """An experiment on a catalogue detector: setup, distance, energy, beam, beamstop, readout.

    Every draw is made in fractions of the detector, so one seed gives the same experiment
    (in q) at every frame size.
    """
    weights = {k: w for k, w in recipe.setups.items() if k in model.setups}
    setup = choose(rng, weights if sum(weights.values()) > 0 else dict.fromkeys(model.setups, 1))
    ranges = SETUPS[setup]
    distance = _loguniform(rng, *ranges["distance"])
    energy = float(rng.uniform(*ranges["energy"]))
    where = (float(rng.random()), float(rng.random()))
    is_gisaxs = bool(rng.random() < float(recipe.gisaxs_fraction or 0.0))
    if is_gisaxs:
        placement = "gisaxs"
        fx, fy = rng.uniform(0.3, 0.7), rng.uniform(0.78, 0.95)
    else:
        strip = max(model.shape) >= STRIP_ASPECT * min(model.shape)
        if setup == "waxs" and strip and rng.random() < STRIP_FAR:
            placement = "far"
        else:
            placement = choose(rng, recipe.placements)
        fx, fy = draw_beam_center(rng, placement)
        if placement == "far" and strip:  # off the long side by a fraction of the long side
            long_rows = model.shape[0] > model.shape[1]
            along, off = (fy, fx) if long_rows else (fx, fy)
            off = 0.5 + (off - 0.5) * max(model.shape) / min(model.shape)
            fx, fy = (off, along) if long_rows else (along, off)
    exp = catalogue_experiment(recipe, model, distance, energy, (float(fx), float(fy)), where)
    # synchrotron (horizontally polarised, degree 0.9-0.99) 85 %, laboratory source 15 %
    exp.params["polarization"] = float(rng.uniform(0.9, 0.99)) if rng.random() < 0.85 else 0.0
    stop_kind = choose(rng, recipe.beamstops) if exp.geometry.beam_on_frame else "none"
    exp.beamstop = draw_beamstop(exp.geometry, stop_kind, rng, exp.scale)
    exp.gisaxs = gisaxs.draw_incidence(rng) if is_gisaxs else None
    if not model.counting:
        r = READOUT[model.family]
        exp.readout = {
            "gain": _loguniform(rng, *r["gain"]),
            "offset": float(rng.uniform(*r["offset"])),
            "noise": float(rng.uniform(*r["noise"])),
        }
    dead = dead_pixels(exp.shape, np.random.default_rng(seed_sequence(seed, 0, index, 1)))
    exp.bad_index = np.unique(dead[exp.mask.ravel()[dead]])
    exp.mask.reshape(-1)[exp.bad_index] = False
    exp.seed, exp.index = int(seed), int(index)
    exp.params.update(
        placement=placement,
        setup=setup,
        readout=exp.readout,
        beamstop=exp.beamstop.params,
        mask={"dead_pixels": len(exp.bad_index), "valid_fraction": float(exp.mask.mean())},
        gisaxs=exp.gisaxs,
    )
    return _draw_environment(exp)


def _draw_environment(exp: Experiment) -> Experiment:
    """Add the experiment's sample-environment shadow, flat field and (WAXS) detector tilt,
    each with its recipe probability, from their own random stream (the first version's
    draws stay as they were)."""
    rng = np.random.default_rng(seed_sequence(exp.seed, 0, exp.index, 2))
    probability = exp.recipe.terms
    if rng.random() < probability["environment shadow"]:
        exp.shadow = draw_shadow(exp.geometry, rng, exp.scale)
        exp.params["shadow"] = exp.shadow.params
    if rng.random() < probability["sensitivity"]:
        exp.sensitivity = sensitivity_params(rng)
        exp.params["sensitivity"] = exp.sensitivity
    waxs = exp.params.get("setup") == "waxs" and exp.gisaxs is None
    if waxs and rng.random() < probability["detector tilt"]:
        exp.tilt = draw_tilt(exp.geometry, rng)
        if exp.tilt is not None:
            exp.params["tilt"] = exp.tilt.to_dict()
    return exp


def catalogue_experiment(
    recipe: Recipe,
    model: DetectorModel | str,
    distance: float,
    energy: float,
    beam: tuple[float, float],
    where: tuple[float, float] = (0.5, 0.5),
) -> Experiment:
    """An experiment on catalogue detector ``model`` with no beamstop, bad pixels or readout.

    ``distance`` (m), ``energy`` (keV); ``beam`` (x, y) in fractions of the detector
    (cols, rows), outside [0, 1] off it; ``where`` places the detector in the frame.
    The sample's q ranges scale with the q extent of the detector's longer side.
    """
    model = CATALOGUE[model] if isinstance(model, str) else model
    frame = recipe.shape
    fit = place(model, frame, where)
    rows, cols = fit.extent
    r0, c0 = fit.offset
    geometry = Geometry(
        shape=frame,
        beam_center=(c0 + beam[0] * cols - 0.5, r0 + beam[1] * rows - 0.5),
        pixel_size=model.pixel_size * fit.factor,
        distance=distance,
        energy=energy,
    )
    extent = max(rows, cols)
    reference = Geometry(
        (REFERENCE_SIZE, REFERENCE_SIZE),
        (0.0, 0.0),
        pixel_size=recipe.pixel_size,
        distance=recipe.distance,
        energy=recipe.energy,
    )
    q_scale = q_extent(geometry, extent) / q_extent(reference, REFERENCE_SIZE)
    params = {
        "detector": {
            "name": model.name,
            "family": model.family,
            "invalid": model.invalid,
            "native_shape": list(model.shape),
            "native_pixel_size": model.pixel_size,
            **fit.to_dict(),
        },
        "q_scale": q_scale,
    }
    return Experiment(
        recipe,
        0,
        0,
        geometry,
        ~detector_mask(model, frame, fit),
        Beamstop(None, {"kind": None}),
        None,
        params,
        detector=model,
        q_scale=q_scale,
        extent=extent,
        bad_index=np.zeros(0, dtype=np.int64),
    )

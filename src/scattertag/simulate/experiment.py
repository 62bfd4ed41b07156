"""An experiment: what stays fixed while the samples change.

:func:`draw_experiment` fixes the detector (geometry, module-gap mask), the beam centre and
the beamstop. The per-experiment index maps that make each image cheap (radial bin, chi
bin, pixels sorted by radius, observed pixels) are built once, on first use, and cached on
the :class:`Experiment`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from scattertag.geometry import Geometry
from scattertag.simulate import gisaxs
from scattertag.simulate.beamstops import Beamstop, draw_beamstop
from scattertag.simulate.detector import draw_mask
from scattertag.simulate.recipe import REFERENCE_SIZE, Recipe

#: Radial bin width (pixels) of the 1-D profiles; finer than any ring.
RADIAL_STEP = 0.25
#: Number of azimuthal bins of the angular tables (0.18 degree each).
CHI_BINS = 2048
#: A pixel counts as observed (for visibility) if valid and at least this transparent.
OBSERVED_TRANSMISSION = 0.95


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
    edge: near one edge; off: outside the frame by 2-35 % of its side.
    """
    u = rng.uniform
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

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the frame."""
        return self.geometry.shape

    @property
    def scale(self) -> float:
        """Frame side / 1000: lengths given in reference pixels are multiplied by this."""
        return max(self.shape) / REFERENCE_SIZE

    @property
    def intensity_scale(self) -> float:
        """Pixel area / reference pixel area: counts per pixel scale with solid angle."""
        return 1.0 / self.scale**2

    # ---- cached index maps ----------------------------------------------------------
    @cached_property
    def rbin(self) -> np.ndarray:
        """(rows*cols,) int32 radial bin of each pixel, r = rbin * RADIAL_STEP."""
        return np.rint(self.geometry.r_map.ravel() / RADIAL_STEP).astype(np.int32)

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
        chi = self.geometry.chi_map.ravel().astype(np.float64)
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
        seen[self.beamstop.index[self.beamstop.transmission < OBSERVED_TRANSMISSION]] = False
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

    @cached_property
    def invalid_index(self) -> np.ndarray:
        """Flat indices of masked (invalid) pixels."""
        return np.flatnonzero(~self.mask.ravel())

    def radial_mean(self, image: np.ndarray) -> np.ndarray:
        """(n_bins,) mean of a flat image over the observed pixels of each radial bin (0 if none)."""
        sums = np.bincount(self.observed_bins, weights=image, minlength=len(self.r_grid) + 1)[:-1]
        return sums / np.maximum(self.observed_per_bin, 1.0)

    def prepare(self) -> Experiment:
        """Build every cached map now (they are otherwise built on first use)."""
        _ = (
            self.geometry.q_map,
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
    rows, cols = recipe.shape
    is_gisaxs = bool(rng.random() < recipe.gisaxs_fraction)
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
    return Experiment(
        recipe, int(seed), int(experiment_index), geometry, mask, beamstop, incidence, params
    )

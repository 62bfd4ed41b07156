"""Scattering terms and the visibility rule that decides their tags.

A :class:`Term` is one additive contribution to the expected counts, stored in the
cheapest form that describes it: a 1-D radial profile (isotropic terms), or values on a
set of pixels (anisotropic rings on their annulus, spots and streaks on local patches,
full-frame anisotropic diffuse scattering).

Visibility (what the detector actually shows): over the *observed* pixels (valid, not
behind the beamstop), let T be the term and R what else lands there (scattering and
background; local defects aside).

* core: the observed pixels where T >= contrast x R, the rule's contrast; its area must
  reach the rule's ``min_area`` fraction of the frame;
* significance: the matched-filter signal-to-noise over the core, sqrt(sum T^2 / (T + R)),
  must reach the rule's snr (Poisson noise of everything that lands there).

A term hidden behind the beamstop, beyond the frame or lost in background fails. Radial
terms are judged on radial bins weighted by their number of observed pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Rule:
    """Thresholds of the visibility rule."""

    contrast: float  # core contrast T / (L - T)
    snr: float  # matched-filter signal-to-noise ratio
    min_area: float = 1e-4  # smallest core, as a fraction of the frame's pixels


#: Rings and peaks must stand 30 % above what lies under them; diffuse terms and spots
#: must dominate it.
RULES = {
    "peak": Rule(contrast=0.3, snr=8.0, min_area=3e-4),  # e.g. a 1-pixel arc of 300 pixels at 1000
    "diffuse": Rule(contrast=1.0, snr=8.0),
    "spots": Rule(contrast=1.0, snr=8.0, min_area=1e-5),  # sharp Bragg spots are small
}


@dataclass(eq=False)
class Term:
    """One contribution to the expected counts of an image.

    Exactly one of ``radial`` (a profile on the experiment's radial grid) or ``values``
    (on ``index``, or on the whole flat frame when ``index`` is None) is set.
    """

    key: str  # hierarchical key, e.g. "features.main.ring: anisotropic"
    role: str  # "sample", "background" or "defect"
    params: dict
    radial: np.ndarray | None = None
    index: np.ndarray | None = None
    values: np.ndarray | None = None
    unique: bool = True  # ``index`` holds no repeats (spots may overlap: False)
    rule: str = "peak"
    visibility: dict = field(default_factory=dict)

    def add_to(self, flat: np.ndarray) -> None:
        """Add this term's pixel values to a flat image (radial terms are added elsewhere)."""
        if self.values is None:
            return
        if self.index is None:
            flat += self.values
        elif self.unique:
            flat[self.index] += self.values
        else:
            np.add.at(flat, self.index, self.values)


def visibility(
    term: np.ndarray, total: np.ndarray, weight: np.ndarray, rule: Rule, frame_pixels: int
) -> dict:
    """The visibility rule on matching arrays (pixels, or radial bins weighted by pixel counts).

    ``total`` = T + R; ``weight`` is a bool array (observed pixels) or the number of
    observed pixels each radial bin stands for. Returns {"visible", "area", "snr",
    "contrast"} (contrast: the largest T / R over the core, 0 if the core is empty).
    """
    rest = total - term
    core = term >= rule.contrast * np.maximum(rest, 1e-12)
    core &= weight if weight.dtype == bool else weight > 0
    core &= term > 0
    t, r = term[core], np.maximum(rest[core], 1e-12)
    w = np.ones(len(t)) if weight.dtype == bool else weight[core]
    area = float(w.sum())
    snr = float(np.sqrt((w * t * t / (t + r)).sum()))
    contrast = float((t / r).max()) if len(t) else 0.0
    visible = area >= rule.min_area * frame_pixels and snr >= rule.snr
    return {
        "visible": bool(visible),
        "area": area,
        "snr": round(snr, 2),
        "contrast": round(contrast, 4),
    }

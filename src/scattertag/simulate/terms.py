"""Scattering terms and the visibility rule that decides their tags.

A :class:`Term` is one additive contribution to the expected counts, stored in the
cheapest form that describes it: a 1-D radial profile (isotropic terms), or values on a
set of pixels (anisotropic rings on their annulus, spots and streaks on local patches,
full-frame anisotropic diffuse scattering).

Visibility (what the detector actually shows): over the *observed* pixels (valid, not
behind the beamstop), let T be the term and L the total expected counts there.

* core: observed pixels where T >= half its observed maximum; its area must reach
  the rule's ``min_area`` fraction of the frame;
* contrast: sum_core T / sum_core (L - T) must reach the rule's contrast;
* significance: the matched-filter signal-to-noise sqrt(sum T^2 / L) must reach the
  rule's snr (Poisson noise of everything that lands there).

A term hidden behind the beamstop, beyond the frame or lost in background fails.
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


#: Rings and peaks must stand 30 % above what lies under them; diffuse terms must
#: dominate the rest somewhere they are seen.
RULES = {
    "peak": Rule(contrast=0.3, snr=8.0),
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


def visibility(term: np.ndarray, total: np.ndarray, weight: np.ndarray, rule: Rule, frame_pixels: int) -> dict:
    """The visibility rule on matching arrays (pixels, or radial bins weighted by pixel counts).

    Returns {"visible", "contrast", "snr", "area"}; ``weight`` is the number of observed
    pixels each element stands for (0 = unobserved).
    """
    seen = weight > 0
    if not seen.any() or term[seen].max() <= 0.0:
        return {"visible": False, "contrast": 0.0, "snr": 0.0, "area": 0.0}
    core = seen & (term >= 0.5 * term[seen].max())
    area = float(weight[core].sum())
    rest = np.maximum(total[core] - term[core], 1e-12)
    contrast = float((weight[core] * term[core]).sum() / (weight[core] * rest).sum())
    snr = float(np.sqrt((weight[seen] * term[seen] ** 2 / np.maximum(total[seen], 1e-12)).sum()))
    visible = area >= rule.min_area * frame_pixels and contrast >= rule.contrast and snr >= rule.snr
    return {"visible": bool(visible), "contrast": round(contrast, 4), "snr": round(snr, 2), "area": area}

"""One image: draw the terms, render expected counts, decide the tags, count photons.

Rendering, per image: isotropic terms are summed as 1-D radial profiles and looked up once
through the experiment's radial-bin map; anisotropic rings only on their annulus; spots,
streaks and zingers on local patches; the beamstop on its own pixels; Poisson counts are
drawn once at the end. Tags come from hierarchical keys set only for terms that pass the
visibility rule (terms.py), reduced by ``Vocabulary.tags_from_keys``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from scattertag.geometry import Geometry
from scattertag.simulate import gisaxs
from scattertag.simulate.artefacts import draw_artefacts, scale_terms
from scattertag.simulate.backgrounds import draw_backgrounds, draw_defects
from scattertag.simulate.beamstops import BEAMSTOP_TAGS
from scattertag.simulate.catalogue import REFERENCE_MODEL, DetectorModel
from scattertag.simulate.crystals import draw_crystal_terms
from scattertag.simulate.experiment import Experiment, choose, seed_sequence
from scattertag.simulate.scattering import (
    calibrant_params,
    calibrant_terms,
    direct_beam_params,
    direct_beam_terms,
    draw_sample_terms,
    loguniform,
)
from scattertag.simulate.terms import RULES, Term, visibility

#: Reference rules, in counts per reference pixel over the observed pixels.
STRONG_MAX, STRONG_MEAN, WEAK_MAX = 1000.0, 5.0, 10.0
HIGH_BACKGROUND_MAX, HIGH_BACKGROUND_MEAN = 1e4, 1e3
#: A beamstop shadow is visible if it hides at least this many counts per pixel on average,
#: over at least this fraction of the frame, with at least this signal-to-noise ratio.
BEAMSTOP_MIN_COUNTS, BEAMSTOP_MIN_AREA, BEAMSTOP_SNR = 0.5, 1e-4, 8.0


@dataclass(eq=False)
class Sample:
    """One simulated detector image with its tags and everything that caused them."""

    counts: np.ndarray  # uint32 (rows, cols)
    mask: np.ndarray  # bool (rows, cols), True = valid
    geometry: Geometry
    tags: list[str]
    labels: np.ndarray  # uint8 (len(vocabulary),)
    keys: dict  # hierarchical key -> value
    params: dict  # JSON-serialisable
    seed: int
    experiment_index: int
    image_index: int
    detector: DetectorModel = REFERENCE_MODEL
    bad_index: np.ndarray | None = None  # flat indices of bad pixels (among ~mask)

    def raw(self) -> np.ndarray:
        """The frame as the detector writes it (its dtype; invalid pixels marked its way:
        -1 gaps / -2 bad pixels on Pilatus, 2^32 - 1 on Eiger, nothing where a mask is used)."""
        bad = np.zeros(self.mask.shape, dtype=bool)
        if self.bad_index is not None:
            bad.reshape(-1)[self.bad_index] = True
        return self.detector.raw(self.counts, ~self.mask & ~bad, bad)


def _jsonable(x):
    """Plain Python (lists, floats, ints) for numpy scalars and arrays, recursively."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


def _draw_terms(exp: Experiment, rng: np.random.Generator, kind: str) -> list[Term]:
    """All terms of an image of ``kind``: sample, backgrounds, defects."""
    if kind == "dark":  # no beam: only what the detector makes by itself
        return [t for t in draw_defects(exp, rng) if t.role == "detector"]
    if kind == "sample":
        terms = draw_sample_terms(exp, rng)
    elif kind == "calibrant":
        terms = calibrant_terms(exp, calibrant_params(rng))
    else:
        terms = direct_beam_terms(exp, direct_beam_params(rng))
    return terms + draw_backgrounds(exp, rng) + draw_defects(exp, rng)


def _render(exp: Experiment, terms: list[Term], role: str) -> np.ndarray:
    """(rows*cols,) float64 expected counts of the terms of one role (radial sum looked up once)."""
    chosen = [t for t in terms if t.role == role]
    radial = [t.radial for t in chosen if t.radial is not None]
    flat = np.sum(radial, axis=0)[exp.rbin] if radial else np.zeros(exp.rbin.size)
    for t in chosen:
        t.add_to(flat)
    return flat


def _gisaxs_terms(exp: Experiment, yoneda: float, sample: np.ndarray) -> list[Term]:
    """Apply the film's shadow and Yoneda band to the sample image in place; Yoneda and horizon
    terms."""
    rows, cols = exp.shape
    p = {"yoneda": yoneda, **exp.incidence}
    shadow, band = gisaxs.vertical_factor(exp.geometry, exp.incidence, p["yoneda"])
    image = sample.reshape(rows, cols)
    in_band = np.flatnonzero(band > 0.05 * band.max())
    extra = (image[in_band] * (shadow * band)[in_band, None]).ravel()  # what the Yoneda band adds
    image *= (shadow * (1.0 + band))[:, None]
    horizon = float(gisaxs.row_at_exit_angle(exp.geometry, exp.incidence, 0.0))
    strip = np.arange(max(int(horizon - 0.03 * rows), 0), min(int(horizon), rows))
    terms = [
        Term(
            "features.gisaxs.yoneda",
            "sample",
            p,
            rule="diffuse",
            index=(in_band[:, None] * cols + np.arange(cols)[None, :]).ravel(),
            values=extra,
        )
    ]
    if len(strip):
        terms.append(
            Term(
                "features.gisaxs.horizon",
                "sample",
                {"row": horizon},
                rule="diffuse",
                index=(strip[:, None] * cols + np.arange(cols)[None, :]).ravel(),
                values=image[strip].ravel(),
            )
        )
    return terms


def _visible(exp: Experiment, term: Term, lam: np.ndarray, radial_total: np.ndarray) -> dict:
    """Run the visibility rule on one term against ``lam``, the scattering plus background
    (both times the experiment's obliquity factor, if any; radial terms its radial mean)."""
    rule = RULES[term.rule]
    factor = exp.obliquity
    if term.radial is not None:
        radial = term.radial if factor is None else term.radial * exp.obliquity_radial
        return visibility(radial, radial_total, exp.observed_per_bin, rule, lam.size)
    assert term.values is not None
    if term.index is None:
        values = term.values if factor is None else term.values * factor
        return visibility(values, lam, exp.observed, rule, lam.size)
    values = term.values if factor is None else term.values * factor[term.index]
    return visibility(values, lam[term.index], exp.observed[term.index], rule, lam.size)


def _shadow_visibility(exp: Experiment, unblocked: np.ndarray, transmission: np.ndarray) -> dict:
    """Is the beamstop's shadow visible? On valid pixels of the frame it must cover
    BEAMSTOP_MIN_AREA of it, hide BEAMSTOP_MIN_COUNTS per pixel on average and more than it
    lets through, and hide enough counts in all (sqrt(hidden) >= BEAMSTOP_SNR)."""
    shade = (transmission < 0.5) & exp.mask.ravel()[exp.beamstop.index]
    hidden = float((unblocked * (1.0 - transmission))[shade].sum())
    passed = float((unblocked * transmission)[shade].sum())
    area = int(shade.sum())
    mean = hidden / max(area, 1)
    visible = (
        area >= BEAMSTOP_MIN_AREA * exp.rbin.size
        and mean >= BEAMSTOP_MIN_COUNTS
        and hidden > passed
        and np.sqrt(hidden) >= BEAMSTOP_SNR
    )
    return {
        "visible": bool(visible),
        "area": area,
        "mean_hidden": round(mean, 4),
        "hidden_over_passed": round(hidden / max(passed, 1e-12), 2),
    }


#: Keys whose visible terms are ring-like peaks (counted for "Many rings").
RING_KEYS = ("features.main.ring", "features.lattice.ring", "features.calibrant.ring")
#: Keys of orders of one structure (>= 2 visible orders: "Higher orders").
ORDERED_KEYS = (
    "features.mesostructure.structure factor",
    "features.crystal.structure factor",
    "features.fibre.layer line",
)


def _keys_from_visible(terms: list[Term]) -> dict:
    """Hierarchical keys of the visible terms, with the derived lattice/ordering keys."""
    keys: dict = defaultdict(list)
    groups: dict = defaultdict(list)  # peaks of one lattice / calibrant / mesostructure
    rings = 0
    for t in terms:
        if not t.visibility.get("visible"):
            continue
        head = t.key.split(":")[0]
        keys[t.key].append({**t.params, **t.visibility})
        rings += head in RING_KEYS
        if head in RING_KEYS[:2] and t.params.get("style") in ("polycrystalline", "large grains"):
            keys[f"features.variations.{t.params['style']}"].append(t.params["grain_eta"])
        if head in RING_KEYS[1:] or head in ORDERED_KEYS:
            groups[t.key].append(t.params["order"])
    for key, orders in groups.items():
        orders = sorted(set(orders))
        detail = key.split(": ")[-1]
        if key.startswith("features.lattice"):
            keys[f"features.main.structure factor: {detail}"].append(orders)
            if len(orders) >= 2:  # the lattice is identified by its peak ratios
                keys[f"sample.lattice.{detail}"].append(orders)
        if len(orders) >= 2:
            keys[f"features.variations.higher orders: {len(orders) - 1}"].append(detail)
    if rings > 4:
        keys[f"features.variations.many rings: {rings}"].append(rings)
    return dict(keys)


def image_terms(exp: Experiment, image_index: int) -> tuple[list[Term], dict[str, Any]]:
    """The terms of image ``image_index`` and its settings (kind, dark, yoneda: ``expose``'s
    keywords), from the image's own random streams: the same draws for any beam centre."""
    rng = np.random.default_rng(seed_sequence(exp.seed, 1, exp.index, image_index, 0))
    kind = choose(rng, exp.recipe.kinds)
    terms = _draw_terms(exp, rng, kind)
    settings: dict[str, Any] = {
        "kind": kind,
        "dark": loguniform(rng, 1e-3, 0.05),
        "yoneda": loguniform(rng, 0.2, 3.0),
    }
    # terms added since the first version: their own stream, so its draws stay the same
    extra = np.random.default_rng(seed_sequence(exp.seed, 1, exp.index, image_index, 2))
    if kind == "sample":
        terms += draw_crystal_terms(exp, extra)
    artefacts, exposure = draw_artefacts(exp, extra, kind)
    terms += artefacts
    if exposure:
        scale_terms(terms, exposure["factor"])
        terms.append(Term(f"defects.exposure: {exposure['style']}", "detector", exposure))
    return terms, settings


def simulate_image(exp: Experiment, image_index: int) -> Sample:
    """The image fixed by (exp.seed, exp.index, image_index), bit for bit in any process."""
    terms, settings = image_terms(exp, image_index)
    noise = np.random.default_rng(seed_sequence(exp.seed, 1, exp.index, image_index, 1))
    return expose(exp, terms, noise, image_index=image_index, **settings)


def expected_counts(
    exp: Experiment,
    image_index: int,
    shift: tuple[float, float] = (0.0, 0.0),
    distance: float = 1.0,
    **stop: float,
) -> np.ndarray:
    """(rows, cols) float64 noise-free expected counts of image ``image_index`` in the frame's
    units (ADU = gain x photons + offset on an integrating detector; not clipped), with the
    beam centre moved by ``shift`` (dx, dy) pixels, the distance times ``distance`` and the
    beamstop's parameters ``stop`` replaced (``Experiment.shifted``): the same terms,
    parameters and draws."""
    same = shift == (0.0, 0.0) and distance == 1.0 and not stop
    moved = exp if same else exp.shifted(*shift, distance, **stop)
    terms, settings = image_terms(moved, image_index)
    lam = render(moved, terms, **settings).lam
    if exp.readout is not None:
        lam = lam * exp.readout["gain"] + exp.readout["offset"]
    return lam.reshape(exp.shape)


@dataclass(eq=False)
class Rendered:
    """An image before its counts are drawn (:func:`render`)."""

    lam: np.ndarray  # (rows*cols,) float64 expected photons of each pixel
    terms: list[Term]  # the image's terms (GISAXS ones added), their visibility judged
    keys: dict  # the beamstop's key where its shadow is visible
    stats: dict  # the sample's and background's peak and mean, the shadow's visibility


def render(
    exp: Experiment,
    terms: list[Term],
    kind: str = "sample",
    dark: float = 0.01,
    yoneda: float = 1.0,
) -> Rendered:
    """Expected photons of ``terms`` on the experiment's detector, their visibility judged.

    ``kind`` is the image kind ("direct beam" moves the beamstop out), ``dark`` the dark
    counts per pixel, ``yoneda`` the Yoneda-band strength of a GISAXS experiment.
    """
    obs = exp.observed
    sample = _render(exp, terms, "sample")
    if exp.obliquity is not None:  # solid angle and polarisation of each pixel
        sample *= exp.obliquity
    if exp.gisaxs is not None and kind == "sample":
        terms = terms + _gisaxs_terms(exp, yoneda, sample)
    background = _render(exp, terms, "background")
    if exp.obliquity is not None:
        background *= exp.obliquity
    n_seen = max(int(np.count_nonzero(obs)), 1)
    per_ref = 1.0 / exp.intensity_scale
    stats: dict[str, Any] = {
        "sample_max": float(sample.max(where=obs, initial=0.0)) * per_ref,
        "sample_mean": float(sample.sum(where=obs)) / n_seen * per_ref,
        "background_max": float(background.max(where=obs, initial=0.0)) * per_ref,
        "background_mean": float(background.sum(where=obs)) / n_seen * per_ref,
    }
    lam = sample
    lam += background
    # visibility is judged on scattering + background; local defects come after
    radial_total = exp.radial_mean(lam)
    for t in terms:
        if t.role == "sample":
            t.visibility = _visible(exp, t, lam, radial_total)
    for t in terms:
        if t.role == "defect":
            t.add_to(lam)
    stop = (
        exp.beamstop if kind != "direct beam" else None
    )  # the beamstop is moved out for the direct beam
    keys: dict = {}
    if stop is not None and stop.kind is not None:
        unblocked = lam[stop.index]
        lam[stop.index] = unblocked * stop.transmission
        vis = _shadow_visibility(exp, unblocked, stop.transmission)
        stats["beamstop"] = vis
        if vis["visible"]:
            keys[f"experiment.beamstop.{BEAMSTOP_TAGS[stop.kind].lower()}"] = stop.params
    if exp.shadow is not None:  # the sample environment's shadow: no tag
        lam[exp.shadow.index] *= exp.shadow.transmission
    if exp.gain_map is not None:  # the detector's flat field
        lam *= exp.gain_map
    lam += dark
    for t in terms:
        if t.role == "detector":
            t.add_to(lam)
    return Rendered(lam, terms, keys, stats)


def expose(
    exp: Experiment,
    terms: list[Term],
    noise: np.random.Generator,
    kind: str = "sample",
    dark: float = 0.01,
    yoneda: float = 1.0,
    image_index: int = 0,
) -> Sample:
    """Render ``terms`` on the experiment's detector, tag what is visible, draw Poisson counts.

    ``kind``, ``dark`` and ``yoneda`` as in :func:`render`.
    """
    vocabulary = exp.recipe.vocabulary
    assert vocabulary is not None  # Recipe.__post_init__ sets it
    rendered = render(exp, terms, kind, dark, yoneda)
    lam, terms, keys, stats = rendered.lam, rendered.terms, rendered.keys, rendered.stats
    readout = exp.readout
    limit = exp.count_limit
    photon_limit = limit if readout is None else (limit - readout["offset"]) / readout["gain"]

    keys.update(_keys_from_visible(terms))
    if not exp.geometry.beam_on_frame:
        keys["experiment.beam off image"] = list(exp.geometry.beam_center)
    if stats["sample_max"] < max(WEAK_MAX, stats["background_mean"]):
        keys["sample.weak scattering"] = {k: stats[k] for k in ("sample_max", "background_mean")}
    elif stats["sample_max"] > STRONG_MAX or stats["sample_mean"] > STRONG_MEAN:
        keys["sample.strong scattering"] = {k: stats[k] for k in ("sample_max", "sample_mean")}
    if (
        stats["background_max"] > HIGH_BACKGROUND_MAX
        or stats["background_mean"] > HIGH_BACKGROUND_MEAN
    ):
        keys["background.high background"] = {
            k: stats[k] for k in ("background_max", "background_mean")
        }
    for t in terms:
        if t.role in ("defect", "detector"):
            keys[t.key] = t.params
    if float(lam.max(where=exp.mask.ravel(), initial=0.0)) >= photon_limit:
        keys["defects.saturation: clipped"] = limit

    counts = noise.poisson(lam)
    if readout is not None:  # integrating detector: ADU = gain x photons + offset + read noise
        adu = counts * readout["gain"] + readout["offset"]
        adu += noise.normal(0.0, readout["noise"], adu.shape)
        counts = np.rint(np.clip(adu, 0.0, limit)).astype(np.int64)
    np.minimum(counts, limit, out=counts)
    counts = counts.astype(np.uint32)
    counts[exp.invalid_index] = 0
    tags = vocabulary.tags_from_keys(keys)
    params = {
        "kind": kind,
        "dark": dark,
        "yoneda": yoneda if exp.gisaxs is not None else None,
        "stats": stats,
        "experiment": exp.to_dict(),
        "terms": [
            {"key": t.key, "role": t.role, "params": t.params, "visibility": t.visibility}
            for t in terms
        ],
    }
    return Sample(
        counts=counts.reshape(exp.shape),
        mask=exp.mask,
        geometry=exp.geometry,
        tags=tags,
        labels=vocabulary.encode(tags),
        keys=_jsonable(keys),
        params=_jsonable(params),
        seed=exp.seed,
        experiment_index=exp.index,
        image_index=int(image_index),
        detector=exp.detector or REFERENCE_MODEL,
        bad_index=exp.bad_index,
    )

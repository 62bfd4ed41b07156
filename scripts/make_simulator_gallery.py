"""Draw docs/simulator_effects.png: one simulated frame for each randomised effect.

For each effect the recipe turns it on (probability 1, or one detector, or one beamstop)
and experiments of one seed are scanned in order until an image shows it (its key is set
or its parameters match); the panel is captioned with the effect, the detector and setup,
and the image's tags. Every panel is an ordinary draw of the simulator.

    python scripts/make_simulator_gallery.py --size 512 --out docs/simulator_effects.png
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from scattertag.plotting import caption, draw_frame, montage_axes, save
from scattertag.simulate import Recipe, Sample, draw_experiment, simulate_image
from scattertag.simulate.experiment import Experiment

Check = Callable[[Experiment, Sample], bool]
ON = 1.0


def _key(prefix: str) -> Check:
    """The image has a key starting with ``prefix``."""
    return lambda exp, s: any(k.startswith(prefix) for k in s.keys)


def _sample(exp: Experiment, s: Sample) -> bool:
    """A sample image whose scattering shows (neither weak nor under a high background)."""
    return s.params["kind"] == "sample" and not {"Weak scattering", "High background"} & set(s.tags)


def _both(*checks: Check) -> Check:
    return lambda exp, s: all(check(exp, s) for check in checks)


def _stop(tag: str, area: float = 3e-3) -> Check:
    """The beamstop is tagged, its shadow covers at least ``area`` of the frame, and it lies
    in diffuse scattering that shows it."""
    return lambda exp, s: (
        tag in s.tags
        and "Diffuse low-q" in s.tags
        and s.params["stats"]["beamstop"]["area"] > area * s.counts.size
    )


def _kapton_in_view(exp: Experiment, s: Sample) -> bool:
    """The Kapton peak (q = 0.4 1/A) falls 10-60 % of the frame side from the beam."""
    g = exp.geometry
    radius = float(g.radius_of_q(0.4)) if g.q_max > 0.4 else 1e9
    strong = any(
        t["key"] == "background.kapton" and t["params"]["amplitude"] > 5 for t in s.params["terms"]
    )
    return strong and 0.1 < radius / max(g.shape) < 0.6


def _wide_ring(exp: Experiment, s: Sample) -> bool:
    """A visible isotropic ring 25-45 % of the frame side from the beam; tilt >= 20 degrees."""
    rings = [
        t["params"]["q0"]
        for t in s.params["terms"]
        if t["key"] == "features.main.ring: isotropic" and t["visibility"].get("visible")
    ]
    side = max(exp.shape)
    wide = any(0.25 < float(exp.geometry.radius_of_q(q)) / side < 0.45 for q in rings)
    return wide and exp.params["tilt"]["tilt_deg"] >= 20


def _param(path: tuple[str, ...], value: object) -> Check:
    """exp.params[path...] == value."""

    def check(exp: Experiment, s: Sample) -> bool:
        node: object = exp.params
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        return node == value

    return check


def _exposure(style: str, key: str) -> Check:
    return lambda exp, s: f"defects.exposure: {style}" in s.keys and _key(key)(exp, s)


def _quiet(exp: Experiment, s: Sample) -> bool:
    """A sample image with a constant background under 0.3 counts per reference pixel."""
    levels = [t["params"]["level"] for t in s.params["terms"] if t["key"] == "background.constant"]
    return s.params["kind"] == "sample" and levels[0] < 0.3 and exp.beamstop.kind is not None


#: No sample scattering at all (the artefacts alone).
NO_SAMPLE = dict.fromkeys(
    ["diffuse low-q", "form factor", "diffuse high-q", "ring", "halo", "lattice"]
    + ["mesostructure", "structured background", "windowed background", "powder"],
    0.0,
)
STOPS = {"linear": 0, "circular": 0, "wedge": 0, "none": 0, "rod": 0, "paddle": 0, "disk": 0}
#: title -> (recipe settings, check)
EFFECTS: dict[str, tuple[dict, Check]] = {
    "Pilatus 2M: module gaps": ({"detectors": {"Pilatus 2M": ON}}, _sample),
    "Eiger 16M: module gaps": ({"detectors": {"Eiger 16M": ON}}, _sample),
    "MarCCD 165: round, offset + read noise": ({"detectors": {"MarCCD 165 2x2": ON}}, _sample),
    "GE 41RT flat panel": ({"detectors": {"GE 41RT": ON}}, _both(_sample, _key("features"))),
    "Pilatus 300K-W strip, beam far off": (
        {"detectors": {"Pilatus 300K-W": ON}},
        _param(("placement",), "far"),
    ),
    "rod beamstop": ({"beamstops": {**STOPS, "rod": ON}}, _both(_sample, _stop("Linear beamstop"))),
    "paddle beamstop": (
        {"beamstops": {**STOPS, "paddle": ON}},
        _both(_sample, _stop("Linear beamstop", area=0.01)),
    ),
    "disk on an arm, semi-transparent": (
        {"beamstops": {**STOPS, "disk": ON}},
        _both(_stop("Circular Beamstop"), lambda exp, s: exp.beamstop.params["leak"] > 0.01),
    ),
    "environment shadow: edge": (
        {"terms": {"environment shadow": ON}},
        _both(_sample, _param(("shadow", "style"), "edge")),
    ),
    "environment shadow: aperture": (
        {"terms": {"environment shadow": ON}},
        _param(("shadow", "style"), "aperture"),
    ),
    "flat field: gradient, module gains": (
        {"terms": {"sensitivity": ON}, "detectors": {"Pilatus 6M": ON}},
        lambda exp, s: exp.params["sensitivity"]["module_sigma"] > 0.03,
    ),
    "air + Kapton window (no sample)": (
        {"terms": {**NO_SAMPLE, "air": ON, "kapton": ON}},
        _both(_quiet, _kapton_in_view),
    ),
    "fluorescence (no sample)": ({"terms": {**NO_SAMPLE, "fluorescence": ON}}, _quiet),
    "cosmic-ray tracks (CCD dark)": (
        {
            "terms": {"cosmic rays": ON},
            "detectors": {"Rayonix MX225 2x2": ON},
            "kinds": {"sample": 0, "calibrant": 0, "direct beam": 0},
        },
        _key("defects.cosmic"),
    ),
    "very weak exposure": ({"terms": {"exposure": ON}}, _exposure("weak", "sample.weak")),
    "very long exposure": (
        {"terms": {"exposure": ON}, "detectors": {"Pilatus 1M": ON}},
        _both(_exposure("long", "defects.saturation"), lambda e, s: "Strong scattering" in s.tags),
    ),
    "textured powder": ({"terms": {"powder": ON}}, _key("features.variations.polycrystalline")),
    "spotty powder (coarse grains)": (
        {"terms": {"powder": ON}},
        lambda exp, s: any(
            t["key"].startswith("features.lattice.ring")
            and t["params"].get("style") == "large grains"
            and t["visibility"].get("visible")
            for t in s.params["terms"]
        ),
    ),
    "single crystal over a halo": ({"terms": {"single crystal": ON}}, _key("features.crystal")),
    "fibre: arcs, layer lines": ({"terms": {"fibre": ON}}, _key("features.fibre.layer")),
    "grazing incidence": ({"gisaxs_fraction": ON}, _key("features.gisaxs.horizon")),
    "WAXS detector tilted 20-40 deg: conics": (
        {"terms": {"detector tilt": ON, "ring": ON}, "setups": {"waxs": ON}},
        _both(_sample, lambda exp, s: exp.tilt is not None and _wide_ring(exp, s)),
    ),
}


def find(size: int, seed: int, settings: dict, check: Check, scan: int) -> tuple[int, Sample]:
    """The first image (experiment e, image 0 or 1) of ``scan`` experiments passing ``check``."""
    recipe = Recipe(size=size, **settings)
    for e in range(scan):
        exp = draw_experiment(recipe, seed, e)
        for i in range(2):
            s = simulate_image(exp, i)
            if check(exp, s):
                return e, s
    raise RuntimeError(f"no image in {scan} experiments shows {settings}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scan", type=int, default=300, help="experiments to scan per effect")
    parser.add_argument("--out", type=Path, default=Path("docs/simulator_effects.png"))
    args = parser.parse_args()
    fig, axes = montage_axes(len(EFFECTS), columns=4)
    for ax, (title, (settings, check)) in zip(axes, EFFECTS.items()):
        e, s = find(args.size, args.seed, settings, check, args.scan)
        exp = s.params["experiment"]
        where = exp.get("detector", {}).get("name", "reference")
        head = f"{title}\n{where}, {exp.get('setup', '')} (exp {e})\n"
        draw_frame(ax, s.counts, s.mask, s.geometry.beam_center, title=head + caption(s.tags))
        print(f"{title}: experiment {e}, {s.tags}")
    print(f"wrote {save(fig, args.out, dpi=80)}")


if __name__ == "__main__":
    main()

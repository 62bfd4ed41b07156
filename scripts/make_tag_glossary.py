"""Regenerate the thumbnails of docs/tags.md: one simulated frame for each vocabulary tag.

    python scripts/make_tag_glossary.py                  # docs/tags/*.png, about a minute

Images (experiment e, image 0) of one seed are simulated in order. For each tag of
``DEFAULT_VOCABULARY`` the image kept carries it among as few other tags as the scan offers
(up to four tags in all count as few); among those, it shows the tag most clearly
(:func:`strength`), then has the fewest tags, then comes first, so the choice is the same on
every run. Each thumbnail is drawn with ``scattertag.plotting.draw_frame`` (log scale, masked
pixels grey, beam centre +, or x at the frame edge when the beam is off the frame).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from scattertag.plotting import caption, draw_frame, new_figure, save
from scattertag.simulate import Recipe, Sample, draw_experiment, simulate_image
from scattertag.tags import DEFAULT_VOCABULARY

#: Default output folder, relative to the repository root.
OUT = Path(__file__).resolve().parents[1] / "docs" / "tags"


def slug(tag: str) -> str:
    """File name stem of a tag's thumbnail: 'Diffuse low-q' -> 'diffuse-low-q'."""
    return tag.lower().replace(" ", "-")


#: Tags shown by several visible peaks: the strength is that of the n-th strongest peak.
PEAKS_NEEDED = {"BCC": 2, "FCC": 2, "Higher orders": 2, "Many rings": 5}


def _shows(term: dict, tag: str) -> bool:
    """Does a visible term of ``s.params['terms']`` show ``tag`` (alone or with others)?"""
    key, params = term["key"], term["params"]
    head = key.split(":")[0]
    if tag in ("Many rings", "Higher orders"):
        return head.endswith(".ring") or "structure factor" in head
    if tag in ("BCC", "FCC"):
        return head == "features.lattice.ring" and key.endswith(tag)
    if tag == "Structure factor":
        return head == "features.lattice.ring" or "structure factor" in head
    if tag == "Polycrystalline":
        return params.get("style") == "polycrystalline"
    return tag in DEFAULT_VOCABULARY.tags_from_keys([key])


def strength(s: Sample, tag: str) -> float:
    """How clearly ``s`` shows ``tag``: the matched-filter SNR of its terms (n-th strongest
    peak for PEAKS_NEEDED tags), the counts hidden per pixel for a beamstop, the mean
    background for High background; 0 for the tags of the whole frame."""
    stats = s.params["stats"]
    if tag.lower().endswith("beamstop"):
        return float(stats["beamstop"]["mean_hidden"])
    if tag == "High background":
        return float(stats["background_mean"])
    snr = sorted(
        (
            t["visibility"]["snr"]
            for t in s.params["terms"]
            if t["visibility"].get("visible") and _shows(t, tag)
        ),
        reverse=True,
    )
    n = PEAKS_NEEDED.get(tag, 1)
    return float(snr[n - 1]) if len(snr) >= n else 0.0


def pick_examples(recipe: Recipe, seed: int, scan: int) -> dict[str, Sample]:
    """For each tag, the clearest of the ``scan`` images with that tag and few others."""
    best: dict[str, tuple[tuple[int, float, int], Sample]] = {}
    for e in tqdm(range(scan), desc="simulate", unit="image"):
        s = simulate_image(draw_experiment(recipe, seed, e), 0)
        for tag in s.tags:
            rank = (max(len(s.tags), 4), -strength(s, tag), len(s.tags))
            if tag not in best or rank < best[tag][0]:
                best[tag] = (rank, s)
    missing = [t for t in recipe.vocabulary if t not in best]
    if missing:
        raise SystemExit(f"no image among the first {scan} carries {missing}; raise --scan")
    return {tag: best[tag][1] for tag in recipe.vocabulary}


def draw_thumbnail(tag: str, s: Sample, path: Path, inches: float, dpi: int) -> Path:
    """A small PNG of the sample, titled with the tag, its other tags and its origin."""
    fig = new_figure(figsize=(inches, inches * 1.2))
    ax = fig.add_subplot()
    others = [t for t in s.tags if t != tag]
    title = (
        f"{tag}\nalso: {caption(others, width=34) if others else '(nothing else)'}\n"
        f"seed {s.seed}, experiment {s.experiment_index}, image {s.image_index}"
    )
    draw_frame(ax, s.counts, s.mask, s.geometry.beam_center, title=title)
    return save(fig, path, dpi=dpi)


def main(argv: list[str] | None = None) -> int:
    """Simulate, pick one image per tag, write ``<out>/<slug>.png`` and print the choices."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=384, help="frame side (pixels)")
    parser.add_argument("--seed", type=int, default=0, help="simulator seed")
    parser.add_argument("--scan", type=int, default=600, help="images to search")
    parser.add_argument("--inches", type=float, default=2.4, help="thumbnail width")
    parser.add_argument("--dpi", type=int, default=90)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    recipe = Recipe(size=args.size, vocabulary=DEFAULT_VOCABULARY, detectors="reference")
    best = pick_examples(recipe, args.seed, args.scan)
    for tag in recipe.vocabulary:
        s = best[tag]
        path = draw_thumbnail(tag, s, args.out / f"{slug(tag)}.png", args.inches, args.dpi)
        print(f"{path.name}\texperiment {s.experiment_index}\t{'; '.join(s.tags)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

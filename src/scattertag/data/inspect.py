"""``scattertag inspect DIR``: counts, sizes, tag frequencies, a montage and checksum checks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scattertag import plotting
from scattertag.data.manifest import NUM_SHARDS, DatasetManifest
from scattertag.data.shards import open_shard, sha256
from scattertag.errors import UserError
from scattertag.features.views import ViewSpec
from scattertag.geometry import Geometry


@dataclass(frozen=True)
class Inspection:
    """What ``scattertag inspect`` found: a summary line, the tag table, the montage, problems."""

    summary: str
    table: str | None
    montage: Path | None
    problems: dict[int, str]


def inspect_dataset(root: Path, montage: Path | None = None, per_tag: int = 2) -> Inspection:
    """Summarise ``root``, draw the montage (default ``root/montage.png``) and verify checksums."""
    root = Path(root)
    if per_tag < 1:
        raise UserError(f"--per-tag must be >= 1, got {per_tag}")
    manifest = DatasetManifest.read(root)
    problems = verify_shards(root, manifest)
    sound = [k for k in range(NUM_SHARDS) if k not in problems]
    summary = (
        f"{root}: format {manifest.format_version}, seed {manifest.seed}, "
        f"{manifest.experiments} experiments x {manifest.images_per_experiment} images, "
        f"frames {manifest.image_shape}, input {manifest.input_shape}, "
        f"coeff {manifest.coeff_shape}, raw kept: {manifest.keep_raw}"
    )
    if not sound:
        return Inspection(summary, None, None, problems)
    table = tag_table(root, manifest, sound)
    png = draw_montage(root, manifest, sound, montage or root / "montage.png", per_tag)
    return Inspection(summary, table, png, problems)


def verify_shards(root: Path, manifest: DatasetManifest) -> dict[int, str]:
    """Shard index -> problem (not built, missing, SHA-256 mismatch); empty if all are sound."""
    problems = {}
    for k, entry in enumerate(manifest.shards):
        path = manifest.shard_path(root, k)
        if entry is None:
            problems[k] = f"{path}: not built yet (re-run the build to finish it)"
        elif not path.is_file():
            problems[k] = f"{path}: missing"
        elif sha256(path) != entry.sha256:
            problems[k] = (
                f"{path}: SHA-256 mismatch with {root / 'manifest.json'} (corrupt or modified)"
            )
    return problems


def tag_table(root: Path, manifest: DatasetManifest, done: list[int]) -> str:
    """Text table of shards ``done``: images, MB on disk and tag frequencies (stored labels)."""
    vocabulary = manifest.vocabulary
    columns = [f"{k:>6d}" for k in done]
    lines = [f"{'shard':<20s}" + "".join(columns) + f"{'all':>8s}"]
    counts = {}
    for k in done:
        with open_shard(manifest.shard_path(root, k)) as f:
            counts[k] = (f["labels"][:].sum(axis=0, dtype=np.int64), len(f["labels"]))
    sizes = {k: manifest.shard_path(root, k).stat().st_size / 1e6 for k in done}
    lines.append(
        f"{'images':<20s}"
        + "".join(f"{counts[k][1]:>6d}" for k in done)
        + f"{sum(c[1] for c in counts.values()):>8d}"
    )
    lines.append(
        f"{'MB on disk':<20s}"
        + "".join(f"{sizes[k]:>6.1f}" for k in done)
        + f"{sum(sizes.values()):>8.1f}"
    )
    for t, tag in enumerate(vocabulary):
        row = [counts[k][0][t] / max(counts[k][1], 1) for k in done]
        total = sum(counts[k][0][t] for k in done) / max(sum(c[1] for c in counts.values()), 1)
        lines.append(f"{tag[:19]:<20s}" + "".join(f"{v:>6.2f}" for v in row) + f"{total:>8.2f}")
    return "\n".join(lines)


def draw_montage(
    root: Path, manifest: DatasetManifest, done: list[int], path: Path, per_tag: int = 2
) -> Path:
    """PNG of the first ``per_tag`` images of each tag in shards ``done``.

    Draws the raw frame if kept, else the stored image view: the downsampled frame
    (detector space, beam centre marked) or the cake's first channel (azimuth down,
    log radius across).
    """
    vocabulary = manifest.vocabulary
    spec = ViewSpec.from_dict(manifest.view_spec)
    picks: list[tuple[str, int, int]] = []  # (tag, shard, row)
    for k in done:
        with open_shard(manifest.shard_path(root, k)) as f:
            labels = f["labels"][:]
        for t, tag in enumerate(vocabulary):
            have = sum(1 for p in picks if p[0] == tag)
            picks += [(tag, k, int(r)) for r in np.flatnonzero(labels[:, t])[: per_tag - have]]
    picks.sort(key=lambda p: vocabulary.index(p[0]))
    if not picks:
        raise UserError(f"{root}: no labelled images to draw")
    fig, axes = plotting.montage_axes(len(picks), columns=6, panel=2.4)
    for ax, (tag, k, row) in zip(axes, picks):
        with open_shard(manifest.shard_path(root, k)) as f:
            geometry = Geometry.from_dict(json.loads(f["geometry"][row]))
            tags = [t for t, on in zip(vocabulary, f["labels"][row]) if on]
            raw = (f["raw"][row], f["mask"][row]) if "raw" in f else None
            image = f["image"][row, 0]  # log-scaled: draw_frame's log1p keeps its order
            in_q = spec.image_space == "qcake" and f["image"][row, -1, 0, 0] == 1
        title = f"[{tag}] shard {k} #{row}" + (" in q" if in_q else "") + "\n"
        title += plotting.caption(tags, width=34)
        if raw is not None:
            plotting.draw_frame(ax, *raw, geometry.beam_center, title=title)
        elif spec.is_cake:
            side = max(geometry.shape)
            r_min, r_max = spec.cake_r_min * side, spec.cake_r_max * side
            if in_q:  # the q cake's columns: log q over the fixed window
                r_min, r_max = spec.q_min, spec.q_max
            plotting.draw_cake(ax, image, r_min, r_max, title=title)
            ax.set(xticks=[], yticks=[], xlabel="", ylabel="")  # said once, below
        else:  # non-square frames are padded to a square input: no beam marker for them
            square = len(set(geometry.shape)) == 1
            beam = geometry.resized(image.shape).beam_center if square else None
            plotting.draw_frame(ax, image, None, beam, title=title)
    if spec.is_cake and not manifest.keep_raw:
        across = "log radius (log q where 'in q')" if spec.image_space == "qcake" else "log radius"
        fig.supxlabel(f"cakes: {across} across, azimuth (-180 to 180 degrees) up", fontsize=8)
    return plotting.save(fig, path)

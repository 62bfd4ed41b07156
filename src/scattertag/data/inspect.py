"""``scattertag inspect DIR``: counts, sizes, tag frequencies, a montage and checksum checks."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from scattertag import plotting
from scattertag.data.manifest import NUM_SHARDS, read_manifest, shard_name
from scattertag.data.shards import open_shard, sha256
from scattertag.geometry import Geometry


def verify_shards(root: Path, manifest: dict) -> dict[int, str]:
    """Shard index -> problem (not built, missing, SHA-256 mismatch); empty if all are sound."""
    problems = {}
    for k, entry in enumerate(manifest["shards"]):
        path = root / shard_name(k)
        if entry is None:
            problems[k] = f"{path}: not built yet (re-run the build to finish it)"
        elif not path.is_file():
            problems[k] = f"{path}: missing"
        elif sha256(path) != entry["sha256"]:
            problems[k] = (
                f"{path}: SHA-256 mismatch with {root / 'manifest.json'} (corrupt or modified)"
            )
    return problems


def tag_table(root: Path, manifest: dict, done: list[int]) -> str:
    """Text table: images, MB on disk and tag frequencies (from the stored labels) of shards ``done``."""
    vocabulary = manifest["vocabulary"]
    columns = [f"{k:>6d}" for k in done]
    lines = [f"{'shard':<20s}" + "".join(columns) + f"{'all':>8s}"]
    counts = {}
    for k in done:
        with open_shard(root / shard_name(k)) as f:
            counts[k] = (f["labels"][:].sum(axis=0, dtype=np.int64), len(f["labels"]))
    sizes = {k: (root / shard_name(k)).stat().st_size / 1e6 for k in done}
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


def draw_montage(root: Path, manifest: dict, done: list[int], path: Path, per_tag: int = 2) -> Path:
    """PNG of the first ``per_tag`` images of each tag in shards ``done`` (raw frame if kept, else input)."""
    vocabulary = manifest["vocabulary"]
    picks = []  # (tag, shard, row)
    for k in done:
        with open_shard(root / shard_name(k)) as f:
            labels = f["labels"][:]
        for t, tag in enumerate(vocabulary):
            have = sum(1 for p in picks if p[0] == tag)
            picks += [(tag, k, int(r)) for r in np.flatnonzero(labels[:, t])[: per_tag - have]]
    picks.sort(key=lambda p: vocabulary.index(p[0]))
    if not picks:
        raise ValueError(f"{root}: no labelled images to draw")
    fig, axes = plotting.montage_axes(len(picks), columns=6, panel=2.4)
    for ax, (tag, k, row) in zip(axes, picks):
        with open_shard(root / shard_name(k)) as f:
            geometry = Geometry.from_dict(json.loads(f["geometry"][row]))
            tags = [t for t, on in zip(vocabulary, f["labels"][row]) if on]
            if "raw" in f:
                frame, mask = f["raw"][row], f["mask"][row]
                beam = geometry.beam_center
            else:  # the stored input is already log-scaled; draw_frame's log1p keeps its order
                frame, mask = f["image"][row, 0], None
                # non-square frames are padded to a square input: no beam marker for them
                beam = (
                    geometry.resized(frame.shape).beam_center
                    if len(set(geometry.shape)) == 1
                    else None
                )
        title = f"[{tag}] shard {k} #{row}\n" + plotting.caption(tags, width=34)
        plotting.draw_frame(ax, frame, mask, beam, title=title)
    return plotting.save(fig, path)


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``scattertag inspect``."""
    parser.add_argument(
        "root", type=Path, metavar="DIR", help="dataset directory (made by scattertag build)"
    )
    parser.add_argument(
        "--montage",
        type=Path,
        default=None,
        help="montage PNG of a few images per tag (default DIR/montage.png)",
    )
    parser.add_argument(
        "--per-tag", type=int, default=2, help="images per tag in the montage (default 2)"
    )


def run(args: argparse.Namespace) -> int:
    """Print the summary, draw the montage, verify checksums; exit 1 on any problem."""
    root = args.root
    try:
        manifest = read_manifest(root)
        if args.per_tag < 1:
            raise ValueError(f"--per-tag must be >= 1, got {args.per_tag}")
        problems = verify_shards(root, manifest)
        sound = [k for k in range(NUM_SHARDS) if k not in problems]
        print(
            f"{root}: format {manifest['format_version']}, seed {manifest['seed']}, "
            f"{manifest['experiments']} experiments x {manifest['images_per_experiment']} images, "
            f"frames {manifest.get('image_shape')}, input {manifest.get('input_shape')}, "
            f"coeff {manifest.get('coeff_shape')}, raw kept: {manifest['keep_raw']}"
        )
        if sound:
            print(tag_table(root, manifest, sound))
            png = draw_montage(
                root, manifest, sound, args.montage or root / "montage.png", args.per_tag
            )
            print(f"montage: {png}")
    except (ValueError, OSError) as exc:
        print(f"scattertag inspect: error: {exc}", file=sys.stderr)
        return 1
    if problems:
        print("checksums: FAILED\n  " + "\n  ".join(problems.values()), file=sys.stderr)
        return 1
    print(f"checksums: all {NUM_SHARDS} shards match the manifest")
    return 0

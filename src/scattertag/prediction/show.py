"""``scattertag show FILE --beam-center X Y``: one frame with its predicted tags, as a PNG.

Left: the false-colour log image (masked pixels grey, beam centre marked) titled with the
predicted tags. Right: every tag's probability, with the model card's threshold for it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from scattertag.prediction.cli import add_geometry_arguments, geometry_arguments


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``show`` arguments."""
    parser.add_argument("file", help="detector file; 'file.h5::/path' names an HDF5 dataset")
    add_geometry_arguments(parser)
    parser.add_argument(
        "--frame", type=int, default=0, help="frame of a multi-frame file (default: %(default)s)"
    )
    parser.add_argument("--model", help="model folder; default: the shipped tagger")
    parser.add_argument("--out", default="show.png", help="output PNG (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    """Draw the PNG; exit status 0, 1 if the file could not be tagged, 2 on bad arguments."""
    try:
        path = show(
            args.file, args.out, frame=args.frame, model=args.model, **geometry_arguments(args)
        )
    except (ValueError, FileNotFoundError) as exc:
        print(f"scattertag show: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # the file itself could not be tagged
        print(f"scattertag show: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


def show(
    file: str, out: str | Path = "show.png", *, frame: int = 0, model=None, **geometry
) -> Path:
    """Tag frame ``frame`` of ``file`` and draw it with its tags to ``out``; returns the PNG path.

    ``geometry``: beam_center, poni, mask, pixel_size_um, distance_m, energy_kev as for predict.
    RuntimeError if the file cannot be tagged (the message says why).
    """
    from scattertag import plotting
    from scattertag.io.masks import read_mask, valid_pixels
    from scattertag.io.readers import read_frames
    from scattertag.prediction.api import predict
    from scattertag.prediction.pipeline import Predictor

    predictor = model if isinstance(model, Predictor) else Predictor(model)
    row = predict([file], frame=frame, model=predictor, **geometry)[0]
    if row["error"]:
        raise RuntimeError(row["error"])
    counts = np.asarray(next(read_frames(file, frame)).counts)
    mask = geometry.get("mask")
    valid = valid_pixels(counts, None if mask is None else read_mask(mask))
    beam = _beam_center(geometry)

    fig = plotting.new_figure(figsize=(11, 5.2))
    ax_img, ax_bar = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.2, 1]})
    tags = [t for t in row["tags"].split(";") if t]
    plotting.draw_frame(
        ax_img,
        counts,
        valid,
        beam,
        title=f"{Path(file).name} [{frame}]\n{plotting.caption(tags, 60)}",
    )
    _draw_probabilities(
        ax_bar, predictor.vocabulary, [row[t] for t in predictor.vocabulary], predictor.thresholds
    )
    return plotting.save(fig, out)


def _beam_center(geometry: dict) -> tuple[float, float]:
    """The beam centre given directly or through a PONI file."""
    from scattertag.geometry import GeometryOptions

    options = GeometryOptions.from_user(geometry.get("beam_center"), geometry.get("poni"))
    return options.resolve((1, 1))[0].beam_center


def _draw_probabilities(
    ax, vocabulary: list[str], probs: list[float], thresholds: np.ndarray
) -> None:
    """Horizontal bars of tag probabilities (orange at or above threshold), threshold ticks."""
    y = np.arange(len(vocabulary))[::-1]
    on = np.asarray(probs) >= thresholds
    ax.barh(y, probs, color=np.where(on, "tab:orange", "tab:gray"))
    ax.scatter(thresholds, y, marker="|", s=120, color="black", label="threshold")
    for yi, p in zip(y, probs):
        ax.text(min(p, 0.82) + 0.02, yi, f"{p:.2f}", va="center", fontsize=7)
    ax.set_yticks(y, vocabulary, fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability")
    ax.legend(loc="lower right", fontsize=7)

"""One frame with its predicted tags, as a PNG (``scattertag show FILE --beam-center X Y``).

Left: the false-colour log image (masked pixels grey, beam centre marked) titled with the
predicted tags. Right: every tag's probability, with the model card's threshold for it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from scattertag.geometry import GeometryOptions


class NotTagged(RuntimeError):
    """The file could be read as arguments go but not tagged (the message says why)."""


def show(file: str, options: GeometryOptions, out: str | Path = "show.png", *, model=None) -> Path:
    """Tag one frame of ``file`` (``options.frame``, default 0) and draw it with its tags.

    ``options``: the frames' geometry and mask, as for predict. Returns the PNG path;
    :class:`NotTagged` if the file cannot be tagged (the message says why).
    """
    from scattertag import plotting
    from scattertag.io.masks import mask_valid, valid_pixels
    from scattertag.io.readers import read_frames
    from scattertag.prediction.api import predict
    from scattertag.prediction.pipeline import Predictor

    if options.frame is None:
        options = replace(options, frame=0)
    predictor = model if isinstance(model, Predictor) else Predictor(model)
    row = predict([file], options=options, model=predictor)[0]
    if row["error"]:
        raise NotTagged(row["error"])
    counts = np.asarray(next(read_frames(file, options.frame)).counts)
    valid = valid_pixels(counts, mask_valid(options.mask))  # type: ignore[arg-type]
    geometry, _ = options.resolve(counts.shape)
    counts, note = _as_tagged(counts, valid, predictor.view_spec.pedestal)

    fig = plotting.new_figure(figsize=(11, 5.2))
    ax_img, ax_bar = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.2, 1]})
    tags = [t for t in row["tags"].split(";") if t]
    plotting.draw_frame(
        ax_img,
        counts,
        valid,
        geometry.beam_center,
        title=f"{Path(file).name} [{options.frame}]{note}\n{plotting.caption(tags, 60)}",
    )
    _draw_probabilities(
        ax_bar, predictor.vocabulary, [row[t] for t in predictor.vocabulary], predictor.thresholds
    )
    return plotting.save(fig, out)


def _as_tagged(counts: np.ndarray, valid: np.ndarray, pedestal: str) -> tuple[np.ndarray, str]:
    """The counts the views were made of: an integrating detector's pedestal subtracted
    (features.pedestal, when the model's spec says "auto"), and a note for the title."""
    from scattertag.features.pedestal import remove_pedestal

    if pedestal != "auto":
        return counts, ""
    total = np.where(valid, counts, 0).astype(np.float32)
    level = remove_pedestal(total, valid)
    if level <= 0:
        return counts, ""
    return total, f" (pedestal {level:.4g} subtracted)"


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

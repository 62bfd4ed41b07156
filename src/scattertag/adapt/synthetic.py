"""Simulated frames written as a labelled file set, to measure adaptation where truth is known.

``write_labelled_set`` simulates experiments with any :class:`~scattertag.simulate.Recipe`
(for instance grazing incidence, which the shipped tagger never saw), writes each frame as
an int32 ``.npy`` file (invalid pixels -1, as a Pilatus marks its gaps) and a labels table
with the geometry columns, ``group`` = the experiment, and the tags of ``vocabulary``.
The result is read by ``scattertag evaluate --labels`` and ``scattertag finetune`` exactly
like a beamline's own files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from scattertag.io.files import write_text


def write_labelled_set(
    out: str | Path,
    recipe,
    seed: int,
    experiments: range | list[int],
    images_per_experiment: int,
    vocabulary: list[str],
    progress: bool = False,
) -> Path:
    """Simulate ``experiments`` x ``images_per_experiment`` frames into ``out``; the labels path."""
    from scattertag.simulate import draw_experiment, simulate_image

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = list(recipe.vocabulary)
    tags = [t for t in vocabulary if t in names]
    header = ["path", "beam_x", "beam_y", "pixel_size_um", "distance_m", "energy_kev", "group"]
    lines = ["\t".join(header + tags)]
    bar = tqdm(
        total=len(experiments) * images_per_experiment, desc="simulate", disable=not progress
    )
    for e in experiments:
        exp = draw_experiment(recipe, seed, e)
        for i in range(images_per_experiment):
            s = simulate_image(exp, i)
            counts = np.where(s.mask, np.minimum(s.counts, 2**31 - 1), -1).astype(np.int32)
            name = f"e{e:04d}_{i:03d}.npy"
            np.save(out / name, counts)
            g = s.geometry
            values = [
                name,
                f"{g.beam_center[0]:.3f}",
                f"{g.beam_center[1]:.3f}",
                f"{g.pixel_size * 1e6:.4f}",
                f"{g.distance:.4f}",
                f"{g.energy:.4f}",
                f"e{e}",
            ]
            values += [str(int(s.labels[names.index(t)])) for t in tags]
            lines.append("\t".join(values))
            bar.update()
    bar.close()
    return write_text(out / "labels.tsv", "\n".join(lines) + "\n")

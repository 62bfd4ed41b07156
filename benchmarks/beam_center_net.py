"""A learned beam-centre estimate: a small CNN on the frame's coarse log level (an
experiment; not part of the package: see docs/beam_center.md, "A learned estimate").

A simulated frame knows its centre, so a net trained on the simulator
(``train_beam_center_net.py``, simulation seeds >= 10, never the benchmark's nor real
frames) might propose one on or off the frame where the estimators of
:mod:`scattertag.beam.center` find nothing to fit (a corner or an edge centre behind a
wedge, a weak or featureless sample).

Input: the coarse level of :func:`scattertag.beam.pyramid.pyramid` (g = log(1 + block mean
counts), at most 128 blocks a side; longer strips are block-averaged to 128), standardised
over its valid blocks and placed in the middle of a CANVAS x CANVAS square with a second
channel, its validity; the margin (half the level's side on each side) holds centres off
the frame. Output: a heatmap over CELL x CELL blocks of the canvas (softmax over the
cells) and, per cell, the centre's offset from the cell's middle (cells). The estimate is
the most probable cell plus its offset; its spread, the root-mean-square distance of the
cells from it under the softmax (frame pixels), says how sure the net is.

The CNN (:class:`BeamCenterCNN`) is U-shaped: a 4 x 4 patch stem and four stride-2 stages
take the canvas to CANVAS / 64 a side, where a global mean (a linear map added back
everywhere) gives every cell the whole frame's context; three upsampling stages with skip
connections come back to CANVAS / CELL a side. About 430 k parameters, about 5 ms a frame
on one CPU thread. Weights: float16 safetensors (no code is executed when loading).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

#: Side of the net's square input (level blocks); the level sits in its middle.
CANVAS = 256
#: Largest side of the level given to the net (blocks).
LEVEL_SIDE = 128
#: Side of one heatmap cell (canvas blocks): the heatmap is CANVAS // CELL a side.
CELL = 8


@dataclass(frozen=True)
class NetInput:
    """The net's input for one frame and the map from canvas to frame coordinates.

    A canvas point (u, v) (u along columns, pixel i covering [i, i + 1)) is frame pixel
    (x, y) = (scale u + shift_x, scale v + shift_y).
    """

    image: np.ndarray  # (2, CANVAS, CANVAS) float32: standardised g, validity
    scale: float  # frame pixels per canvas block
    shift_x: float
    shift_y: float

    def to_frame(self, u: float, v: float) -> tuple[float, float]:
        """Canvas (u, v) -> frame (x, y) pixels."""
        return self.scale * u + self.shift_x, self.scale * v + self.shift_y

    def from_frame(self, x: float, y: float) -> tuple[float, float]:
        """Frame (x, y) pixels -> canvas (u, v)."""
        return (x - self.shift_x) / self.scale, (y - self.shift_y) / self.scale


def _pool(g: np.ndarray, ok: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(g, ok) averaged over k x k blocks, over valid entries (a block is valid if half is)."""
    rows, cols = g.shape[0] // k, g.shape[1] // k
    g, ok = g[: rows * k, : cols * k], ok[: rows * k, : cols * k]
    s = np.where(ok, g, 0.0).reshape(rows, k, cols, k).sum(axis=(1, 3))
    n = ok.reshape(rows, k, cols, k).sum(axis=(1, 3))
    keep = n >= 0.5 * k * k
    return np.where(keep, s / np.maximum(n, 1), 0.0), keep


def net_input(g: np.ndarray, ok: np.ndarray, b: int) -> NetInput:
    """The net's input from a level: g (R, C) log counts, ok (R, C) valid, b its block size
    in frame pixels (a level pixel (i, j) is centred on frame pixel (b j + (b - 1) / 2,
    b i + (b - 1) / 2))."""
    k = max(1, math.ceil(max(g.shape) / LEVEL_SIDE))
    if k > 1:
        g, ok = _pool(g, ok, k)
    rows, cols = g.shape
    image = np.zeros((2, CANVAS, CANVAS), np.float32)
    if ok.any():
        vals = g[ok]
        mid, spread = float(np.median(vals)), float(vals.std())
        top, left = (CANVAS - rows) // 2, (CANVAS - cols) // 2
        image[0, top : top + rows, left : left + cols] = np.where(
            ok, (g - mid) / max(spread, 1e-3), 0.0
        )
        image[1, top : top + rows, left : left + cols] = ok
    else:
        top, left = (CANVAS - rows) // 2, (CANVAS - cols) // 2
    # canvas u = left + j + 0.5 at the middle of pooled pixel j, which is level pixel
    # k j + (k - 1) / 2, frame pixel b (k j + (k - 1) / 2) + (b - 1) / 2 = s (j + 1 / 2) - 1 / 2
    # with s = b k: so x = s (u - left) - 1 / 2
    scale = float(b * k)
    shift_x = -scale * left - 0.5
    shift_y = -scale * top - 0.5
    return NetInput(image, scale, shift_x, shift_y)


def _block(cin: int, cout: int, stride: int = 1, k: int = 3) -> nn.Sequential:
    """Conv k x k (stride; 'same' padding for odd k, none for the patch stem), BN, ReLU."""
    pad = (k - 1) // 2 if k % 2 else 0
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, pad, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class BeamCenterCNN(nn.Module):
    """(N, 2, S, S) canvas (standardised log counts, validity) -> (N, 3, S / 8, S / 8):
    the heatmap's logits and the offsets (x, y) from each cell's middle, in cells."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _block(2, 24, stride=4, k=4)  # S / 4
        self.e1 = nn.Sequential(_block(24, 32, 2), _block(32, 32))  # S / 8
        self.e2 = nn.Sequential(_block(32, 48, 2), _block(48, 48))  # S / 16
        self.e3 = nn.Sequential(_block(48, 64, 2), _block(64, 64))  # S / 32
        self.e4 = nn.Sequential(_block(64, 96, 2), _block(96, 96))  # S / 64
        self.context = nn.Linear(96, 96)
        self.d3 = _block(96 + 64, 64)
        self.d2 = _block(64 + 48, 48)
        self.d1 = _block(48 + 32, 32)
        self.head = nn.Conv2d(32, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Heatmap logits and offsets from the cells' middles, (N, 3, S / 8, S / 8)."""
        up = nn.functional.interpolate
        e1 = self.e1(self.stem(x))
        e2 = self.e2(e1)
        e3 = self.e3(e2)
        e4 = self.e4(e3)
        e4 = e4 + self.context(e4.mean(dim=(2, 3)))[:, :, None, None]
        d = self.d3(torch.cat([up(e4, scale_factor=2.0), e3], 1))
        d = self.d2(torch.cat([up(d, scale_factor=2.0), e2], 1))
        d = self.d1(torch.cat([up(d, scale_factor=2.0), e1], 1))
        return self.head(d)


def load_model(path: Path) -> BeamCenterCNN:
    """The net in eval mode from float16 safetensors weights (no code executed)."""
    from safetensors.torch import load_file

    model = BeamCenterCNN()
    model.load_state_dict({k: v.float() for k, v in load_file(path).items()})
    return model.eval()


@dataclass(frozen=True)
class NetEstimate:
    """The net's centre (frame pixels), its spread (frame pixels) and the top cell's share."""

    x: float
    y: float
    spread: float
    peak: float


def decode(out: np.ndarray, inp: NetInput) -> NetEstimate:
    """The estimate from the net's output (3, H, W) for one frame."""
    logits = out[0].astype(np.float64)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    i, j = np.unravel_index(int(np.argmax(p)), p.shape)
    ox, oy = (float(o) for o in out[1:, i, j])
    u, v = CELL * (j + 0.5 + ox), CELL * (i + 0.5 + oy)
    cv, cu = np.mgrid[0 : p.shape[0], 0 : p.shape[1]]
    d2 = (CELL * (cu + 0.5) - u) ** 2 + (CELL * (cv + 0.5) - v) ** 2
    spread = inp.scale * math.sqrt(float(np.sum(p * d2)))
    x, y = inp.to_frame(u, v)
    return NetEstimate(float(x), float(y), spread, float(p[i, j]))


def estimate(model: BeamCenterCNN, g: np.ndarray, ok: np.ndarray, b: int) -> NetEstimate:
    """The net's beam centre for a level (g, ok, b as in :func:`net_input`)."""
    inp = net_input(g, ok, b)
    with torch.inference_mode():
        out = model(torch.from_numpy(inp.image[None]))[0].numpy()
    return decode(out, inp)

"""Coefficient-view trunk: a CNN over the Fourier-Bessel coefficient matrix.

The input is the (C, N+1, K) matrix of the features step: C channels (the layout of
``scattertag.features``), orders n = 0..N along rows, zeros k = 1..K along columns.
Order n is the n-fold angular content about the beam centre (n = 0 isotropic rings and
diffuse terms, n = 2, 4, ... anisotropy); zero k is a radial frequency, so a ring at
radius r0 shows as an oscillation along k, not as a peak at one k. Hence the layers:

1. two 3x3 convolutions mix channels and neighbouring orders and zeros (e.g. form
   magnitudes from real and imaginary parts);
2. one (1, K) convolution spans the whole zero axis of each order, a learned transform
   shared by all orders (it can learn the Hankel transform back to radius);
3. the per-order results are flattened (the order index keeps its meaning) and mapped
   to the feature vector by a fully connected layer.
"""

from __future__ import annotations

import torch
from torch import nn

from scattertag.models.backbones import conv_bn


class CoeffTrunk(nn.Module):
    """(B, C, N+1, K) Fourier-Bessel matrix -> (B, 8 * width) features."""

    def __init__(self, shape: tuple[int, int, int], width: int = 32) -> None:
        super().__init__()
        channels, orders, zeros = (int(s) for s in shape)
        if min(channels, orders, zeros) < 1:
            raise ValueError(f"coefficient shape (C, N+1, K) must be positive, got {tuple(shape)}")
        if not 4 <= width <= 256:
            raise ValueError(f"coefficient width must be in [4, 256], got {width}")
        self.shape = (channels, orders, zeros)
        self.norm = nn.BatchNorm2d(channels)
        self.local = nn.Sequential(conv_bn(channels, width, 3), conv_bn(width, 2 * width, 3))
        self.radial = nn.Sequential(
            nn.Conv2d(2 * width, 4 * width, kernel_size=(1, zeros), bias=False),
            nn.BatchNorm2d(4 * width),
            nn.ReLU(inplace=True),
        )
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(4 * width * orders, 8 * width, bias=False),
            nn.BatchNorm1d(8 * width),
            nn.ReLU(inplace=True),
        )
        self.out_features = 8 * width

    def forward(self, coeff: torch.Tensor) -> torch.Tensor:
        if tuple(coeff.shape[1:]) != self.shape:
            raise ValueError(
                f"coefficient input has shape {tuple(coeff.shape[1:])}, "
                f"the network expects {self.shape}"
            )
        return self.fc(self.radial(self.local(self.norm(coeff))))

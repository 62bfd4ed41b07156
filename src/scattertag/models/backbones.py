"""Image-view trunks: AlexNet-, VGG- and ResNet-shaped CNNs with global pooling.

Every trunk maps a log-scaled image view (B, C, H, W: frame or cake) to a feature vector
(B, out_features) and works at any input size S >= 64. Global pooling (mean and max
over the last feature map, concatenated) replaces the big fully connected layers of
the classic networks, so the weights stay a few MB: the mean answers "how much"
(diffuse scattering, background), the max answers "is there one" (a thin ring arc, a
Bragg spot).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """Convolution ('same' padding for odd kernels), batch norm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class GlobalPool(nn.Module):
    """(B, C, H, W) -> (B, 2C): spatial mean and spatial max, concatenated."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)


class Trunk(nn.Module):
    """A feature extractor: input batch norm, convolutional body, global pooling."""

    def __init__(self, body: nn.Module, channels: int, in_channels: int = 1) -> None:
        super().__init__()
        # normalising the input here keeps the network independent of the log scaling
        self.norm = nn.BatchNorm2d(in_channels)
        self.body = body
        self.pool = GlobalPool()
        self.out_features = 2 * channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.body(self.norm(x)))


def alexnet(width: int = 32, in_channels: int = 1) -> Trunk:
    """AlexNet shape (11x11 stride-4 stem, 5x5, three 3x3), batch norm; channels x width/64."""
    c = [round(width * f) for f in (1.5, 3, 6, 6, 4)]  # width=64 gives AlexNet's 96-192-384-384-256
    body = nn.Sequential(
        conv_bn(in_channels, c[0], 11, stride=4),
        nn.MaxPool2d(3, 2),
        conv_bn(c[0], c[1], 5),
        nn.MaxPool2d(3, 2),
        conv_bn(c[1], c[2], 3),
        conv_bn(c[2], c[3], 3),
        conv_bn(c[3], c[4], 3),
    )
    return Trunk(body, c[4], in_channels)


def vgg(width: int = 16, in_channels: int = 1) -> Trunk:
    """VGG shape: 3x3 convolution stacks (1, 1, 2, 2, 2 layers) each followed by 2x2 max pooling."""
    stages = [(1, width), (1, 2 * width), (2, 4 * width), (2, 8 * width), (2, 8 * width)]
    layers: list[nn.Module] = []
    c_in = in_channels
    for depth, c_out in stages:
        for _ in range(depth):
            layers.append(conv_bn(c_in, c_out, 3))
            c_in = c_out
        layers.append(nn.MaxPool2d(2))
    return Trunk(nn.Sequential(*layers), c_in, in_channels)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convolutions plus an identity (or 1x1 projected) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            conv_bn(c_in, c_out, 3, stride),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.shortcut = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.branch(x) + self.shortcut(x))


def resnet(width: int = 24, in_channels: int = 1, blocks: tuple[int, ...] = (1, 1, 1, 1)) -> Trunk:
    """ResNet shape: 7x7 stride-2 stem, max pool, four basic-block stages (w, 2w, 4w, 8w)."""
    layers: list[nn.Module] = [
        conv_bn(in_channels, width, 7, stride=2),
        nn.MaxPool2d(3, 2, padding=1),
    ]
    c_in = width
    for stage, count in enumerate(blocks):
        c_out = width * 2**stage
        for i in range(count):
            layers.append(BasicBlock(c_in, c_out, stride=2 if (i == 0 and stage > 0) else 1))
            c_in = c_out
    return Trunk(nn.Sequential(*layers), c_in, in_channels)


#: backbone name -> constructor(width, in_channels) of an image trunk.
BACKBONES: dict[str, Callable[..., Trunk]] = {"alexnet": alexnet, "vgg": vgg, "resnet": resnet}

#: default width of each backbone (chosen for speed on 2 CPU cores, see benchmarks/bench_train.py).
DEFAULT_WIDTH: dict[str, int] = {"alexnet": 32, "vgg": 16, "resnet": 24}


def image_trunk(backbone: str, width: int | None = None, in_channels: int = 1) -> Trunk:
    """The image trunk called ``backbone`` (one of BACKBONES) at ``width`` (None: its default)."""
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; allowed: {', '.join(BACKBONES)}")
    width = DEFAULT_WIDTH[backbone] if width is None else int(width)
    if not 4 <= width <= 256:
        raise ValueError(f"backbone width must be in [4, 256], got {width}")
    return BACKBONES[backbone](width=width, in_channels=in_channels)

"""Single-view taggers: image CNN and coefficient CNN, one logit per tag.

Every tagger takes both views, ``model(image (B,C,H,W), coeff (B,C,N+1,K)) -> (B, T)``
logits, and ignores the view it does not use, so evaluation and prediction treat all
models alike. ``features(image, coeff)`` gives the trunk output that the joint model fuses.
"""

from __future__ import annotations

import torch
from torch import nn

from scattertag.models.backbones import DEFAULT_WIDTH, image_trunk
from scattertag.models.coeff import CoeffTrunk


def tag_head(in_features: int, num_tags: int, dropout: float) -> nn.Sequential:
    """Dropout then one linear layer: features -> one logit per tag."""
    if num_tags < 1:
        raise ValueError(f"num_tags must be >= 1, got {num_tags}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, num_tags))


def head_layer(model: nn.Module) -> nn.Linear:
    """The last linear layer of a tagger's tag head (``model.head``): logits = W x + b."""
    layer = list(model.get_submodule("head").children())[-1]
    if not isinstance(layer, nn.Linear):
        raise TypeError(f"the tag head ends in {type(layer).__name__}, not a linear layer")
    return layer


class Tagger(nn.Module):
    """A trunk over one or both views followed by a tag head."""

    view: str = ""
    arch: dict  # the constructor's keyword arguments, as stored in the model card
    head: nn.Sequential  # dropout, then the linear layer giving one logit per tag

    def features(self, image: torch.Tensor, coeff: torch.Tensor) -> torch.Tensor:
        """(B, F) trunk features."""
        raise NotImplementedError

    def forward(self, image: torch.Tensor, coeff: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(image, coeff))


class ImageTagger(Tagger):
    """Image view: a backbone over the (B, C, H, W) image (frame or cake); ignores ``coeff``."""

    view = "image"

    def __init__(
        self,
        num_tags: int,
        backbone: str = "alexnet",
        width: int | None = None,
        dropout: float = 0.3,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        width = width or DEFAULT_WIDTH.get(backbone)
        self.trunk = image_trunk(backbone, width, in_channels)
        self.head = tag_head(self.trunk.out_features, num_tags, dropout)
        self.arch = {
            "num_tags": num_tags,
            "backbone": backbone,
            "width": width,
            "dropout": dropout,
            "in_channels": in_channels,
        }

    def features(self, image: torch.Tensor, coeff: torch.Tensor) -> torch.Tensor:
        return self.trunk(image)


class CoeffTagger(Tagger):
    """Coefficient view: a CNN over the (B, C, N+1, K) Fourier-Bessel matrix; ignores ``image``."""

    view = "coeff"

    def __init__(
        self,
        num_tags: int,
        coeff_shape: tuple[int, int, int],
        width: int = 32,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.trunk = CoeffTrunk(coeff_shape, width)
        self.head = tag_head(self.trunk.out_features, num_tags, dropout)
        self.arch = {
            "num_tags": num_tags,
            "coeff_shape": list(self.trunk.shape),
            "width": width,
            "dropout": dropout,
        }

    def features(self, image: torch.Tensor, coeff: torch.Tensor) -> torch.Tensor:
        return self.trunk(coeff)

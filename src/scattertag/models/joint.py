"""Joint double-view tagger: image trunk and coefficient trunk, fused features, one head.

Fine-tuning starts from two trained single-view taggers (:func:`joint_from_views`): the
trunks are copied and row t of the shared linear head is set to alpha_t times the image
head's row and (1 - alpha_t) times the coefficient head's, so before any fine-tuning the
joint logit of tag t is exactly alpha_t z_image + (1 - alpha_t) z_coeff (a per-tag
logit-blending ensemble; alpha = 1/2 is the plain average). Training picks alpha_t on the
validation split; fine-tuning then learns how to combine the two views' features.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from scattertag.models.backbones import DEFAULT_WIDTH, image_trunk
from scattertag.models.coeff import CoeffTrunk
from scattertag.models.taggers import CoeffTagger, ImageTagger, Tagger, head_layer, tag_head


class JointTagger(Tagger):
    """Both views: concatenated [image features, coefficient features] -> tag head."""

    view = "joint"

    def __init__(
        self,
        num_tags: int,
        coeff_shape: tuple[int, int, int],
        backbone: str = "alexnet",
        width: int | None = None,
        coeff_width: int = 32,
        dropout: float = 0.3,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        width = width or DEFAULT_WIDTH.get(backbone)
        self.image_trunk = image_trunk(backbone, width, in_channels)
        self.coeff_trunk = CoeffTrunk(coeff_shape, coeff_width)
        self.head = tag_head(
            self.image_trunk.out_features + self.coeff_trunk.out_features, num_tags, dropout
        )
        self.arch = {
            "num_tags": num_tags,
            "coeff_shape": list(self.coeff_trunk.shape),
            "backbone": backbone,
            "width": width,
            "coeff_width": coeff_width,
            "dropout": dropout,
            "in_channels": in_channels,
        }

    def features(self, image: torch.Tensor, coeff: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.image_trunk(image), self.coeff_trunk(coeff)], dim=1)


def joint_arch(image_arch: dict, coeff_arch: dict) -> dict:
    """JointTagger kwargs from the ``arch`` of an image tagger and of a coefficient tagger."""
    if image_arch["num_tags"] != coeff_arch["num_tags"]:
        raise ValueError(
            f"image model has {image_arch['num_tags']} tags but coefficient model has "
            f"{coeff_arch['num_tags']}"
        )
    return {
        "num_tags": image_arch["num_tags"],
        "coeff_shape": list(coeff_arch["coeff_shape"]),
        "backbone": image_arch["backbone"],
        "width": image_arch["width"],
        "coeff_width": coeff_arch["width"],
        "dropout": image_arch["dropout"],
        "in_channels": image_arch.get("in_channels", 1),
    }


@torch.no_grad()
def joint_from_views(
    image_model: ImageTagger, coeff_model: CoeffTagger, image_weight: float | Sequence[float] = 0.5
) -> JointTagger:
    """A JointTagger with logits image_weight * z_image + (1 - image_weight) * z_coeff.

    ``image_weight``: alpha, one number or one per tag (T,), each in [0, 1].
    """
    joint = JointTagger(**joint_arch(image_model.arch, coeff_model.arch))
    alpha = torch.as_tensor(image_weight, dtype=torch.float32).expand(joint.arch["num_tags"])
    if not bool(((alpha >= 0) & (alpha <= 1)).all()):
        raise ValueError(f"image_weight must lie in [0, 1], got {alpha.tolist()}")
    joint.image_trunk.load_state_dict(image_model.trunk.state_dict())
    joint.coeff_trunk.load_state_dict(coeff_model.trunk.state_dict())
    image_head, coeff_head = head_layer(image_model), head_layer(coeff_model)
    a = alpha[:, None]
    head = head_layer(joint)
    head.weight.copy_(torch.cat([a * image_head.weight, (1 - a) * coeff_head.weight], dim=1))
    head.bias.copy_(alpha * image_head.bias + (1 - alpha) * coeff_head.bias)
    return joint

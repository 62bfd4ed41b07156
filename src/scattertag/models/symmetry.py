"""Test-time averaging over the frame's symmetries: logits averaged over D4 elements.

A tag does not change when the detector is mounted mirrored or turned by 90 degrees
(:mod:`scattertag.augment`), so a tagger's logits z(g . x) for the elements g of a
subgroup H of D4 all estimate the same thing; their mean

    z_H(x) = (1 / |H|) sum_{g in H} z(g . x)

is invariant under H by construction and averages out part of the network's own
orientation noise. The subgroups used are the first ``k`` elements of
:func:`scattertag.augment.dihedral`: k = 1 (none), 2 (identity and column flip),
4 (the flips: rows, columns, both) and 8 (all of D4). Grazing-incidence vocabularies keep
gravity's direction, so they allow only k <= 2 (:func:`scattertag.augment.group_size`).

The cost is k forward passes a frame (run as one batch of k B frames).
"""

from __future__ import annotations

import torch
from torch import nn

from scattertag.augment import dihedral, group_size

#: Sizes of the subgroups formed by the first k elements of ``augment.dihedral``.
SUBGROUP_SIZES = (1, 2, 4, 8)


def check_symmetries(symmetries: int, vocabulary: list[str]) -> int:
    """``symmetries`` if its subgroup preserves ``vocabulary``'s tags, else ValueError."""
    if symmetries not in SUBGROUP_SIZES:
        raise ValueError(f"symmetries must be one of {SUBGROUP_SIZES}, got {symmetries}")
    allowed = group_size(vocabulary)
    if symmetries > allowed:
        raise ValueError(
            f"symmetries={symmetries}: this vocabulary's tags keep the frame's orientation "
            f"(grazing incidence), at most {allowed} symmetries preserve them"
        )
    return symmetries


class SymmetryAverage(nn.Module):
    """A tagger whose logits (B, T) are averaged over ``symmetries`` D4 elements of its input.

    ``cake``: the image view is a cake (azimuth x log radius) rather than a detector frame.
    """

    def __init__(self, model: nn.Module, symmetries: int, cake: bool) -> None:
        super().__init__()
        self.model, self.symmetries, self.cake = model, symmetries, cake

    def forward(self, image: torch.Tensor, coeff: torch.Tensor) -> torch.Tensor:
        """Mean logits over the symmetries: one forward pass on the k moved copies."""
        if self.symmetries == 1:
            return self.model(image, coeff)
        moved = [dihedral(image, coeff, e, self.cake) for e in range(self.symmetries)]
        logits = self.model(torch.cat([m[0] for m in moved]), torch.cat([m[1] for m in moved]))
        # sizes from the tensors, not len(): a traced copy (serve) then takes any batch size
        return logits.reshape(self.symmetries, -1, logits.shape[-1]).mean(0)


def with_symmetries(model: nn.Module, card, symmetries: int) -> nn.Module:
    """``model`` (described by ``card``) averaging over ``symmetries`` (checked)."""
    from scattertag.features.views import ViewSpec

    check_symmetries(symmetries, list(card.vocabulary))
    return SymmetryAverage(model, symmetries, ViewSpec.from_dict(card.view_spec).is_cake)
